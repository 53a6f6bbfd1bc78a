"""The quick-look: bias, dark and flat applied as in the final product, cosmic rays
not looked for, and the product and its quality record say so.

A Palomar LFC night at a tenth of its size is simulated, catalogued and its masters
built; each science frame is quick-looked (as the watch daemon does, live), then
reduced for the morning. The quick-look's pixels must equal the final product's
wherever the final product found no cosmic ray (the same masters, the same
calibration), and its record must not claim that none were found.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import select

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Product
from nightlog.catalogue.quality import quality_of
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import run_reduce, science_frames
from nightlog.reduction.mask import MaskBit
from nightlog.settings import load_settings
from nightlog.simulate import simulate_night
from nightlog.states import ProductKind, ReduceStatus
from nightlog.store.products import read_product


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("quicklook")
    simulate_night(folder / "raw", camera="lfc", scale=0.1, seed=5, n_bias=5, n_dark=5,
                   n_flat=5, n_science=2)
    settings = load_settings(env={}, cwd=folder)
    engine = create_engine(settings.database_url)
    try:
        upgrade(engine)
        run_ingest(engine, discover([folder / "raw"], settings.ingest.patterns),
                   IngestContext.from_settings(settings))
        ctx = JobContext.from_settings(settings)
        run_build(engine, ctx)
        with make_sessionmaker(engine)() as session:
            ids = science_frames(session)
        quick = run_reduce(engine, ctx, ids, kind=ProductKind.QUICKLOOK, live=True,
                           sweep=False)
        with make_sessionmaker(engine)() as session:
            quick_quality = quality_of(session, ids)
        final = run_reduce(engine, ctx, ids)
        with make_sessionmaker(engine)() as session:
            paths = {(p.frame_id, p.kind): p.path for p in session.scalars(select(Product))}
    finally:
        engine.dispose()
    return {"ids": ids, "quick": quick, "final": final, "quality": quick_quality,
            "paths": paths}


def test_the_quick_look_is_the_final_calibration_without_cosmic_rays(night) -> None:
    assert {o.status for o in night["quick"]} == {ReduceStatus.REDUCED}
    assert {o.status for o in night["final"]} == {ReduceStatus.REDUCED}
    found = 0
    for frame_id in night["ids"]:
        quick = read_product(night["paths"][(frame_id, ProductKind.QUICKLOOK)]).ccd
        final = read_product(night["paths"][(frame_id, ProductKind.FINAL)]).ccd
        # Every master applied; only the cosmic-ray step skipped, and said.
        assert "NLMISS" not in quick.header
        assert quick.header["CALSKIP"].split() == ["cosmic_rays"]
        assert "CALSKIP" not in final.header
        for card in ("NLBIAS", "NLDARK", "NLFLAT"):  # the same masters, each found
            assert quick.header[card] == final.header[card] != "none", card
        cosmic = (np.asarray(final.flags) & MaskBit.COSMIC_RAY) != 0
        found += int(cosmic.sum())
        assert not ((np.asarray(quick.flags) & MaskBit.COSMIC_RAY) != 0).any()
        # Equal to float32 rounding (the cosmic-ray step round-trips the pixels).
        np.testing.assert_allclose(np.asarray(quick.data)[~cosmic],
                                   np.asarray(final.data)[~cosmic], rtol=1e-6)
        np.testing.assert_array_equal(np.asarray(quick.flags)[~cosmic],
                                      np.asarray(final.flags)[~cosmic])
    assert found > 0  # the simulated frames have cosmic rays the final product found


def test_the_quick_look_record_does_not_claim_no_cosmic_rays(night) -> None:
    for frame_id in night["ids"]:
        record = night["quality"][frame_id]
        assert record.kind == ProductKind.QUICKLOOK
        assert record.cosmic_ray_pixels is None
        assert "cosmic rays not looked for (detection switched off)" in record.notes
        assert record.sky is not None and record.n_sources > 0
        header = fits.getheader(night["paths"][(frame_id, ProductKind.QUICKLOOK)])
        assert any("Skipped cosmic_rays" in str(h) for h in header["HISTORY"])
