"""The keys every section of ``nightlog.toml`` knows, and the one check that refuses
the others.

Every table of the configuration file (the sections, the per-kind tables of
``[calibration]``, ``[site]``, an instrument profile) is checked here, so a typo
anywhere gets the same answer: the unknown key, the nearest known one, and the
list of known keys. ``nightlog config show`` lists the same keys.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from nightlog.errors import ConfigurationError

__all__ = ["COSMIC_RAY_KEYS", "SECTION_KEYS", "TOP_SECTIONS", "refuse_unknown"]

#: The keys of ``[cosmic_rays]`` and of each ``[cosmic_rays.profiles.<name>]``: the
#: fields of the reduction's ``CosmicRaySettings`` but ``threads``.
COSMIC_RAY_KEYS: tuple[str, ...] = ("enabled", "sigclip", "sigfrac", "objlim", "niter",
                                    "sepmed", "cleantype", "fsmode", "psfmodel", "psffwhm",
                                    "psfsize", "clean", "scheduled", "refine", "seed_sigma",
                                    "grow_sigma", "psf_contrast", "star_model",
                                    "background_model")

#: The keys of each section of ``nightlog.toml`` (``instruments`` holds one table
#: per profile, checked by the profile loader).
SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "archive": ("root", "compress"),
    "database": ("url", "busy_timeout_seconds", "retries"),
    "site": ("latitude", "longitude", "name", "timezone"),
    "watch": ("directories", "settle_seconds", "build_delay_seconds",
              "build_max_delay_seconds", "quicklook", "heartbeat_seconds", "polling",
              "incomplete_timeout_seconds", "zero_tail_seconds"),
    "ingest": ("patterns", "default_profile", "follow_symlinks", "max_data_size"),
    "reduction": ("memory_limit", "workers", "scheduler", "retries", "morning_at", "unit"),
    "calibration": ("validity_days", "on_missing", "dark_exptime_tolerance", "checks"),
    "health": ("window", "sigma", "min_points"),
    "notify": ("webhooks", "smtp"),
    "quality": ("program_keyword", "rules"),
    "combine": ("reject", "centre", "lsigma", "hsigma", "max_iters", "nkeep",
                "frame_scales"),
    "cosmic_rays": (*COSMIC_RAY_KEYS, "profiles"),
}

#: The sections of ``nightlog.toml``.
TOP_SECTIONS: tuple[str, ...] = (*SECTION_KEYS, "instruments")


def refuse_unknown(table: Mapping[str, Any], known: Iterable[str], where: str, *,
                   noun: str = "key", error: type[ConfigurationError] = ConfigurationError
                   ) -> None:
    """Raise when ``table`` holds a key that is not in ``known``.

    Parameters
    ----------
    table : mapping
        The table as read from the file.
    known : iterable of str
        The keys it may hold.
    where : str
        Where the table is (``"[watch]"``, ``"site"``, ``"instrument profile 'lfc'"``),
        for the message.
    noun : str
        What a key is called there (``"key"``, ``"section"``, ``"kind"``).
    error : type
        The :class:`~nightlog.errors.ConfigurationError` subclass to raise.

    Raises
    ------
    ConfigurationError
        The first unknown key (in file order), with the nearest known one as a
        "did you mean" suggestion when there is one, and every known key.
    """
    names = tuple(known)
    for key in table:
        if key in names:
            continue
        near = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise error(f"{where}: unknown {noun} {key!r}; {hint}known: {', '.join(names)}")
