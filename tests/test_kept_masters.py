"""A worker reads a batch's masters once and finds their bits once; a master file
that changes is read again."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.nddata import CCDData

from nightlog.coordinator.kept_masters import KeptMasters
from nightlog.errors import UnreadableFileError
from nightlog.reduction.bad_pixels import master_plane
from nightlog.reduction.products import to_hdulist
from nightlog.store.images import write_hdulist
from tests.test_science import PARAMS, make_night, masters


def _write(tmp_path: Path) -> list[tuple[str, str]]:
    night = make_night(seed=4)
    bias, dark, flat = masters(night, np.random.default_rng(2))
    paths = []
    for role, ccd in (("bias", bias), ("dark", dark), ("flat", flat)):
        path = tmp_path / f"{role}.fits"
        write_hdulist(path, to_hdulist(ccd))
        paths.append((role, str(path)))
    return paths


def test_masters_are_read_once_and_their_plane_found_once(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    kept = KeptMasters()
    first = kept.files(paths)
    plane = kept.plane(PARAMS, {})
    for _ in range(3):
        again = kept.files(paths)
        assert all(again[role] is first[role] for role in first)
        assert kept.plane(PARAMS, {}) is plane
    assert kept.reads == 3
    ccd = {role: f.ccd for role, f in first.items()}
    fresh = master_plane(bias=ccd["bias"], dark=ccd["dark"], flat=ccd["flat"], params=PARAMS)
    np.testing.assert_array_equal(plane.plane, fresh.plane)
    # Other thresholds: another plane, the files still kept.
    other = kept.plane(replace(PARAMS, hot_nsigma=9.0), {})
    assert other is not plane and kept.reads == 3


def test_a_master_that_changes_is_read_again(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    kept = KeptMasters()
    before = kept.files(paths)["bias"].ccd
    shifted = CCDData(np.asarray(before.data) + 1, unit=before.unit, meta=before.meta,
                      uncertainty=before.uncertainty)
    bias_path = paths[0][1]
    os.remove(bias_path)
    write_hdulist(bias_path, to_hdulist(shifted))
    after = kept.files(paths)["bias"].ccd
    assert kept.reads == 6
    np.testing.assert_allclose(after.data, np.asarray(before.data) + 1)
    os.remove(bias_path)
    with pytest.raises(UnreadableFileError):
        kept.files(paths)
