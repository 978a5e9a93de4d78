"""Conditioning throughput (rows/s) on the default sample data, beside pyarrow's raw CSV read
of the same files, measured in the same run.

    .venv/bin/python benchmarks/conditioning/experiment.py [--repeats 3]

Generates the default sample (14 regions) in memory, then for every raw CSV file times
`conditioners.engine.condition` (read + parse + units + rules + duplicates: the whole pure
function) and `pyarrow.csv.read_csv` (just the read, with the profile's delimiter and
encoding). JSON, XLSX and iCalendar files are timed for conditioning only (pyarrow has no
reader for them). Best of --repeats runs per file. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd
import pyarrow as pa
from pyarrow import csv as pacsv

from conditioners.context import Context
from conditioners.engine import condition
from conditioners.profile import load_profiles, profile_for
from demandops.sample_data import SampleSpec, sample_files
from demandops.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def _best(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings(ROOT / "config")
    profiles = load_profiles(ROOT / "config" / "sources")
    files = {f.path: f.data for f in sample_files(settings.regions, SampleSpec())}
    base = Context(regions=frozenset(settings.region_ids()), as_of=pd.Timestamp("2030-01-01"))
    ref = {}
    for source in ("stores", "products"):
        path = f"raw/{source}/{source}.csv"
        ref[source] = condition(files[path], path, profiles[source], base).frame
    ctx = Context(stores=ref["stores"], products=ref["products"], as_of=base.as_of)
    rows = []
    for path, data in files.items():
        profile = profile_for(path.removeprefix("raw/"), profiles)
        assert profile is not None, path
        result = condition(data, path, profile, ctx)
        seconds = _best(partial(condition, data, path, profile, ctx), args.repeats)
        arrow = None
        if profile.format == "csv":
            read = partial(
                pacsv.read_csv,
                read_options=pacsv.ReadOptions(encoding=profile.encoding),
                parse_options=pacsv.ParseOptions(delimiter=profile.delimiter),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(profile.raw_columns, pa.string())
                ),
            )
            assert read(io.BytesIO(data)).num_rows == result.rows_in, path
            arrow = _best(lambda: read(io.BytesIO(data)), args.repeats)  # noqa: B023
        rows.append((profile.format, result.rows_in, len(data), seconds, arrow))
    frame = pd.DataFrame(rows, columns=["format", "rows", "bytes", "condition_s", "arrow_s"])
    print("| files | format | rows | MB | condition rows/s | pyarrow read rows/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for fmt, part in [("csv", frame[frame["format"] == "csv"]), *[
        (f, frame[frame["format"] == f]) for f in ("json", "xlsx", "ics")
    ]]:  # fmt: skip
        cond = part["rows"].sum() / part["condition_s"].sum()
        if fmt == "csv":
            arrow = part["rows"].sum() / part["arrow_s"].sum()
            extra = f"{arrow:,.0f} | {cond / arrow:.2f}"
        else:
            extra = "– | –"
        print(
            f"| {len(part)} | {fmt} | {part['rows'].sum():,} | {part['bytes'].sum() / 1e6:.1f} "
            f"| {cond:,.0f} | {extra} |"
        )
    total = frame["rows"].sum() / frame["condition_s"].sum()
    print(f"| {len(frame)} | all | {frame['rows'].sum():,} | {frame['bytes'].sum() / 1e6:.1f} "
          f"| {total:,.0f} | – | – |")  # fmt: skip


if __name__ == "__main__":
    main()
