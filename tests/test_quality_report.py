"""The report's quality view, rendered from hand-made models: columns, poor rows, the
cosmic-ray outlier, the timeline, full width and dark mode, every string escaped."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from nightlog.report.html import render_html
from nightlog.report.model import (
    CalibrationMark,
    NightReport,
    Picture,
    QualityFigures,
    ScienceEntry,
)
from nightlog.report.outliers import high_outliers
from nightlog.report.timeline import TimelinePoint, timeline_svg

T0 = dt.datetime(2016, 1, 16, 4, 0, tzinfo=dt.UTC)
HOSTILE = "<script>alert(1)</script>"


def _figures(cosmics: int, verdict: str = "good", reasons: tuple[str, ...] = (),
             outlier: bool = False) -> QualityFigures:
    return QualityFigures(
        product_id=1, kind="final", unit="adu", sky=1200.0, sky_e=2844.0, sky_noise_e=60.0,
        n_sources=40, n_psf_stars=28, fwhm_px=2.1, fwhm_arcsec=0.38, ellipticity=0.05,
        saturated_fraction=1e-4, cosmic_ray_pixels=cosmics, airmass=1.2, verdict=verdict,
        reasons=reasons, notes=(f"note {HOSTILE}",), cosmic_ray_outlier=outlier)


def _report(counts: list[int]) -> NightReport:
    science = []
    outliers = high_outliers(counts)
    for i, n in enumerate(counts):
        poor = i == 1
        q = _figures(n, "poor" if poor else "good",
                     (f"seeing: FWHM 2.9″ > 2.5″ {HOSTILE}",) if poor else (), i in outliers)
        science.append(ScienceEntry(
            frame_id=10 + i, path=f"/raw/f{i}.fits", object_name="M67", filter="g'",
            exptime=300.0, obs_time=T0 + dt.timedelta(minutes=10 * i),
            raw=Picture(None, "file missing"), quicklook=None, final=None, quality=q))
    science.append(ScienceEntry(
        frame_id=99, path="/raw/old.fits", object_name=None, filter=None, exptime=None,
        obs_time=T0 + dt.timedelta(hours=2), raw=Picture(None, "x"), quicklook=None,
        final=None, quality=None))
    return NightReport(
        night=dt.date(2016, 1, 15), generated_at=T0, software_version="test", archive="/a",
        counts=(), masters=(), trends=(), science=tuple(science), failures=(),
        quarantined=(),
        calibrations=(CalibrationMark("bias", T0 - dt.timedelta(hours=1)),
                      CalibrationMark("flat", T0 - dt.timedelta(minutes=30))))


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str | None] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "tr":
            self.rows.append(dict(attrs).get("class"))


def test_quality_columns_poor_rows_and_the_cosmic_ray_outlier() -> None:
    counts = [30, 45, 750, 78, 52, 61]
    page = render_html(_report(counts))
    parser = _Rows()
    parser.feed(page)
    # header row, six frames (the second poor), the frame without a record
    assert parser.rows[-8:] == [None, None, "poor", None, None, None, None, None]
    assert page.count('class="outlier"') == 1 and "750 outlier" in page
    for head in ("FWHM", "ellipticity", "sky", "sources", "saturated", "cosmic-ray pixels",
                 "airmass", "quality"):
        assert f"<th>{head}</th>" in page
    assert "0.38″" in page and "2844 e⁻" in page and "not measured" in page
    assert HOSTILE not in page and "&lt;script&gt;" in page
    assert "script" not in parser.tags


def test_full_width_dark_mode_and_the_timeline_are_on_the_page() -> None:
    page = render_html(_report([30, 45, 50, 40]))
    assert "table.science { width: 100%; }" in page
    assert "@media (prefers-color-scheme: dark)" in page
    assert '<input type="checkbox" id="dark-mode">' in page
    assert ":root:has(#dark-mode:checked)" in page
    assert page.count('<svg class="timeline"') == 1
    assert page.count('class="tl-cal tl-bias"') == 1 and page.count('tl-cal tl-flat') == 1
    # One poor frame, drawn red on each of the four panels.
    assert page.count('class="tl-poor"') == 4
    assert page.index('<svg class="timeline"') < page.index('<table class="science"')


def test_a_timeline_of_nothing_says_so() -> None:
    assert "no frame" in timeline_svg([], [])
    one = timeline_svg([TimelinePoint(1, T0, None, None, None, None, False)], [])
    assert one.count("not measured") == 4


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(20, 90), min_size=5, max_size=30), st.integers(0, 29))
def test_a_tenfold_count_among_ordinary_ones_is_an_outlier(counts: list[int], at: int
                                                          ) -> None:
    at %= len(counts)
    counts[at] = 10 * max(counts)
    found = high_outliers(counts)
    assert at in found
    median = sorted(counts)[len(counts) // 2]
    assert all(counts[i] > 2 * median * 0.99 for i in found)  # never an ordinary value


def test_outliers_need_enough_frames_and_skip_missing() -> None:
    assert high_outliers([30, 45, 78, 52, 61, 70]) == set()
    assert high_outliers([30, 750, None]) == set()
    assert high_outliers([30, None, 40, 35, 750]) == {4}
