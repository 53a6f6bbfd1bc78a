"""The truth of a simulated night, written beside its frames so tests can check recovery.

``truth.json`` holds the numbers and the per-file list; ``truth.npz`` holds the
arrays. The layout is described in :mod:`nightlog.simulate` and read back by
:func:`load_truth`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from nightlog.errors import FileProblem
from nightlog.store.atomic import write_atomically

__all__ = [
    "ARRAYS_NAME",
    "TRUTH_NAME",
    "SimulationTruth",
    "cosmic_ray_key",
    "load_truth",
    "write_truth",
]

TRUTH_NAME = "truth.json"
ARRAYS_NAME = "truth.npz"
FORMAT = "nightlog-simulated-night"
VERSION = 1


def cosmic_ray_key(index: int) -> str:
    """Key in ``truth.npz`` of the cosmic-ray pixels of the frame at position ``index``."""
    return f"cosmic_rays_{index:04d}"


def write_truth(outdir: Path, summary: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
                ) -> tuple[Path, Path]:
    """Write ``truth.json`` and ``truth.npz`` into ``outdir`` atomically.

    Returns
    -------
    tuple of pathlib.Path
        The JSON and the npz path.

    Raises
    ------
    nightlog.errors.StoreError
        A file cannot be written.
    """
    def _npz(fh: BinaryIO) -> None:
        # Uncompressed: the maps are noise-like and compress poorly; saving is fast.
        np.savez(fh, allow_pickle=False, **dict(arrays))

    arrays_path = write_atomically(outdir / ARRAYS_NAME, _npz)
    text = json.dumps(dict(summary), indent=1, sort_keys=False) + "\n"

    def _json(fh: BinaryIO) -> None:
        fh.write(text.encode("utf-8"))

    json_path = write_atomically(outdir / TRUTH_NAME, _json)
    return json_path, arrays_path


@dataclass(frozen=True)
class SimulationTruth:
    """A simulated night's truth, read back.

    Attributes
    ----------
    summary : dict
        The parsed ``truth.json``.
    arrays : dict of numpy.ndarray
        Every array of ``truth.npz``.
    """

    summary: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def shape(self) -> tuple[int, int]:
        """Raw frame shape ``(ny, nx)``."""
        ny, nx = self.summary["shape"]
        return int(ny), int(nx)

    def _mask(self, key: str) -> np.ndarray:
        mask = np.zeros(self.shape[0] * self.shape[1], dtype=bool)
        mask[self.arrays[key]] = True
        return mask.reshape(self.shape)

    def file_entry(self, name: str) -> dict[str, Any]:
        """The ``files`` entry of the frame called ``name``.

        Raises
        ------
        KeyError
            No frame of that name.
        """
        for entry in self.summary["files"]:
            if entry["name"] == name:
                return dict(entry)
        raise KeyError(name)

    def cosmic_ray_mask(self, name: str) -> np.ndarray:
        """Boolean raw-frame mask of the pixels hit by cosmic rays in frame ``name``."""
        return self._mask(self.file_entry(name)["cosmic_ray_key"])

    def hot_pixel_mask(self) -> np.ndarray:
        """Boolean raw-frame mask of the hot pixels."""
        return self._mask("hot_pixels")

    def dead_pixel_mask(self) -> np.ndarray:
        """Boolean raw-frame mask of the dead (response < 0.5) pixels."""
        return self._mask("dead_pixels")

    def high_noise_pixel_mask(self) -> np.ndarray:
        """CMOS camera: boolean full-frame mask of the random-telegraph pixels.

        Raises
        ------
        KeyError
            Not a CMOS night.
        """
        return self._mask("high_noise_pixels")

    def glow_electrons(self, exptime: float) -> np.ndarray:
        """CMOS camera: the amplifier-glow electrons of an exposure of ``exptime`` s.

        ``corner_e_at_reference × glow_template × (exptime / reference) ** exponent``
        over the full frame.

        Raises
        ------
        KeyError
            Not a CMOS night.
        """
        glow = self.summary["glow"]
        factor = glow["corner_e_at_reference"] * (
            max(float(exptime), 0.0) / glow["reference_exptime"]) ** glow["exponent"]
        out: np.ndarray = self.arrays["glow_template"] * np.float32(factor)
        return out


def load_truth(path: Path) -> SimulationTruth:
    """Read the truth of a simulated night.

    Parameters
    ----------
    path : pathlib.Path
        The night's folder or its ``truth.json``.

    Returns
    -------
    SimulationTruth

    Raises
    ------
    nightlog.errors.FileProblem
        The files are missing or are not a simulated night's truth.
    """
    json_path = path / TRUTH_NAME if path.is_dir() else path
    try:
        summary = json.loads(json_path.read_text(encoding="utf-8"))
        with np.load(json_path.parent / summary["arrays"]) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FileProblem(f"cannot read the simulation truth at {json_path}: {exc}") from exc
    if summary.get("format") != FORMAT:
        raise FileProblem(f"{json_path} is not a simulated night's truth")
    return SimulationTruth(summary=summary, arrays=arrays)
