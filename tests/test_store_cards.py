"""The fast card reader gives exactly astropy's keywords, values and comments, or
hands the header to astropy."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from hypothesis import given, settings
from hypothesis import strategies as st

from nightlog.store.cards import parse_cards
from nightlog.store.raw import header_items, read_raw_file

DATA = Path(__file__).parent / "data"


def _astropy(header: fits.Header) -> list[tuple[str, Any, str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        return [(c.keyword, c.value, str(c.comment)) for c in header.cards]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _check(header_bytes: bytes) -> None:
    fast = parse_cards(header_bytes)
    if fast is None:
        return  # handed to astropy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        reference = _astropy(fits.Header.fromstring(header_bytes.decode("ascii")))
    assert len(fast) == len(reference)
    for got, want in zip(fast, reference, strict=True):
        assert got[0] == want[0]
        assert _same(got[1], want[1]), (got, want)
        assert got[2] == want[2], (got, want)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.fit")), ids=lambda p: p.name)
def test_real_headers_read_as_astropy_reads_them(path: Path) -> None:
    with fits.open(path) as hdul:
        _check(hdul[0].header.tostring().encode("ascii"))
    raw = read_raw_file(path)
    json_fast, values_fast = raw.items()
    json_ref, values_ref = header_items(fits.getheader(path))
    assert json_fast == json_ref
    assert values_fast.keys() == values_ref.keys()


def test_reference_headers_as_written_by_the_cameras() -> None:
    for name in ("lfc_bias_ccd.001.0.hdr", "aspen_light_kelt-16-b.hdr"):
        text = (DATA / name).read_text()
        cards = "".join(line.ljust(80)[:80] for line in text.splitlines())
        _check(cards.encode("ascii"))


_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
_values = st.one_of(_text, st.integers(-10**15, 10**15), st.booleans(),
                    st.floats(allow_nan=False, allow_infinity=False, width=64))


@settings(max_examples=500, deadline=None)
@given(values=st.lists(st.tuples(_values, st.text(st.characters(min_codepoint=32,
                                                                   max_codepoint=126),
                                                      max_size=20)), max_size=8))
def test_generated_cards_agree_with_astropy(values: list[tuple[Any, str]]) -> None:
    header = fits.Header()
    for i, (value, comment) in enumerate(values):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            header[f"KEY{i}"] = (value, comment)
    _check(header.tostring().encode("ascii"))
