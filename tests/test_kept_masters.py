"""A worker reads a batch's masters once and finds their bits once; a master file
that changes is read again."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.nddata import CCDData, VarianceUncertainty

from nightlog.coordinator.kept_masters import KeptMasters
from nightlog.errors import UnreadableFileError
from nightlog.reduction.bad_pixels import master_plane
from nightlog.reduction.products import to_hdulist
from nightlog.store.images import write_hdulist
from nightlog.store.products import read_product
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
    assert kept.reads == 4  # the bias alone: the dark and the flat are unchanged
    np.testing.assert_allclose(after.data, np.asarray(before.data) + 1)
    os.remove(bias_path)
    with pytest.raises(UnreadableFileError):
        kept.files(paths)


def test_frames_of_filters_in_turn_share_the_bias_and_dark(tmp_path: Path) -> None:
    """g, i, g, i: each flat read once, the bias and the dark once, each set's plane
    found once, and the variance kept is the square of the file's deviation."""
    paths = _write(tmp_path)
    other_flat = tmp_path / "flat-i.fits"
    other_flat.write_bytes(Path(paths[2][1]).read_bytes())
    sets = [paths, [paths[0], paths[1], ("flat", str(other_flat))]]
    kept = KeptMasters()
    planes = []
    for i in range(4):
        files = kept.files(sets[i % 2])
        planes.append(kept.plane(PARAMS, {}))
    assert kept.reads == 4
    assert planes[0] is planes[2] and planes[1] is planes[3] and planes[0] is not planes[1]
    sigma = np.asarray(read_product(paths[0][1]).ccd.uncertainty.array)
    unc = files["bias"].ccd.uncertainty
    assert isinstance(unc, VarianceUncertainty)
    np.testing.assert_array_equal(unc.array, np.square(sigma, dtype=np.float32))


def test_the_least_recently_used_master_is_given_up(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    kept = KeptMasters(max_files=3)
    kept.files(paths)
    extra = tmp_path / "flat-r.fits"
    extra.write_bytes(Path(paths[2][1]).read_bytes())
    kept.files([paths[0], paths[1], ("flat", str(extra))])
    assert kept.reads == 4
    kept.files(paths)  # the first flat was given up: read again
    assert kept.reads == 5


def test_masters_warmed_ahead_need_no_work_when_a_frame_comes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemon reads the masters it has just built and finds their bits while idle:
    the frame that comes next reads nothing and finds no bits, and gets the plane
    master_plane gives."""
    import nightlog.coordinator.kept_masters as kept_module

    paths = _write(tmp_path)
    kept = KeptMasters()
    for role_path in paths:
        kept.warm([role_path], PARAMS)
    assert kept.reads == 3

    def no_more(*args: object, **kwargs: object) -> None:
        raise AssertionError("bits found again")

    monkeypatch.setattr(kept_module, "role_bits", no_more)
    files = kept.files(paths)
    plane = kept.plane(PARAMS, {})
    assert kept.reads == 3
    ccd = {role: f.ccd for role, f in files.items()}
    fresh = master_plane(bias=ccd["bias"], dark=ccd["dark"], flat=ccd["flat"], params=PARAMS)
    np.testing.assert_array_equal(plane.plane, fresh.plane)


def test_a_kept_master_cut_to_a_window_keeps_its_variance(tmp_path: Path) -> None:
    """The kept flat holds a variance: cut to a window it is still a variance, of the
    same pixels (not relabelled a standard deviation)."""
    from nightlog.reduction.window import crop_to_window

    paths = _write(tmp_path)
    flat = KeptMasters().files(paths)["flat"].ccd
    cut = crop_to_window(flat, (2, 20, 3, 30))
    assert isinstance(cut.uncertainty, VarianceUncertainty)
    np.testing.assert_array_equal(cut.uncertainty.array,
                                  np.asarray(flat.uncertainty.array)[2:20, 3:30])
