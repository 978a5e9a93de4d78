"""The dashboards in real headless Chromium: no console error, the numbers on the rendered page
are those of the monitoring tables, the filters work, `--serve` serves the same page."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import urllib.request
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from demandops.cli import main
from demandops.core.lake import Lake
from demandops.core.settings import Settings
from demandops.monitoring import dashboard
from demandops.monitoring import tables as monitoring
from demandops.pipeline.batch import run_batch
from tests.browser import Browser
from tests.conftest import ROOT

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
]  # fmt: skip


def _chromium(tmp_path: Path, url: str, *args: str) -> str:
    """Load `url` in a fresh headless Chromium; fail on any console message; return stdout."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    done = subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    return done.stdout


def _fixed(value: float, digits: int) -> str:
    """`value.toFixed(digits)` as the page's script writes it: the exact binary value rounded,
    a tie away from zero (Python's `:.2f` rounds a tie such as 0.125 to even)."""
    exact = Decimal(float(value) + 0.0)  # + 0.0: -0.0 becomes 0.0
    return str(exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def _cells(dom: str) -> dict[str, str]:
    assert 'data-ready="1"' in dom  # the script ran to its end
    return dict(re.findall(r'data-k="([^"]*)">([^<]*)<', dom))


def _table(lake: Lake, name: str) -> pd.DataFrame:
    path = monitoring.latest(lake)
    return pd.read_parquet(io.BytesIO(lake.read_bytes(f"{path}/{name}.parquet")))


@pytest.fixture
def batched(batched_small_lake: tuple[Settings, Lake, dict[str, Any]]) -> tuple[Settings, Lake]:
    """The small sample after one batch (tests/conftest.py): read, never changed."""
    return batched_small_lake[0], batched_small_lake[1]


def test_dashboard_renders_the_monitoring_tables(
    batched: tuple[Settings, Lake], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, small_lake = batched
    site = tmp_path / "site"
    assert main(["dashboard", "--config", str(settings.config_dir), "--out", str(site)]) == 0
    assert str(site / "index.html") in capsys.readouterr().out
    html = (site / "index.html").read_text()
    assert not re.search(r"<link|<img|\bsrc=|\bhref=|@import|url\(", html)  # self-contained

    training = _cells(_chromium(tmp_path, f"{(site / 'index.html').as_uri()}", "--dump-dom"))
    chosen = _table(small_lake, "model_metrics").query("chosen")
    assert len(chosen) == 8
    for row in chosen.itertuples():
        for metric in ("mape", "rmse", "rmse0", "wape", "bias", "coverage80"):
            value = getattr(row, metric)  # NaN (e.g. RMSE0 without zero actuals): blank
            assert training[f"{row.segment}|{metric}"] == (
                "" if pd.isna(value) else _fixed(value, 4)
            )

    url = f"{(site / 'index.html').as_uri()}#view=monitor&region=tx"
    monitor = _cells(_chromium(tmp_path, url, "--dump-dom"))
    regions = {k.split("|")[0].split(".")[0] for k in monitor}
    assert regions == {"tx", ""}  # the region filter ("": reference sources, of every region)
    sources = _table(small_lake, "sources").set_index(["region", "source"])
    assert monitor["tx|shipments|rejected"] == str(
        sources.loc[("tx", "shipments"), "rows_rejected"]
    )
    staleness = _table(small_lake, "staleness").set_index("segment")
    assert monitor["tx.large.fast|age"] == str(staleness.loc["tx.large.fast", "age_days"])
    drift = _table(small_lake, "drift").set_index(["region", "feature"])
    assert monitor["tx|units|psi"] == _fixed(drift["psi"].loc[("tx", "units")], 4)
    quality = _table(small_lake, "data_quality")
    for row in quality[quality["region"] == "tx"].itertuples():
        assert monitor[f"tx|{row.check}"] == row.status
    actuals = _table(small_lake, "forecast_actuals")
    tx = actuals[(actuals["region"] == "tx") & (actuals["model"] == "ensemble")]
    dom = _chromium(tmp_path, url, "--dump-dom")
    assert f'data-actual="{_fixed(tx["actual"].sum(), 2)}"' in dom
    assert f'data-forecast="{_fixed(tx["forecast"].sum(), 2)}"' in dom

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard-monitor.png"
    shot.unlink(missing_ok=True)
    monitor_all = f"{(site / 'index.html').as_uri()}#view=monitor"
    _chromium(tmp_path, monitor_all, f"--screenshot={shot}", "--window-size=1400,1800")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000

    server, thread = dashboard.serve_in_background(site)
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.read().decode() == html
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_dashboard_without_monitoring_tables_is_a_clear_error(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["dashboard", "--config", str(settings.config_dir), "--out", str(tmp_path / "x")])
    assert code == 2
    assert "no monitoring tables" in capsys.readouterr().err


def test_stale_champions_are_highlighted(batched: tuple[Settings, Lake], tmp_path: Path) -> None:
    _, small_lake = batched
    payload = dashboard.data(small_lake, stale_after_days=60)
    old, limit_day = payload["staleness"][0], payload["staleness"][1]
    old["age_days"], old["stale"] = 75, True  # as a champion trained 75 days ago is listed
    limit_day["age_days"] = 60  # not more than the limit: not stale
    page = tmp_path / "stale.html"
    page.write_text(dashboard.render(payload), encoding="utf-8")
    dom = _chromium(tmp_path, f"{page.as_uri()}#view=monitor", "--dump-dom")
    rows = re.findall(r'<tr class="(\w*)"><td class="text">(\w+\.\w+\.\w+)</td><td class="text">'
                      r'\w+</td><td class="text">\d+</td>', dom)  # fmt: skip
    classes = dict((segment, cls) for cls, segment in rows)
    assert classes[old["segment"]] == "stale" and classes[limit_day["segment"]] == ""
    assert list(classes.values()).count("stale") == 1
    assert _cells(dom)[f"{old['segment']}|age"] == "75"


CELLS = "Object.fromEntries([...document.querySelectorAll('#view-{view} [data-k]')]" \
    ".map((e) => [e.dataset.k, e.textContent]))"  # fmt: skip


def _visible(browser: Browser, view: str) -> bool:
    return bool(browser.eval(f"getComputedStyle(document.getElementById('view-{view}'))"
                             ".display !== 'none'"))  # fmt: skip


def test_filters_and_tabs_respond_to_clicks_and_keys(
    batched: tuple[Settings, Lake], tmp_path: Path
) -> None:
    _, small_lake = batched
    page = dashboard.write(small_lake, tmp_path / "site", stale_after_days=60)
    chosen = _table(small_lake, "model_metrics").query("chosen").set_index("segment")
    with Browser(tmp_path / "profile") as browser:
        browser.open(page.as_uri())
        ties = [0.125, 0.375, -0.125, 0.135, 2.5, -0.0]  # half away from zero, not to even
        assert browser.eval(f"{ties}.map((v) => v.toFixed(2))") == [_fixed(v, 2) for v in ties]
        assert _visible(browser, "training") and not _visible(browser, "monitor")
        training = browser.eval(CELLS.format(view="training"))
        assert {k.split("|")[0] for k in training} == set(chosen.index)  # 8 segments

        browser.click("#tab-monitor")
        assert _visible(browser, "monitor") and not _visible(browser, "training")
        browser.choose("#f-region", "tx")
        monitor = browser.eval(CELLS.format(view="monitor"))
        assert {k.split("|")[0].split(".")[0] for k in monitor} == {"tx", ""}
        steps = _table(small_lake, "steps").set_index(["region", "step"])
        for step in ("condition", "features", "train", "register", "score"):
            assert monitor[f"tx|{step}|status"] == "completed"
            assert monitor[f"tx|{step}|seconds"] == _fixed(steps["seconds"].loc[("tx", step)], 2)
        drift = _table(small_lake, "drift").set_index(["region", "feature"])
        assert monitor["tx|temp_max_c|shift"] == _fixed(drift["shift"].loc[("tx", "temp_max_c")], 4)
        sources = _table(small_lake, "sources").set_index(["region", "source"])
        assert monitor["tx|returns|rejected"] == str(
            sources.loc[("tx", "returns"), "rows_rejected"]
        )

        browser.choose("#f-format", "large")
        browser.choose("#f-velocity", "fast")
        monitor = browser.eval(CELLS.format(view="monitor"))
        assert {k.split("|")[0] for k in monitor if k.endswith("|age")} == {"tx.large.fast"}
        holdout = _table(small_lake, "forecast_actuals").query(
            "region == 'tx' and store_format == 'large' and velocity == 'fast'"
        )
        ensemble = holdout[holdout["model"] == chosen.loc["tx.large.fast", "model"]]
        assert browser.eval("document.getElementById('actuals-chart').dataset.actual") == (
            _fixed(ensemble["actual"].sum(), 2)
        )

        browser.click("#tab-training")
        assert _visible(browser, "training") and not _visible(browser, "monitor")
        training = browser.eval(CELLS.format(view="training"))
        assert {k.split("|")[0] for k in training} == {"tx.large.fast"}
        for metric in ("mape", "rmse", "wape"):
            assert training[f"tx.large.fast|{metric}"] == _fixed(
                chosen[metric].loc["tx.large.fast"], 4
            )

        browser.choose("#f-region", "")
        browser.choose("#f-velocity", "")
        training = browser.eval(CELLS.format(view="training"))
        assert {k.split("|")[0] for k in training} == {s for s in chosen.index if ".large." in s}
        shot = ARTIFACTS / "dashboard-training-large.png"
        ARTIFACTS.mkdir(exist_ok=True)
        shot.write_bytes(base64.b64decode(browser.send("Page.captureScreenshot")["data"]))
        assert browser.console() == []


def test_training_view_lists_every_model_version(
    settings: Settings, small_lake: Lake, tmp_path: Path
) -> None:
    first = run_batch(settings, ["pnw"], progress=False, today=date(2026, 9, 1))
    # 61 days later the champions are stale: the batch refits and registers version 2
    second = run_batch(settings, ["pnw"], progress=False, today=date(2026, 11, 1))
    assert all(s["candidate_version"] == "2" and s["promoted"] for s in second["segments"])
    runs = {r["run_id"]: {f"pnw.{s['store_format']}.{s['velocity']}": s for s in r["segments"]}
            for r in (first, second)}  # fmt: skip
    page = dashboard.write(small_lake, tmp_path / "site", stale_after_days=60)
    with Browser(tmp_path / "profile") as browser:
        browser.open(page.as_uri())
        rows = browser.eval(
            "[...document.querySelectorAll('#versions-table tr')].slice(1)"
            ".map((tr) => [...tr.cells].map((td) => td.textContent))"
        )
        assert browser.console() == []
    assert len(rows) == 8  # 4 segments × 2 versions
    for segment, version, run_id, mape, *_ in rows:
        s = runs[run_id][segment]
        assert str(s["candidate_version"]) == version and mape == _fixed(s["mape"], 4)
    versions = {(seg, ver) for seg, ver, *_ in rows}
    assert {v for _, v in versions} == {"1", "2"} and len(versions) == 8
