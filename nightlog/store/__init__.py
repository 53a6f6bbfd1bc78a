"""The file store: raw files in, archive files out. It never imports SQLAlchemy.

It reads raw FITS files (plain, gzip, tile-compressed), checks that they are
complete, hashes them, and writes archive files atomically (temporary name, then
rename). The coordinating modules join it with the catalogue.
"""
