"""Bring your own data, with the commands of docs/bring-your-own-data.md: a new deployment, three
raw exports in shapes unlike the sample's, their profiles, conditioning, forecasts and a
backtest; and the loud warning when most of a file is rejected."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from demandops.cli.main import main
from tests.byod_exports import write_exports

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "byod"


def _deployment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """`demandops init acme`, the example's regions and profiles, the exports in the lake."""
    acme = tmp_path / "acme"
    assert main(["init", str(acme)]) == 0
    assert "deployment scaffolded" in capsys.readouterr().out
    shutil.copy(EXAMPLE / "regions.yaml", acme / "config" / "regions.yaml")
    for profile in (EXAMPLE / "sources").glob("*.yaml"):
        shutil.copy(profile, acme / "config" / "sources" / profile.name)
    env = acme / "config" / "environments" / "dev.yaml"
    env.write_text(env.read_text().replace("max_workers: 2", "max_workers: 1"))
    write_exports(acme / "lake")
    return acme


def test_three_foreign_exports_go_from_raw_files_to_forecasts_and_a_backtest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    acme = _deployment(tmp_path, capsys)
    config = ["--config", str(acme / "config"), "--quiet"]
    raw = acme / "lake" / "raw"

    draft = tmp_path / "draft.yaml"
    east = raw / "shipments" / "region=east" / "dept_sales.csv"
    assert main(["profile", "suggest", str(east), "--out", str(draft)]) == 0
    assert capsys.readouterr().out == f"draft profile: {draft}\n"
    suggested = yaml.safe_load(draft.read_text())
    assert suggested["columns"]["week_start"] == {
        "from": "Date", "format": "%d/%m/%Y", "offset_days": -4
    }  # fmt: skip
    assert suggested["columns"]["units"] == {"from": "Weekly_Sales", "round": "nearest"}

    assert main(["condition", *config, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = {s["path"].split("/v=")[0].removeprefix("conditioned/"): s for s in summary["sources"]}
    for s in rows.values():  # every raw row is out, aggregated into an output row, or rejected
        assert s["rows_in"] == s["rows_out"] + s["rows_aggregated"] + s["rows_rejected"]
    assert rows["shipments/region=rhein"]["rows_out"] == 5 * 104  # days -> weeks
    assert rows["shipments/region=east"]["rows_out"] == 3 * 3 * 104  # CR line endings read
    assert rows["shipments/region=east"]["rows_rejected"] == 0  # cents -> units, returns booked
    web = rows["shipments/region=web"]  # Sunday weeks (the first and last only partly in the
    # log), 2 stores x 3 products x 103 whole weeks, less 2 weeks in which a product sold nothing
    assert web["rows_out"] == 616 and set(web["rejected_by_reason"]) == {"partial_week"}
    assert rows["stores"]["rows_out"] == 5 + 3 + 2 and rows["stores"]["rows_rejected"] == 0
    assert rows["events"]["rows_out"] == 13  # the state holidays, once each
    absent = {n for n, s in rows.items() if s["absent"]}
    assert absent == {"products", "shoppers", "weather"} | {
        f"{feed}/region={r}" for feed in ("returns", "promotions") for r in ("rhein", "east", "web")
    }
    assert summary["warnings"] == [] and summary["unreadable"] == []

    report_path = tmp_path / "report.json"
    assert main(["run", *config, "--report-json", str(report_path)]) == 0
    out = capsys.readouterr().out
    assert "feeds used: stores, events, shipments, returns; absent: products, shoppers" in out
    report = json.loads(report_path.read_text())
    assert (
        report["feeds"]["returns"].startswith("used (")
        and "negative shipments" in (report["feeds"]["returns"])
    )
    forecasts = pd.concat(
        pd.read_csv(p) for p in (acme / "lake" / "forecasts").rglob("forecasts.csv")
    )
    assert set(forecasts["region"]) == {"rhein", "east", "web"}
    assert (forecasts["forecast"] >= 0).all()
    assert main(["dashboard", *config[:2], "--out", str(tmp_path / "dash")]) == 0
    page = (tmp_path / "dash" / "index.html").read_text()
    assert '"feeds_absent":"products, shoppers, weather, promotions"' in page
    assert '"source":"weather","version":' in page and '"absent":true' in page

    backtest = ["backtest", *config, "--rounds", "2", "--horizon", "2", "--gap", "1"]
    assert main([*backtest, "--peer", "lightgbm", "--json", str(tmp_path / "bt.json")]) == 0
    out = capsys.readouterr().out
    assert "backtest: 2 rounds, 2 weeks each after a gap of 1" in out
    tables = json.loads((tmp_path / "bt.json").read_text())
    configured = {"ensemble", "lasso", "nn", "hist_avg", "same_woy_avg", "lightgbm"}  # a peer
    overall = {r["model"]: r for r in tables["overall"]}
    # the trees on trial appear in the rounds and segments where they joined the ensemble
    assert configured <= overall.keys() <= configured | {"boosting"}
    for r in overall.values():
        full = r["model"] in configured
        assert (r["n_rows"] == 2 * 2 * (5 + 9 + 6)) if full else (0 < r["n_rows"] <= 2 * 2 * 20)
        assert 0 <= r["wape"] < 1
        assert f"overall                 {r['model']:<16}{r['n_rows']:>7}" in out


def test_a_file_mostly_rejected_is_a_loud_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The department export read without a price: cents are no whole units."""
    acme = _deployment(tmp_path, capsys)
    sources = acme / "config" / "sources"
    for name in ("rhein_sales", "rhein_stores", "rhein_holidays", "web_transactions", "web_stores"):
        (sources / f"{name}.yaml").unlink()
    profile = sources / "east_sales.yaml"
    profile.write_text(profile.read_text().replace("price: 2.50, round: nearest, ", ""))
    config = ["--config", str(acme / "config"), "--quiet", "--region", "east"]
    assert main(["condition", *config]) == 0
    captured = capsys.readouterr()
    warning = "of the 936 rows of raw/shipments/region=east/dept_sales.csv were rejected"
    assert "WARNING: " in captured.err and warning in captured.err
    assert "(more than 50%; bad_number " in captured.err
    quality = next((acme / "lake" / "monitoring" / "data_quality").rglob("checks.csv"))
    checks = pd.read_csv(quality)
    assert checks[checks["check"] == "rejected_share"]["status"].tolist() == ["warn"]
