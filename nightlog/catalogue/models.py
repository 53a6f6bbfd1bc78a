"""The catalogue's schema: the index of every table, each defined in the module of its concept.

This module imports every mapped class, so that importing it (as every caller of
the catalogue does, ``from nightlog.catalogue.models import Frame``) registers the
whole schema on :attr:`Base.metadata` before the mappers configure, ``create_all``
runs or the migrations are compared with the models. A table is defined in one of:

:mod:`nightlog.catalogue.table_base`
    ``Base``, the declarative base, and the constraint naming convention.
:mod:`nightlog.catalogue.frame_tables`
    What was ingested: ``frames``, ``quarantined_files``, ``night_tallies``.
:mod:`nightlog.catalogue.calibration_tables`
    Calibration: ``masters``, ``master_inputs``, ``awaiting_masters``, ``fences``,
    ``alarms``.
:mod:`nightlog.catalogue.reduction_tables`
    What became of each science frame's reduction: ``products``,
    ``product_masters``, ``frame_quality``, ``reduce_failures``, ``frame_holds``.
:mod:`nightlog.catalogue.operation_tables`
    nightlog at work: ``daemons``, ``notifications``.

A new table goes into the module of its concept and is imported and listed here.
Masters, products and provenance point at ``frames.id``.
"""

from __future__ import annotations

from nightlog.catalogue.calibration_tables import (
    Alarm,
    AwaitingMaster,
    Fence,
    Master,
    MasterInput,
)
from nightlog.catalogue.frame_tables import Frame, NightTally, QuarantinedFile
from nightlog.catalogue.operation_tables import Daemon, Notification
from nightlog.catalogue.reduction_tables import (
    FrameHold,
    FrameQualityRow,
    Product,
    ProductMaster,
    ReduceFailure,
)
from nightlog.catalogue.table_base import Base

__all__ = ["Alarm", "AwaitingMaster", "Base", "Daemon", "Fence", "Frame", "FrameHold",
           "FrameQualityRow", "Master", "MasterInput", "NightTally", "Notification", "Product",
           "ProductMaster", "QuarantinedFile", "ReduceFailure"]
