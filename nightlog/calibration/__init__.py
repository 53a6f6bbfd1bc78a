"""The calibration manager: grouping, input checks, matching and its explanations.

Policy and rules are data (:mod:`nightlog.calibration.policy`, the instrument
profile's grouping keys); matching works on catalogue rows and never opens files.
"""
