"""The layout of a simulated frame after ``--scale``: image columns, then overscan columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nightlog.errors import ConfigurationError

if TYPE_CHECKING:
    from nightlog.simulate.cameras import CameraModel

__all__ = ["Geometry", "scaled_geometry"]


@dataclass(frozen=True, slots=True)
class Geometry:
    """Frame layout after scaling: image columns first, overscan columns after them."""

    scale: float
    ny: int
    nx_data: int
    n_overscan: int
    leak_columns: int

    @property
    def nx(self) -> int:
        """Total columns, image plus overscan (``NAXIS1``)."""
        return self.nx_data + self.n_overscan

    @property
    def shape(self) -> tuple[int, int]:
        """numpy shape ``(NAXIS2, NAXIS1)``."""
        return (self.ny, self.nx)

    @property
    def area_factor(self) -> float:
        """Pixels of this frame per pixel of the full-size frame (scale²)."""
        return self.scale * self.scale


def scaled_geometry(camera: CameraModel, scale: float) -> Geometry:
    """Frame geometry of ``camera`` shrunk by ``scale``.

    Parameters
    ----------
    camera : CameraModel
    scale : float
        Linear shrink factor, ``0 < scale <= 1``; ``1`` is the real frame size.

    Returns
    -------
    Geometry

    Raises
    ------
    ConfigurationError
        ``scale`` is not a number in ``(0, 1]`` or leaves a frame too small to
        hold an image and an overscan (fewer than 16 rows or image columns).
    """
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise ConfigurationError(f"scale must be a number in (0, 1], not {scale!r}") from None
    if not 0.0 < value <= 1.0:  # also rejects NaN
        raise ConfigurationError(f"scale must be in (0, 1], not {scale!r}")
    ny = round(camera.ny * value)
    nx_data = round(camera.nx_data * value)
    if min(ny, nx_data) < 16:
        raise ConfigurationError(
            f"scale {value} leaves a {ny}×{nx_data} image for camera {camera.name!r}; "
            "use a larger scale"
        )
    # The overscan keeps at least 4 columns so a clean part remains beside the leak.
    n_overscan = max(4, round(camera.n_overscan * value))
    leak = 0 if camera.leak_columns == 0 else max(1, round(camera.leak_columns * value))
    leak = min(leak, n_overscan - 2)
    return Geometry(scale=value, ny=ny, nx_data=nx_data, n_overscan=n_overscan,
                    leak_columns=leak)
