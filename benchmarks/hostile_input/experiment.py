"""What hostile raw files cost the reader: a workbook claiming the whole sheet, a JSON document
nested 100,000 deep, and the depth check's share of reading an ordinary large JSON document.

    .venv/bin/python benchmarks/hostile_input/experiment.py [--root OTHER_CHECKOUT] [--rows N]

Each case runs in a fresh process (peak RSS is per process) with a watchdog that stops it at
3 GB or 90 s; `--root` reads with another checkout's conditioners (e.g. the code before the
limits) to compare.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import os, resource, sys, threading, time
sys.path.insert(0, {root!r})
from pathlib import Path
from conditioners.profile import load_profile
from conditioners.readers import read_raw
start = time.time()
def watch():
    while True:
        time.sleep(0.2)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        if rss > 3 or time.time() - start > 90:
            print(f"stopped at {{time.time() - start:.0f}} s, peak RSS {{rss:.2f}} GB", flush=True)
            os._exit(3)
threading.Thread(target=watch, daemon=True).start()
profile = load_profile(Path({root!r}) / "config" / "sources" / {profile!r})
data = Path({path!r}).read_bytes()
try:
    raw = read_raw(data, {path!r}, profile)
    what = f"{{raw.table.num_rows}} rows x {{raw.table.num_columns}} columns"
except Exception as exc:
    what = f"{{type(exc).__name__}}: {{str(exc)[:90]}}"
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
print(f"{{what}}; {{time.time() - start:.1f}} s, peak RSS {{rss:.2f}} GB")
"""


def claimed_xlsx(rows: int) -> bytes:
    """A shoppers workbook of `rows` rows whose sheet claims the dimension A1:XFD1048576."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Demographics")
    sheet.append(["Demographics"])
    sheet.append([])
    sheet.append(["Store #", "Population (3 mi)", "Median HH Income ($)", "% Under 18", "% 60+",
                  "Avg HH Size"])  # fmt: skip
    for i in range(rows):
        sheet.append([f"S{i}", 1000 + i, 50000 + i, 20.5, 15.25, 2.5])
    out, patched = io.BytesIO(), io.BytesIO()
    book.save(out)
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(patched, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.startswith("xl/worksheets/sheet"):
                data = re.sub(rb"<dimension [^>]*/>", b"", data)
                data = re.sub(rb"(<worksheet[^>]*>)", rb'\1<dimension ref="A1:XFD1048576"/>', data)
            dst.writestr(item, data)
    return patched.getvalue()


def deep_json() -> bytes:
    return b'{"zip": "98101", "daily": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def depth_share(records: int) -> str:
    """Seconds of json.loads and of the depth check on an ordinary document (best of 5)."""
    sys.path.insert(0, str(ROOT))
    from demandops.core.limits import bracket_depth

    daily = [{"date": f"2017-01-{i % 28 + 1:02d}", "tmax": 41.5, "tmin": 25.5, "precip": 0.0,
              "snow": 0.0} for i in range(records)]  # fmt: skip
    text = json.dumps({"zip": "98101", "daily": daily}).encode()

    def best(fn: object) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            fn(text)  # type: ignore[operator]
            times.append(time.perf_counter() - start)
        return min(times)

    loads, depth = best(json.loads), best(bracket_depth)
    return f"{len(text) / 1e6:.1f} MB: json.loads {loads:.3f} s, depth check {depth:.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(ROOT), help="checkout whose conditioners read")
    parser.add_argument("--rows", type=int, default=250_000, help="rows of the workbook")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "shoppers_xlsx.yaml": (Path(tmp) / "claims.xlsx", claimed_xlsx(args.rows)),
            "weather_observations_json.yaml": (Path(tmp) / "deep.json", deep_json()),
        }
        for profile, (path, data) in cases.items():
            path.write_bytes(data)
            code = CHILD.format(root=args.root, profile=profile, path=str(path))
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            result = (out.stdout.strip() or out.stderr.strip().splitlines()[-1])[:200]
            print(f"{path.name} ({len(data) / 1e6:.1f} MB): {result}")
    print("depth check,", depth_share(400_000))


if __name__ == "__main__":
    main()
