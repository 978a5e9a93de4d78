"""Conditioning throughput (rows/s) on the default sample data, beside pyarrow's raw CSV read
of the same files, measured in the same run.

    .venv/bin/python benchmarks/conditioning/experiment.py [--repeats 5]

Generates the default sample (14 regions) in memory and groups its raw files by profile. Each
repeat times, group by group and interleaved: `pyarrow.csv.read_csv` of every CSV file of the
group (just the read, file by file, with the profile's delimiter and encoding and its columns as
text), `conditioners.engine.condition_files` of the whole group (read + parse + units + rules +
duplicates + sort + schema check: the whole pure function, with Arrow tables as its result),
and `condition` of each file alone. pyarrow reads twice: every mapped column as text (the raw
read conditioning starts from), and with the column types conditioning produces (dates parsed
with the profile's format, numbers as float64 with its decimal separator, the rest as text).
JSON, XLSX and iCalendar files are timed for conditioning only (pyarrow has no reader for
them). Best of --repeats per group. Prints a Markdown table and the load average before and
after.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
from pyarrow import csv as pacsv

from conditioners.context import Context
from conditioners.engine import condition, condition_files
from conditioners.profile import Profile, load_profiles, profile_for
from conditioners.schemas import SCHEMAS
from conditioners.table import Conditioned
from demandops.core.settings import load_settings
from demandops.sample.data import SampleSpec, sample_files

ROOT = Path(__file__).resolve().parents[2]
Group = list[tuple[str, bytes]]


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _read_all(group: Group, profile: Profile, convert: pacsv.ConvertOptions) -> int:
    rows = 0
    for _, data in group:
        rows += pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(encoding=profile.encoding),
            parse_options=pacsv.ParseOptions(delimiter=profile.delimiter),
            convert_options=convert,
        ).num_rows
    return rows


def _as_text(profile: Profile) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(column_types=dict.fromkeys(profile.raw_columns, pa.string()))


def _typed(profile: Profile) -> pacsv.ConvertOptions:
    """The mapped raw columns in the types conditioning makes of them."""
    schema = SCHEMAS[profile.source]
    types: dict[str, pa.DataType] = dict.fromkeys(profile.raw_columns, pa.string())
    formats, decimal = set(), "."
    for name, spec in profile.columns.items():
        kind = schema.column(name).kind
        if spec.source is None or kind == "str":
            continue
        if kind == "date" and spec.format not in ("week_index", "excel"):
            types[spec.source] = pa.timestamp("s")
            formats.add("%Y-%m-%d" if spec.format in (None, "iso") else spec.format)
        else:
            types[spec.source] = pa.float64()
            decimal = spec.decimal
    return pacsv.ConvertOptions(
        column_types=types, timestamp_parsers=sorted(formats), decimal_point=decimal
    )


def _one_by_one(group: Group, profile: Profile, ctx: Context) -> None:
    for path, data in group:
        condition(data, path, profile, ctx)


def _context(files: dict[str, bytes], profiles: dict[str, Profile]) -> Context:
    settings = load_settings(ROOT / "config")
    base = Context(regions=frozenset(settings.region_ids()), as_of=pd.Timestamp("2030-01-01"))
    ref = {}
    for source in ("stores", "products"):
        path = f"raw/{source}/{source}.csv"
        ref[source] = condition(files[path], path, profiles[source], base).frame
    return Context(stores=ref["stores"], products=ref["products"], as_of=base.as_of)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    settings = load_settings(ROOT / "config")
    profiles = load_profiles(ROOT / "config" / "sources")
    files = {f.path: f.data for f in sample_files(settings.regions, SampleSpec())}
    ctx = _context(files, profiles)
    groups: dict[str, Group] = {}
    for path, data in files.items():
        profile = profile_for(path.removeprefix("raw/"), profiles)
        assert profile is not None, path
        groups.setdefault(profile.name, []).append((path, data))
    rows = {}
    for name, group in groups.items():
        results = condition_files(group, profiles[name], ctx)
        assert all(isinstance(r, Conditioned) for r in results), name
        rows[name] = sum(r.rows_in for r in results if isinstance(r, Conditioned))
        if profiles[name].format == "csv":
            for convert in (_as_text(profiles[name]), _typed(profiles[name])):
                assert _read_all(group, profiles[name], convert) == rows[name], name
    load_before = os.getloadavg()
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.repeats):
        for name, group in groups.items():
            profile = profiles[name]
            timed: dict[str, Callable[[], object]] = {
                "batch": lambda: condition_files(group, profile, ctx),  # noqa: B023
                "each": lambda: _one_by_one(group, profile, ctx),  # noqa: B023
            }
            if profile.format == "csv":
                text, typed = _as_text(profile), _typed(profile)
                timed["arrow"] = lambda: _read_all(group, profile, text)  # noqa: B023
                timed["typed"] = lambda: _read_all(group, profile, typed)  # noqa: B023
            for what, fn in timed.items():
                seconds = _seconds(fn)
                best[name, what] = min(best.get((name, what), seconds), seconds)
    load_after = os.getloadavg()
    table = pd.DataFrame(
        [
            {
                "format": profiles[name].format,
                "files": len(group),
                "rows": rows[name],
                "bytes": sum(len(d) for _, d in group),
                "batch_s": best[name, "batch"],
                "each_s": best[name, "each"],
                "arrow_s": best.get((name, "arrow"), float("nan")),
                "typed_s": best.get((name, "typed"), float("nan")),
            }
            for name, group in groups.items()
        ]
    )
    _print(table)
    print(f"\nload average (1, 5, 15 min): before {load_before}, after {load_after}")


def _print(table: pd.DataFrame) -> None:
    print(
        "| files | format | rows | MB | condition rows/s: per profile | file by file "
        "| pyarrow read rows/s: text | typed | ratio to text read: per profile | file by file "
        "| ratio to typed read: per profile | file by file |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    parts = [(f, table[table["format"] == f]) for f in ("csv", "json", "xlsx", "ics")]
    for fmt, part in [*parts, ("all", table)]:
        n = part["rows"].sum()
        batch, each = n / part["batch_s"].sum(), n / part["each_s"].sum()
        if fmt == "csv":
            text, typed = n / part["arrow_s"].sum(), n / part["typed_s"].sum()
            extra = (
                f"{text:,.0f} | {typed:,.0f} | {batch / text:.2f} | {each / text:.2f} "
                f"| {batch / typed:.2f} | {each / typed:.2f}"
            )
        else:
            extra = "– | – | – | – | – | –"
        print(
            f"| {part['files'].sum()} | {fmt} | {n:,} | {part['bytes'].sum() / 1e6:.1f} "
            f"| {batch:,.0f} | {each:,.0f} | {extra} |"
        )


if __name__ == "__main__":
    main()
