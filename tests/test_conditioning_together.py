"""Files of one profile conditioned together (read as one CSV when they can be) each get
exactly what they get alone, also beside a file that makes them be read one by one."""

from __future__ import annotations

import re

import pytest

from conditioners.context import Context
from conditioners.engine import condition, condition_files
from conditioners.profile import load_profiles
from conditioners.readers import _read_joined
from conditioners.table import Conditioned
from demandops.core.errors import DataError
from tests.test_conditioning_regression import AS_OF, RAW, ROOT

ODD_FILES = {  # each makes the files be read one by one: they cannot be read as one CSV
    "garbage": bytes(range(256)) * 4,
    "quoted line break": b'Store,Item,Week Ending,Units\nPNW-001,"P0\n01",01/05/2020,4\n',
    "CRLF": b"Store,Item,Week Ending,Units\r\nPNW-001,P001,01/05/2020,4\r\n",
    "blank line": b"Store,Item,Week Ending,Units\nPNW-001,P001,01/05/2020,4\n\nPNW-001,P2,x,1\n",
    "other header": b"Item,Store,Week Ending,Units\nP001,PNW-001,01/05/2020,4\n",
    "ragged": b"Store,Item,Week Ending,Units\nPNW-001,P001,01/05/2020\n",
    "missing column": b"Store,Item,Week,Units\nPNW-001,P001,01/05/2020,4\n",
    "header only": b"Store,Item,Week Ending,Units\n",
}


@pytest.mark.parametrize("odd", [None, *ODD_FILES])
def test_files_conditioned_together_each_get_what_they_get_alone(odd: str | None) -> None:
    profile = load_profiles(ROOT / "config" / "sources")["shipments_distributor_a"]
    names = sorted(p for p in RAW.glob("shipments/region=pnw/dist_a_*.csv"))
    batch = [(f"raw/{p.name}", p.read_bytes()) for p in names]
    assert _read_joined(batch, profile) is not None
    if odd is not None:
        batch.insert(1, ("raw/odd.csv", ODD_FILES[odd]))
        assert _read_joined(batch, profile) is None
    ctx = Context(as_of=AS_OF)
    together = condition_files(batch, profile, ctx)
    for (file, data), result in zip(batch, together, strict=True):
        if isinstance(result, DataError):
            assert file == "raw/odd.csv" and odd in ("garbage", "missing column"), result
            with pytest.raises(DataError, match=re.escape(str(result))):
                condition(data, file, profile, ctx)
            continue
        alone = condition(data, file, profile, ctx)
        assert isinstance(result, Conditioned) and result.rows_in == alone.rows_in
        assert result.table.equals(alone.table) and result.rejects.equals(alone.rejects)
    assert sum(len(r.rejects) for r in together if isinstance(r, Conditioned)) > 0


def test_files_that_all_miss_a_column_each_fail_naming_it() -> None:
    profile = load_profiles(ROOT / "config" / "sources")["shipments_distributor_a"]
    data = b"Store,Item,Week,Units\nPNW-001,P001,01/05/2020,4\n"
    batch = [("raw/a.csv", data), ("raw/b.csv", data)]
    results = condition_files(batch, profile, Context(as_of=AS_OF))
    assert [str(r).split(":")[0] for r in results] == [
        "cannot read raw/a.csv",
        "cannot read raw/b.csv",
    ]
    assert all(
        isinstance(r, DataError) and "missing columns ['Week Ending']" in str(r) for r in results
    )


CP1252 = [  # distributor B: text in cp1252 bytes from 0x80 up, in read and unread columns
    "FILIALE;FILIALNAME;ARTIKEL;WOCHE;MENGE;EINHEIT\n"
    "NCAL-001;Markt Süd €;P001;02.07.2018;4;EA\n"
    "KÖLN-ß1 ;Straße „Ÿ“;P002;02.07.2018;n/a;EA\n"
    "NCAL-001;Markt Süd €;P001;02.07.2018;4;EA\n",
    "FILIALE;FILIALNAME;ARTIKEL;WOCHE;MENGE;EINHEIT\n"
    "\xa0ÿ-2;Café ‰;P003;25.06.2018;1;EA\n"
    "NCAL-002;Œuvre;P001;25.06.2018;2;EA",
]


@pytest.mark.parametrize("undefined", [False, True])
def test_cp1252_files_read_together_as_bytes_each_get_what_they_get_alone(
    undefined: bool,
) -> None:
    profile = load_profiles(ROOT / "config" / "sources")["shipments_distributor_b"]
    batch = [(f"raw/b{i}.csv", text.encode("cp1252")) for i, text in enumerate(CP1252)]
    if undefined:  # 0x81 means nothing in cp1252: that file fails alone, naming the byte
        batch.append(("raw/b2.csv", batch[0][1].replace(b"4;EA", b"4\x81;EA", 1)))
    joined = _read_joined(batch, profile)
    assert (joined is None) == undefined
    assert joined is None or all(r.encoding == "cp1252" for r in joined)
    ctx = Context(as_of=AS_OF)
    together = condition_files(batch, profile, ctx)
    for (file, data), result in zip(batch, together, strict=True):
        if isinstance(result, DataError):
            assert file == "raw/b2.csv" and "0x81" in str(result), result
            continue
        alone = condition(data, file, profile, ctx)
        assert isinstance(result, Conditioned) and result.rows_in == alone.rows_in
        assert result.table.equals(alone.table) and result.rejects.equals(alone.rejects)
    first = together[0]
    assert isinstance(first, Conditioned)
    assert list(first.rejects["reason"]) == ["bad_number", "duplicate"]
    assert first.rejects["record"][0] == (
        '{"ARTIKEL": "P002", "EINHEIT": "EA", "FILIALE": "KÖLN-ß1 ", '
        '"FILIALNAME": "Straße „Ÿ“", "MENGE": "n/a", "WOCHE": "02.07.2018"}'
    )
    second = together[1]
    assert isinstance(second, Conditioned)
    assert sorted(second.frame["store_id"]) == ["NCAL-002", "ÿ-2"]


@pytest.mark.parametrize(("store", "encoding"), [("PNW-001", "ascii"), ("KÖLN-1", None)])
def test_utf8_files_read_together_as_ascii_bytes_or_as_strings(
    store: str, encoding: str | None
) -> None:
    profile = load_profiles(ROOT / "config" / "sources")["shipments_distributor_a"]
    head = "Store,Item,Week Ending,Units\n"
    texts = [
        head + f"{store},P001,07/01/2018,4\n{store},P001,07/01/2018,n/a\n",
        head + "S, P2 ,x,1",
    ]
    batch = [(f"raw/a{i}.csv", text.encode()) for i, text in enumerate(texts)]
    joined = _read_joined(batch, profile)
    assert joined is not None and all(r.encoding == encoding for r in joined)
    ctx = Context(as_of=AS_OF)
    for (file, data), result in zip(batch, condition_files(batch, profile, ctx), strict=True):
        alone = condition(data, file, profile, ctx)
        assert isinstance(result, Conditioned) and result.rows_in == alone.rows_in
        assert result.table.equals(alone.table) and result.rejects.equals(alone.rejects)
        assert len(result.rejects) == 1
