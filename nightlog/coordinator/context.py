"""What the calibration and reduction jobs need besides a session."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nightlog import __version__
from nightlog.calibration.health_settings import HealthSettings
from nightlog.calibration.policy import CalibrationPolicy
from nightlog.catalogue.models import Frame
from nightlog.coordinator.retry import Backoff
from nightlog.header.model import Site
from nightlog.header.profiles import InstrumentProfile, ProfileRegistry
from nightlog.notify.config import NotifySettings
from nightlog.quality_rules import QualitySettings
from nightlog.settings import Settings
from nightlog.settings_cosmic_rays import CosmicRayConfig
from nightlog.settings_sections import CombineSettings
from nightlog.store.layout import ArchiveLayout

if TYPE_CHECKING:
    from nightlog.reduction.preparation import Preparation

__all__ = ["JobContext"]


@dataclass(frozen=True, slots=True)
class JobContext:
    """Profiles, policy, archive layout and limits shared by the jobs.

    ``reduce_workers`` (local processes; ``None``: one per core),
    ``reduce_scheduler`` (a Dask scheduler address, or ``None``) and
    ``reduce_retries`` are the defaults of the morning reduction; ``site`` names
    the night a morning run reduces; ``db_backoff`` how long a batch run rides
    out a catalogue outage before it reports it; ``output_unit`` the unit products
    are written in (``adu`` or ``electron``); ``quality`` the rules that judge each
    product's quality record; ``combine`` how masters are clipped; ``cosmic_rays``
    L.A.Cosmic's settings of each profile's frames.
    """

    registry: ProfileRegistry
    policy: CalibrationPolicy
    layout: ArchiveLayout
    memory_limit: int = 2 * 1024**3
    scratch_dir: Path | None = None
    software_version: str = __version__
    reduce_workers: int | None = None
    reduce_scheduler: str | None = None
    reduce_retries: int = 2
    site: Site = field(default_factory=Site)
    db_backoff: Backoff = field(default_factory=Backoff)
    output_unit: str = "adu"
    health: HealthSettings = field(default_factory=HealthSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    combine: CombineSettings = field(default_factory=CombineSettings)
    cosmic_rays: CosmicRayConfig = field(default_factory=CosmicRayConfig)

    @classmethod
    def from_settings(cls, settings: Settings) -> JobContext:
        """The context of ``settings``.

        Raises
        ------
        ConfigurationError
            An instrument profile is invalid, or ``[cosmic_rays.profiles.<name>]``
            names no profile (its settings would never apply).
        """
        registry = ProfileRegistry.from_settings(settings.instruments)
        settings.cosmic_rays.check_profiles(registry.names)
        return cls(
            registry=registry,
            policy=settings.calibration,
            layout=ArchiveLayout(settings.archive_root,
                                 compress=settings.archive_compress == "rice"),
            memory_limit=settings.reduction.memory_limit_bytes,
            reduce_workers=settings.reduction.workers,
            reduce_scheduler=settings.reduction.scheduler,
            reduce_retries=settings.reduction.retries,
            site=settings.site,
            db_backoff=Backoff(attempts=settings.database.retries),
            output_unit=settings.reduction.unit,
            health=settings.health,
            notify=settings.notify,
            quality=settings.quality,
            combine=settings.combine,
            cosmic_rays=settings.cosmic_rays,
        )

    def profile_of(self, frame: Frame) -> InstrumentProfile:
        """The profile a frame was normalised with (``generic`` if it is gone)."""
        if frame.profile in self.registry.names:
            return self.registry.get(frame.profile)
        return self.registry.get("generic")

    def skip_columns_of(self, frame: Frame) -> int:
        """Overscan columns to skip next to the data of ``frame``, as its profile says."""
        # The reduction core (astropy) is imported by the jobs that prepare pixels,
        # not by every user of the context (``nightlog match`` needs none of it).
        from nightlog.reduction.preparation import overscan_skip_columns

        profile = self.profile_of(frame)
        skip, full_width = profile.overscan_skip_columns, (
            None if profile.full_shape is None else profile.full_shape[1])
        if frame.window is not None:
            # A window is narrower than the readout, not scaled: only binning divides.
            binx = int(frame.binning.partition("x")[0])
            skip, full_width = -(-skip // binx), None
        return overscan_skip_columns(skip, naxis1=frame.naxis1, naxis2=frame.naxis2,
                                     biassec=frame.biassec, full_width=full_width)

    def preparation_of(self, frame: Frame) -> Preparation:
        """Overscan and trim of ``frame`` as its profile asks."""
        from nightlog.reduction.preparation import Preparation

        profile = self.profile_of(frame)
        overscan = frame.biassec if profile.subtract_overscan and frame.biassec else None
        return Preparation(overscan=overscan, skip_columns=self.skip_columns_of(frame),
                           trim=frame.trimsec or frame.datasec,
                           model_degree=profile.overscan_fit_degree,
                           niterate=profile.overscan_niterate,
                           low_reject=profile.overscan_low_reject,
                           high_reject=profile.overscan_high_reject)
