"""The engine's fast paths give exactly what the plain ones give: dates of plain formats
(Arrow's strptime where it is sure, pandas for the rest), numbers, and text columns encoded
with pandas' hash table when their values have one width."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from conditioners.columns import Coded
from conditioners.profile import ColumnSpec
from conditioners.values import numbers as _numbers
from conditioners.values import parse_date as _parse_date
from conditioners.values import strptime as _strptime

ODD_DATES = [
    *("", " 2020-01-06", "2020-1-6", "2020-01-06x", "+2020-01-06", "0999-01-06", "1899-12-31"),
    *("2262-04-12", "9999-12-31", "0000-01-01", "٢٠٢٠-٠١-٠٦", "2020-01-06 00:00", "nan", "today"),
    *("01/06/2020", "1/6/2020", "06.01.2020", "6.1.2020", "20200106", "2020016", "31/02/2019"),
]


@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d", "%Y-%d-%m %H"])
def test_dates_parse_as_pandas_parses_them(fmt: str) -> None:
    grid = itertools.product((1899, 1900, 2000, 2019, 2100, 2199, 2200), range(14), range(33))
    iso = [f"{y:04d}-{m:02d}-{d:02d}" for y, m, d in grid]
    texts = [fmt.replace("%Y", t[:4]).replace("%m", t[5:7]).replace("%d", t[8:]) for t in iso]
    texts += ODD_DATES
    expected = pd.to_datetime(pd.Series(texts, dtype="str"), format=fmt, errors="coerce")
    expected[np.isin(texts, ["today", "now"])] = None  # NaT: pandas' clock words are no day here
    found = _strptime(pa.array(texts, pa.string()), fmt)
    assert expected.notna().sum() > 100 or "%H" in fmt
    want, got = (s.to_numpy().astype("datetime64[s]") for s in (expected, found))
    assert np.array_equal(want, got, equal_nan=True)


@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%d.%m.%Y", "%Y-%d-%m %H"])
def test_the_clocks_words_are_no_day_so_a_rerun_gives_the_same_days(fmt: str) -> None:
    found = _strptime(pa.array(["today", "now", "Today"], pa.string()), fmt)
    assert found.isna().all()


@pytest.mark.parametrize(
    "spec",
    [
        {"format": "%m/%d/%Y", "offset_days": -6},
        {"format": "%d.%m.%Y", "align": "monday"},
        {"format": "%Y%m%d", "align": "monday", "offset_days": 3},
    ],
)
def test_days_move_as_pandas_moves_them(spec: dict[str, object]) -> None:
    column = ColumnSpec.model_validate({"from": "x", **spec})
    fmt = str(column.format)
    grid = itertools.product((1900, 2000, 2019, 2199), range(14), range(33))
    texts = [fmt.replace("%Y", f"{y}").replace("%m", f"{m:02d}").replace("%d", f"{d:02d}")
             for y, m, d in grid] + ["", "2020-1-6", "1.1.2019", "x"]  # fmt: skip
    dates = pd.to_datetime(pd.Series(texts, dtype="str"), format=fmt, errors="coerce")
    if column.align == "monday":
        dates = dates - pd.to_timedelta(dates.dt.day_of_week, unit="D")
    expected = (dates + pd.Timedelta(days=column.offset_days)).astype("datetime64[ns]")
    found = _parse_date(pa.array(texts, pa.string()), column)
    assert found.dtype == np.dtype("datetime64[ns]") and expected.notna().sum() > 100
    assert np.array_equal(expected.to_numpy(), found, equal_nan=True)


def test_numbers_parse_as_pandas_parses_them() -> None:
    texts = [
        *("1", " 1", "1e5", "0x10", "inf", "-inf", "nan", "1_000", "١٢", "", "--1", "+1", "1."),
        *(".5", "-0", "00012", "1e400", "4.9e-325", "18446744073709551616", "True", "n/a"),
    ]
    for values in [texts, ["18446744073709551615", "1"], ["9223372036854775808", "-1"], ["1", "2"]]:
        expected = pd.to_numeric(pd.Series(values, dtype="str"), errors="coerce").astype(float)
        found = np.asarray(_numbers(pa.array(values, pa.string())), dtype=float)
        assert np.array_equal(expected.to_numpy(), found, equal_nan=True)
        assert np.array_equal(np.signbit(expected.to_numpy()), np.signbit(found))


@pytest.mark.parametrize("width", [1, 2, 3, 4, 8, 0])
@pytest.mark.parametrize("kind", [pa.string(), pa.binary()])
def test_text_columns_encode_to_their_values(width: int, kind: pa.DataType) -> None:
    words = ["ü", "ab", "cd"] if width == 2 else [c * width for c in "abc"]
    words += [] if width else ["x", "yz"]  # width 0: values of several widths
    chunks = [pa.array(words * 3, kind), pa.array(words[::-1] * 2, kind).slice(1)]
    column = pa.chunked_array(chunks, kind)
    coded = Coded.of(column)
    assert (coded.codes.dtype == np.int64) == (width in (1, 2, 4, 8))  # pandas' codes
    assert coded.values.type == kind and len(set(coded.values.to_pylist())) == len(coded.values)
    assert coded.values.take(pa.array(coded.codes)).to_pylist() == column.to_pylist()
