"""``[cosmic_rays]`` in ``nightlog.toml``: parsed and validated (unknown keys, bad
values, per-profile tables), passed to each profile's frames through the reduce plan,
recorded in the product, and part of its inputs key so that ``reduce`` redoes it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from astropy.io import fits
from sqlalchemy import Engine, select

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame, Product
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import run_reduce, science_frames
from nightlog.coordinator.reduce_plan import FramePlan, plan_frame
from nightlog.errors import ConfigurationError
from nightlog.reduction.cosmics_settings import CosmicRaySettings
from nightlog.settings import load_settings
from nightlog.settings_cosmic_rays import cosmic_rays_from
from nightlog.settings_keys import COSMIC_RAY_KEYS
from nightlog.settings_report import check_config


def _load(tmp_path: Path, text: str) -> JobContext:
    cfg = tmp_path / "nightlog.toml"
    cfg.write_text(text)
    return JobContext.from_settings(load_settings(cfg, env={}, cwd=tmp_path))


def test_the_keys_are_the_reductions_fields_but_threads() -> None:
    names = {f.name for f in dataclasses.fields(CosmicRaySettings)}
    assert set(COSMIC_RAY_KEYS) == names - {"threads"}


def test_no_section_gives_the_reductions_defaults(tmp_path: Path) -> None:
    settings = load_settings(env={}, cwd=tmp_path)
    assert settings.cosmic_rays.default == CosmicRaySettings()
    assert settings.cosmic_rays.for_profile("lfc", threads=3) == CosmicRaySettings(threads=3)


def test_a_profile_table_overrides_the_section_for_that_profile_only() -> None:
    config = cosmic_rays_from({"sigclip": 5, "niter": 3, "fsmode": "convolve",
                               "profiles": {"lfc": {"objlim": 8, "niter": 1}}})
    base = config.for_profile("zwo_nina")
    assert (base.sigclip, base.niter, base.objlim, base.fsmode) == (5.0, 3, 5.0, "convolve")
    assert isinstance(base.sigclip, float)
    lfc = config.for_profile("lfc", threads=2)
    # The profile's own keys, the section's for the rest, the defaults beyond.
    assert (lfc.sigclip, lfc.niter, lfc.objlim, lfc.fsmode, lfc.sigfrac) == (
        5.0, 1, 8.0, "convolve", CosmicRaySettings().sigfrac)
    assert lfc.threads == 2 and base.threads is None


@pytest.mark.parametrize(("text", "named"), [
    ("[cosmic_rays]\nsigclp = 4.0\n", "sigclp"),
    ("[cosmic_rays.profiles.lfc]\nobjlimit = 4.0\n", "objlimit"),
    ("[cosmic_rays]\nthreads = 4\n", "cosmic_rays.threads"),
    ("[cosmic_rays.profiles.lfc]\nthreads = 4\n", "cosmic_rays.profiles.lfc.threads"),
])
def test_an_unknown_key_is_refused_by_name(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        _load(tmp_path, text)


def test_the_nearest_key_is_suggested(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'sigclip'"):
        _load(tmp_path, "[cosmic_rays]\nsigclp = 4.0\n")


@pytest.mark.parametrize(("key", "value"), [
    ("sigclip", "0"), ("sigclip", "-1.5"), ("sigclip", '"high"'), ("sigfrac", "1.5"),
    ("objlim", "0"), ("niter", "0"), ("niter", "2.5"), ("niter", "true"),
    ("cleantype", '"mean"'), ("fsmode", '"fft"'), ("psfmodel", '"airy"'),
    ("psffwhm", "0"), ("psfsize", "8"), ("psfsize", "1"), ("enabled", '"yes"'),
    ("sepmed", "1"), ("clean", '"no"'), ("scheduled", "0"),
])
def test_a_bad_value_is_refused_naming_its_key(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"cosmic_rays\.{key} must be"):
        _load(tmp_path, f"[cosmic_rays]\n{key} = {value}\n")
    with pytest.raises(ConfigurationError, match=rf"cosmic_rays\.profiles\.lfc\.{key} must"):
        _load(tmp_path, f"[cosmic_rays.profiles.lfc]\n{key} = {value}\n")


def test_a_profile_table_must_name_a_profile(tmp_path: Path) -> None:
    text = "[cosmic_rays.profiles.lfcc]\nobjlim = 8.0\n"
    with pytest.raises(ConfigurationError, match="no instrument profile 'lfcc'"):
        _load(tmp_path, text)
    with pytest.raises(ConfigurationError, match="lfcc"):
        check_config(tmp_path / "nightlog.toml", env={}, cwd=tmp_path)
    with pytest.raises(ConfigurationError, match=r"cosmic_rays\.profiles must be a table"):
        _load(tmp_path, "[cosmic_rays]\nprofiles = 3\n")


def _science(engine: Engine) -> list[int]:
    with make_sessionmaker(engine)() as s:
        return science_frames(s)


def _plan(engine: Engine, ctx: JobContext, frame_id: int) -> FramePlan:
    with make_sessionmaker(engine)() as s:
        frame = s.get(Frame, frame_id)
        assert frame is not None and frame.profile == "lfc"
        plan = plan_frame(s, frame, ctx, force=True)
    assert isinstance(plan, FramePlan)
    return plan


def test_the_plan_takes_the_frames_profile_settings(archive: tuple[Engine, JobContext]
                                                    ) -> None:
    engine, ctx = archive
    run_build(engine, ctx)
    frame_id = _science(engine)[0]
    own = dataclasses.replace(ctx, cosmic_rays=cosmic_rays_from(
        {"sigclip": 6.0, "profiles": {"lfc": {"objlim": 9.0}}}))
    other = dataclasses.replace(ctx, cosmic_rays=cosmic_rays_from(
        {"sigclip": 6.0, "profiles": {"zwo_nina": {"objlim": 9.0}}}))
    used = _plan(engine, own, frame_id).job.params.cosmic_rays
    assert (used.sigclip, used.objlim) == (6.0, 9.0)
    used = _plan(engine, other, frame_id).job.params.cosmic_rays
    assert (used.sigclip, used.objlim) == (6.0, CosmicRaySettings().objlim)


def _current(engine: Engine, frame_id: int) -> Product:
    with make_sessionmaker(engine)() as s:
        return s.scalars(select(Product).where(Product.frame_id == frame_id,
                                               Product.status == "current")).one()


def test_new_settings_are_recorded_and_the_frame_redone(archive: tuple[Engine, JobContext]
                                                        ) -> None:
    engine, ctx = archive
    run_build(engine, ctx)
    ids = _science(engine)[:1]
    assert [o.status for o in run_reduce(engine, ctx, ids)] == ["reduced"]
    first = _current(engine, ids[0])
    changed = dataclasses.replace(ctx, cosmic_rays=cosmic_rays_from(
        {"profiles": {"lfc": {"sigclip": 6.0, "sigfrac": 0.5, "objlim": 7.0, "niter": 1}}}))
    # A plain ``reduce`` (no --redo-superseded) redoes the frame, then finds it current.
    assert [o.status for o in run_reduce(engine, changed, ids)] == ["reduced"]
    assert [o.status for o in run_reduce(engine, changed, ids)] == ["up-to-date"]
    second = _current(engine, ids[0])
    assert second.id != first.id and second.inputs_key != first.inputs_key
    recorded = second.parameters["science"]["cosmic_rays"]
    assert (recorded["sigclip"], recorded["sigfrac"], recorded["objlim"],
            recorded["niter"]) == (6.0, 0.5, 7.0, 1)
    assert first.parameters["science"]["cosmic_rays"]["sigclip"] == 4.5
    header = fits.getheader(second.path, 0)
    assert header["CRCOR"] == ("LACosmic niter 1 sigclip 6 sigfrac 0.5 objlim 7 "
                              "refine 4.5/2.5/1.35")
    history = "".join(str(h) for h in header["HISTORY"])  # long lines are wrapped
    assert "'sigclip': 6.0, 'sigfrac': 0.5, 'objlim': 7.0, 'niter': 1" in history
    assert header["NLINKEY"] == second.inputs_key
    # Back to the defaults: redone again, with the first product's key.
    assert [o.status for o in run_reduce(engine, ctx, ids)] == ["reduced"]
    assert _current(engine, ids[0]).inputs_key == first.inputs_key
