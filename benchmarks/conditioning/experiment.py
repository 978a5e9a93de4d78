"""Conditioning throughput (rows/s) on the default sample data, beside pyarrow's raw CSV read
of the same files, measured in the same run.

    .venv/bin/python benchmarks/conditioning/experiment.py [--repeats 5]

Generates the default sample (14 regions) in memory and groups its raw files by profile. Each
repeat times, group by group and interleaved: `pyarrow.csv.read_csv` of every CSV file of the
group (just the read, file by file, with the profile's delimiter and encoding and its columns as
text), `conditioners.engine.condition_files` of the whole group (read + parse + units + rules +
duplicates + sort + schema check: the whole pure function, with Arrow tables as its result),
and `condition` of each file alone. JSON, XLSX and iCalendar files are timed for conditioning
only (pyarrow has no reader for them). Best of --repeats per group. Prints a Markdown table
and the load average before and after.
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
from conditioners.table import Conditioned
from demandops.sample_data import SampleSpec, sample_files
from demandops.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
Group = list[tuple[str, bytes]]


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _read_all(group: Group, profile: Profile) -> int:
    rows = 0
    for _, data in group:
        rows += pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(encoding=profile.encoding),
            parse_options=pacsv.ParseOptions(delimiter=profile.delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(profile.raw_columns, pa.string())
            ),
        ).num_rows
    return rows


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
            assert _read_all(group, profiles[name]) == rows[name], name
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
                timed["arrow"] = lambda: _read_all(group, profile)  # noqa: B023
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
            }
            for name, group in groups.items()
        ]
    )
    _print(table)
    print(f"\nload average (1, 5, 15 min): before {load_before}, after {load_after}")


def _print(table: pd.DataFrame) -> None:
    print(
        "| files | format | rows | MB | condition rows/s (per profile) | condition rows/s "
        "(file by file) | pyarrow read rows/s | ratio (per profile) | ratio (file by file) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    parts = [(f, table[table["format"] == f]) for f in ("csv", "json", "xlsx", "ics")]
    for fmt, part in [*parts, ("all", table)]:
        n = part["rows"].sum()
        batch, each = n / part["batch_s"].sum(), n / part["each_s"].sum()
        if fmt == "csv":
            arrow = n / part["arrow_s"].sum()
            extra = f"{arrow:,.0f} | {batch / arrow:.2f} | {each / arrow:.2f}"
        else:
            extra = "– | – | –"
        print(
            f"| {part['files'].sum()} | {fmt} | {n:,} | {part['bytes'].sum() / 1e6:.1f} "
            f"| {batch:,.0f} | {each:,.0f} | {extra} |"
        )


if __name__ == "__main__":
    main()
