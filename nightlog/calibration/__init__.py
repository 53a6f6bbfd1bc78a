"""The calibration manager: grouping, input checks, matching and its explanations,
and the history of master statistics (trends, outliers, their plot).

Policy and rules are data (:mod:`nightlog.calibration.policy`, the instrument
profile's grouping keys); matching and trends work on catalogue rows and never open
FITS files.
"""
