"""The model lifecycle through the batch and the CLI, on a real MLflow sqlite store: promotion
accepted and rejected, rollback, staleness, failover, dev → prod, lineage to raw files.

One region is trained once per module; each test works on a copy of that lake and registry."""

from __future__ import annotations

import json
import pickle
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from demandops.cli import main
from demandops.core.hashing import sha256_bytes
from demandops.core.lake import Dataset, Lake
from demandops.core.settings import Settings, load_settings
from demandops.lifecycle import champions, promotion
from demandops.lifecycle.lineage import forecast_lineage
from demandops.lifecycle.registry import Registry, model_name
from demandops.pipeline.batch import run_batch
from tests.conftest import ROOT

D0 = date(2026, 1, 5)
SEGMENTS = [f"pnw.{f}.{v}" for f in ("large", "small") for v in ("fast", "slow")]


def _config(folder: Path, lake: Path) -> Path:
    """The project's config with dev's lake at `lake` and a prod environment on this machine."""
    config = folder / "config"
    shutil.copytree(ROOT / "config", config)
    env = config / "environments" / "dev.yaml"
    text = env.read_text().replace("lake: .lake", f"lake: {lake}")
    env.write_text(text.replace("max_workers: 2", "max_workers: 1"))
    (config / "environments" / "prod.yaml").write_text(
        f"name: prod\nlake: {folder / 'prod-lake'}\nregistry_uri: sqlite:///{{lake}}/mlflow.db\n"
        "compute: local\nmax_workers: 1\npromotion: manual\n"
        "orchestration: {poll_seconds: 0.5, timeout_minutes: 60, submit_attempts: 3, "
        "retry_seconds: 1}\n"
    )
    return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, small_lake_template: Path) -> Path:
    """A lake whose pnw segments were trained, registered and promoted on D0."""
    folder = tmp_path_factory.mktemp("trained")
    shutil.copytree(small_lake_template, folder / "lake")
    run_batch(load_settings(_config(folder, folder / "lake")), ["pnw"], progress=False, today=D0)
    return folder


@pytest.fixture
def dev(trained: Path, tmp_path: Path) -> Settings:
    """Settings of a fresh copy of the trained lake (and registry) for one test."""
    shutil.copytree(trained / "lake", tmp_path / "lake")
    (tmp_path / "prod-lake").mkdir()
    return load_settings(_config(tmp_path, tmp_path / "lake"))


def _segments(report: dict) -> dict[str, dict]:
    return {f"{s['region']}.{s['store_format']}.{s['velocity']}": s for s in report["segments"]}


def _forecasts(lake: Lake, report: dict) -> pd.DataFrame:
    path = report["regions"]["pnw"]["paths"]["forecasts"]
    return lake.read_csv(f"{path}/forecasts.csv", keep_default_na=False)


def _ctx(settings: Settings, today: date, **gates: float) -> champions.LifecycleContext:
    cfg = settings.pipeline.lifecycle.model_copy(update=gates)
    return champions.context(settings.environment, cfg, today)


def _new_candidate(lake: Lake, report: dict, tag: str, worse: float = 1.0) -> Dataset:
    """The region's model dataset committed again under a new version (a new candidate, as a
    retrain would give, without the cost); `worse` scales its backtest errors."""
    model = lake.dataset(report["regions"]["pnw"]["paths"]["model"])
    assert model is not None
    trained = pickle.loads(lake.read_bytes(model.file("model.pkl")))
    trained.metrics[["mape", "wape"]] *= worse
    files = {f.rsplit("/", 1)[1]: lake.read_bytes(f) for f in lake.list_files(model.path)}
    files.pop("manifest.json")
    files["model.pkl"] = pickle.dumps(trained)
    manifest = {k: v for k, v in model.manifest.items() if k != "files"} | {"version": tag}
    return lake.commit_dataset(f"models/region=pnw/v={tag}", files, manifest)


def _features(lake: Lake, report: dict) -> Dataset:
    features = lake.dataset(report["regions"]["pnw"]["paths"]["features"])
    assert features is not None
    return features


def test_first_batch_registers_and_promotes_every_segment(dev: Settings) -> None:
    lake = Lake(dev.environment.lake)
    report = run_batch(dev, ["pnw"], progress=False, today=D0)  # a re-run: nothing new
    assert report["scoring_date"] == D0.isoformat()
    segments = _segments(report)
    assert sorted(segments) == SEGMENTS
    for s in segments.values():
        assert s["champion_version"] == "1" and s["candidate_version"] == "1"
        assert s["stale"] is False and s["fallback"] == "" and s["trained_on"] == D0.isoformat()
        assert s["retrain_reasons"] == []  # the champion is current
        assert s["gate_reasons"][0].startswith("wape ")
    registry = champions.open_registry(dev.environment)
    for segment in SEGMENTS:
        v1 = registry.version(model_name(segment), "1")
        assert v1.tags["status"] == "champion" and v1.tags["gate_passed"] == "true"
        assert v1.tags["retrain_reasons"] == "no champion"
        assert v1.tags["git_commit"] != "" and v1.tags["code_version"] != ""
        run = registry.run(v1.tags["run_id"])
        assert run.data.params["model_kind"] == "ensemble"
        assert run.data.metrics["ensemble.wape"] == pytest.approx(
            segments[segment]["wape"], abs=1e-6
        )
        rows = pd.read_csv(
            f"{lake.location()}/monitoring/promotions/{model_name(segment)}/v1-promoted.csv"
        )
        assert rows.loc[0, "decision"] == "promoted" and rows.loc[0, "gate_metric"] == "wape"
    forecasts = _forecasts(lake, report)
    assert (forecasts["model"] == "ensemble").all() and (forecasts["model_version"] == 1).all()
    table = pd.read_csv(report["champions_path"])
    assert list(table["champion_version"]) == [1, 1, 1, 1] and not table["stale"].any()


def test_a_better_or_equal_candidate_is_promoted_and_rollback_restores(
    dev: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = Lake(dev.environment.lake)
    report = run_batch(dev, ["pnw"], progress=False, today=D0)
    ctx = _ctx(dev, D0)
    model = _new_candidate(lake, report, "retrained")
    decisions = champions.register_region(ctx, lake, model, _features(lake, report), {})
    registry = champions.open_registry(dev.environment)
    for segment, d in decisions.items():
        assert d.promoted and d.candidate_version == "2", d
        assert "vs champion v1" in d.gate_reasons[2] and "within 5% tolerance" in d.gate_reasons[2]
        assert registry.champion(model_name(segment)).version == 2  # type: ignore[union-attr]

    args = ["--config", str(dev.config_dir)]
    assert main(["models", "rollback", "pnw.large.fast", *args]) == 0
    assert "champion v2 -> v1 (rolled back)" in capsys.readouterr().out
    assert registry.champion(model_name("pnw.large.fast")).version == 1  # type: ignore[union-attr]
    assert main(["models", "list", *args]) == 0
    listing = capsys.readouterr().out
    assert "demand.pnw.large.fast" in listing and "v2 rolled_back" in listing
    assert main(["models", "show", "demand.pnw.small.slow", *args]) == 0
    assert "v2 (champion): champion" in capsys.readouterr().out

    assert main(["models", "promote", "pnw.large.fast", "--version", "2", *args]) == 0
    assert "demand.pnw.large.fast v2 is now champion in dev" in capsys.readouterr().out
    assert registry.champion(model_name("pnw.large.fast")).version == 2  # type: ignore[union-attr]
    files = Lake(dev.environment.lake).list_files("monitoring/promotions/demand.pnw.large.fast")
    names = [f.rsplit("/", 1)[1].split("-2", 1)[0] for f in files]
    assert names == ["v1-promoted.csv", "v1-rollback", "v2-promoted-manual", "v2-promoted.csv"]


def test_a_failing_candidate_leaves_the_champion_in_place(dev: Settings) -> None:
    lake = Lake(dev.environment.lake)
    report = run_batch(dev, ["pnw"], progress=False, today=D0)
    features = _features(lake, report)
    registry = champions.open_registry(dev.environment)

    strict = _ctx(dev, D0, max_error=0.05)
    model = _new_candidate(lake, report, "strict")
    for d in champions.register_region(strict, lake, model, features, {}).values():
        assert not d.promoted and d.candidate_version == "2"
        assert d.gate_reasons[0].endswith("> max 0.05")

    lenient = _ctx(dev, D0, max_error=10.0, min_improvement_over_baseline=0.0)
    worse = _new_candidate(lake, report, "worse", worse=1.5)
    for segment, d in champions.register_region(lenient, lake, worse, features, {}).items():
        assert not d.promoted and "beyond 5% tolerance" in d.gate_reasons[2], d
        name = model_name(segment)
        assert registry.champion(name).version == 1  # type: ignore[union-attr]
        v3 = registry.version(name, "3")
        assert v3.tags["status"] == "rejected" and v3.tags["gate_passed"] == "false"
        rows = pd.read_csv(f"{lake.location()}/monitoring/promotions/{name}/v3-rejected.csv")
        reasons = rows.loc[0, "reasons"]
        assert isinstance(reasons, str) and "beyond 5% tolerance" in reasons

    again = run_batch(dev, ["pnw"], progress=False, today=D0)
    assert {s["champion_version"] for s in again["segments"]} == {"1"}
    assert (_forecasts(lake, again)["model_version"] == 1).all()
    with pytest.raises(promotion.RegistryError, match="did not pass the promotion gates"):
        promotion.promote(dev.environment, dev.environment, model_name(SEGMENTS[0]), "3", D0)


@pytest.mark.parametrize("days", [59, 60])
def test_a_champion_up_to_60_days_old_is_current(dev: Settings, days: int) -> None:
    report = run_batch(dev, ["pnw"], progress=False, today=D0 + timedelta(days=days))
    for s in report["segments"]:
        assert s["retrain_reasons"] == [] and s["stale"] is False
        assert s["champion_version"] == "1" and s["trained_on"] == D0.isoformat()
    table = pd.read_csv(report["champions_path"])
    assert set(table["age_days"]) == {days} and not table["stale"].any()


def test_a_stale_champion_is_retrained(dev: Settings) -> None:
    day61 = D0 + timedelta(days=61)
    report = run_batch(dev, ["pnw"], progress=False, today=day61)
    model = Lake(dev.environment.lake).dataset(report["regions"]["pnw"]["paths"]["model"])
    assert model is not None and model.manifest["refresh"] == day61.isoformat()
    for s in report["segments"]:
        assert s["retrain_reasons"] == ["stale: trained 61 days before the scoring date (> 60)"]
        assert s["promoted"] and s["champion_version"] == "2"
        assert s["trained_on"] == day61.isoformat() and s["stale"] is False

    # one segment back on its old champion: only it is stale, only it gets a new candidate
    promotion.rollback(dev.environment, model_name("pnw.large.fast"), day61)
    day62 = day61 + timedelta(days=1)
    segments = _segments(run_batch(dev, ["pnw"], progress=False, today=day62))
    assert segments["pnw.large.fast"]["retrain_reasons"] == [
        "stale: trained 62 days before the scoring date (> 60)"
    ]
    assert segments["pnw.large.fast"]["candidate_version"] == "3"
    assert segments["pnw.large.fast"]["champion_version"] == "3"
    for name in SEGMENTS[1:]:
        assert segments[name]["retrain_reasons"] == [] and segments[name]["candidate_version"] == ""
        assert segments[name]["champion_version"] == "2" and not segments[name]["promoted"]


def test_prod_scores_only_models_promoted_to_prod_and_flags_stale(
    dev: Settings, small_lake_template: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prod = load_settings(dev.config_dir, "prod")
    prod_lake = Path(prod.environment.lake)
    shutil.copy(small_lake_template / "mlflow.db", prod_lake / "mlflow.db")  # an empty store
    for zone in ("raw", "conditioned", "features", "models"):  # prod's own copy of the data
        shutil.copytree(Path(dev.environment.lake) / zone, prod_lake / zone)

    before = run_batch(prod, ["pnw"], progress=False, today=D0)
    forecasts = _forecasts(Lake(str(prod_lake)), before)
    assert (forecasts["model"] == "baseline").all() and (
        forecasts["fallback"] == "no champion"
    ).all()
    assert all(s["candidate_version"] == "" for s in before["segments"])  # nothing registered

    args = ["--config", str(dev.config_dir)]
    assert main(["models", "promote", "--to", "prod", *args]) == 0
    out = capsys.readouterr().out
    assert out.count("dev v1 -> prod v1 (champion)") == 4
    prod_registry = champions.open_registry(prod.environment)
    v1 = prod_registry.version(model_name("pnw.large.fast"), "1")
    assert v1.tags["source_environment"] == "dev" and v1.tags["environment"] == "prod"

    late = run_batch(prod, ["pnw"], progress=False, today=D0 + timedelta(days=61))
    forecasts = _forecasts(Lake(str(prod_lake)), late)
    assert (forecasts["model"] == "ensemble").all() and (forecasts["model_version"] == 1).all()
    assert forecasts["stale"].all()  # prod is not retrained by its batch: flagged stale
    assert pd.read_csv(late["champions_path"])["stale"].all()

    run_id = v1.tags["run_id"]
    assert main(["lineage", run_id, "--json", "--env", "prod", *args]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["segment"] == "pnw.large.fast" and found["data"]["conditioned"]


def test_unusable_champion_falls_back_to_baseline_for_that_segment_only(dev: Settings) -> None:
    lake = Lake(dev.environment.lake)
    report = run_batch(dev, ["pnw"], progress=False, today=D0)
    model = _new_candidate(lake, report, "fragile")
    champions.register_region(_ctx(dev, D0), lake, model, _features(lake, report), {})
    registry = champions.open_registry(dev.environment)
    for segment in SEGMENTS[1:]:
        registry.rollback(model_name(segment))  # only pnw.large.fast keeps the new champion
    lake.write_bytes(f"{model.path}/model.pkl", b"truncated")  # its artefact is lost

    after = run_batch(dev, ["pnw"], progress=False, today=D0)
    forecasts = _forecasts(lake, after)
    broken = forecasts["store_format"].eq("large") & forecasts["velocity"].eq("fast")
    assert (forecasts.loc[broken, "model"] == "baseline").all()
    assert forecasts.loc[broken, "fallback"].str.startswith("champion unusable").all()
    assert (forecasts.loc[~broken, "model"] == "ensemble").all()
    assert (forecasts.loc[~broken, "fallback"] == "").all()


def test_lineage_from_a_forecast_file_reaches_the_raw_files(
    dev: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = Lake(dev.environment.lake)
    report = run_batch(dev, ["pnw"], progress=False, today=D0)
    path = lake.location(report["regions"]["pnw"]["paths"]["forecasts"]) + "/forecasts.csv"
    assert main(["lineage", path, "--json", "--config", str(dev.config_dir)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert sorted(found["segments"]) == SEGMENTS
    seg = found["segments"]["pnw.large.fast"]
    assert seg["version"] == "1" and seg["run"]["model_dataset"].startswith("models/region=pnw/")
    raw = {f: h for c in seg["run"]["data"]["conditioned"] for f, h in c["raw_files"].items()}
    assert any(f.startswith("raw/shipments/region=pnw/") for f in raw)
    for f, digest in raw.items():
        assert sha256_bytes(lake.read_bytes(f)) == digest
    assert main(["lineage", path, "--config", str(dev.config_dir)]) == 0
    assert "raw/shipments/region=pnw/" in capsys.readouterr().out


def test_new_data_is_judged_against_the_champion_on_the_new_weeks(dev: Settings) -> None:
    """A week more of shipments: every segment retrains for "new data", and the champion's
    frozen model is scored on the candidate's backtest rows it never saw."""
    lake = Lake(dev.environment.lake)
    weekly = [
        f
        for f in lake.list_files("raw/shipments/region=pnw")
        if "_week_" in f and "resend" not in f
    ]
    raw = lake.read_csv(max(weekly), dtype=str)  # distributor A's latest weekly file
    ends = pd.to_datetime(raw["Week Ending"], format="%m/%d/%Y", errors="coerce")
    week = raw[ends == ends.max()].copy()
    week["Week Ending"] = (ends.max() + pd.Timedelta(weeks=1)).strftime("%m/%d/%Y")
    new_file = (
        f"raw/shipments/region=pnw/dist_a_week_{(ends.max() + pd.Timedelta(days=1)):%Y-%m-%d}.csv"
    )
    lake.write_bytes(new_file, week.to_csv(index=False).encode())

    report = run_batch(dev, ["pnw"], progress=False, today=D0 + timedelta(days=7))
    registry = champions.open_registry(dev.environment)
    for name, s in _segments(report).items():
        assert len(s["retrain_reasons"]) == 1 and s["retrain_reasons"][0].startswith("new data: ")
        assert s["candidate_version"] == "2"
        assert (
            "vs champion v1 " in s["gate_reasons"][2]
            and "on the same window" in s["gate_reasons"][2]
        )
        decision = "promoted" if s["promoted"] else "rejected"
        row = pd.read_csv(
            f"{lake.location()}/monitoring/promotions/{model_name(name)}/v2-{decision}.csv"
        ).iloc[0]
        assert row["champion_same_window"] > 0 and row["candidate_same_window"] > 0
        assert row["candidate"] == pytest.approx(s["wape"], abs=1e-5)  # the full backtest
        champion = registry.champion(model_name(name))
        assert champion is not None and champion.version == (2 if s["promoted"] else 1)
    path = lake.location(report["regions"]["pnw"]["paths"]["forecasts"])
    found = forecast_lineage(lake, registry, path)
    run = found["segments"]["pnw.small.slow"]["run"]
    shipments = next(c for c in run["data"]["conditioned"] if c["name"] == "shipments")
    if _segments(report)["pnw.small.slow"]["promoted"]:  # the new champion saw the new week
        assert sorted(shipments["raw_files"]) == lake.list_files("raw/shipments/region=pnw")
    else:  # the champion kept its place: its lineage is the data it was trained on
        assert new_file not in shipments["raw_files"] and shipments["raw_files"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["models", "rollback", "pnw.large.fast"], "no previous champion to roll back to"),
        (["models", "promote", "pnw.large.fast", "--version", "9"], "no version 9 of demand."),
        (["lineage", "forecasts/as_of=2019-01-07/region=pnw/v=0"], "is not a committed forecasts"),
        (["lineage", "0123456789abcdef"], "no training run 0123456789abcdef"),
        (
            ["models", "show", "pnw.huge.fast"],
            "no model demand.pnw.huge.fast in the registry; "
            "known: demand.pnw.large.fast, demand.pnw.large.slow",
        ),
    ],
)
def test_registry_commands_fail_in_one_line(
    dev: Settings, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--config", str(dev.config_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("demandops: error: ") and message in err and err.count("\n") == 1


def test_promote_to_an_unusable_registry_is_one_line(
    dev: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    envs = dev.config_dir / "environments"
    prod = (envs / "prod.yaml").read_text()
    garbage = dev.config_dir.parent / "garbage.db"
    garbage.write_bytes(b"not a database\n" * 100)
    for name, uri in (("placeholder", "azureml"), ("garbage", f"sqlite:///{garbage}")):
        text = prod.replace("name: prod", f"name: {name}")
        (envs / f"{name}.yaml").write_text(text.replace("sqlite:///{lake}/mlflow.db", uri))
    for target, message in (
        ("placeholder", "cannot promote to placeholder: its registry_uri 'azureml' is not a "
         "tracking URI; set it in environments/placeholder.yaml"),
        ("garbage", f"cannot promote to garbage: its registry sqlite:///{garbage} is not usable"),
    ):  # fmt: skip
        argv = ["models", "promote", "pnw.large.fast", "--to", target]
        assert main([*argv, "--config", str(dev.config_dir)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("demandops: error: ") and err.count("\n") == 1, err
        assert message in err
    assert garbage.read_bytes() == b"not a database\n" * 100


def test_a_registry_in_an_abfs_lake_is_a_config_error(dev: Settings, azure_lake_url: str) -> None:
    env = dev.environment.model_copy(update={"lake": azure_lake_url})
    with pytest.raises(champions.ConfigError, match=r"registry_uri: .* needs a local lake"):
        champions.open_registry(env)


def test_promotion_copies_a_champion_between_two_registries(
    dev: Settings, small_lake_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dev's registry is the sqlite store in its lake; prod's is a separate tracking URI, outside
    both lakes, as a workspace gives one. The champion's run (parameters, metrics, artefacts)
    is copied; a --registry-uri given for the source does not redirect the target."""
    store = tmp_path / "prod-workspace" / "mlflow.db"
    store.parent.mkdir()
    shutil.copy(small_lake_template / "mlflow.db", store)  # an empty store
    prod_yaml = dev.config_dir / "environments" / "prod.yaml"
    text = prod_yaml.read_text().replace("sqlite:///{lake}/mlflow.db", f"sqlite:///{store}")
    prod_yaml.write_text(text)
    source = f"sqlite:///{Path(dev.environment.lake).resolve()}/mlflow.db"
    argv = ["models", "promote", "--to", "prod", "--registry-uri", source]
    assert main([*argv, "--config", str(dev.config_dir)]) == 0
    monkeypatch.delenv("DEMANDOPS_REGISTRY_URI")  # what --registry-uri left in this process

    prod = load_settings(dev.config_dir, "prod").environment
    src, dst = champions.open_registry(dev.environment), champions.open_registry(prod)
    assert dst.uri == f"sqlite:///{store}" and src.uri == source
    copies = {}
    for segment in SEGMENTS:
        theirs, ours = src.champion(model_name(segment)), dst.champion(model_name(segment))
        assert theirs is not None and ours is not None
        assert ours.tags["source_run_id"] == theirs.tags["run_id"] != ours.tags["run_id"]
        mine, origin = dst.run(ours.tags["run_id"]), src.run(theirs.tags["run_id"])
        assert mine.data.metrics == origin.data.metrics and mine.data.params == origin.data.params
        for name in ("artifacts/segment_model.pkl", "lineage.json", "MLmodel"):
            assert dst.artefact(ours.tags["run_id"], name) == src.artefact(origin.info.run_id, name)
        copies[segment] = ours.version
    assert (store.parent / "mlflow-artifacts").is_dir()  # artefacts beside the store
    assert not (Path(prod.lake) / "mlflow.db").exists()  # and nothing in prod's lake

    assert main([*argv, "--config", str(dev.config_dir)]) == 0  # again: nothing new
    assert {s: dst.champion(model_name(s)).version for s in SEGMENTS} == copies  # type: ignore[union-attr]


def test_promoting_to_an_unnamed_workspace_fails_in_one_line(
    dev: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """The project's prod.yaml names its registry `azureml`: without the workspace's subscription
    (AZURE_ML_SUBSCRIPTION_ID) promotion stops with what to set, not an MLflow traceback."""
    shutil.copy(ROOT / "config" / "environments" / "prod.yaml", dev.config_dir / "environments")
    assert main(["models", "promote", "--to", "prod", "--config", str(dev.config_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("demandops: error: ") and err.count("\n") == 1
    assert "registry_uri" in err and "AZURE_ML_SUBSCRIPTION_ID" in err


class Killed(BaseException):
    """What a kill -9 does to the code after it: nothing runs (not even `except Exception`)."""


def _kill_when(monkeypatch: pytest.MonkeyPatch, method: str, when: Any) -> None:
    """Registry.<method> raises Killed when `when(*args)` holds: the batch dies there."""
    real = getattr(Registry, method)

    def dying(self: Registry, *args: Any) -> Any:
        if when(*args):
            raise Killed
        return real(self, *args)

    monkeypatch.setattr(Registry, method, dying)


@pytest.mark.parametrize(
    ("method", "when"),
    [
        ("champion", lambda name: True),  # registered, not yet gated
        ("set_champion", lambda name, version: True),  # gated and tagged, not promoted
        ("tag_version", lambda name, version, tags: tags.get("status") == "champion"),
    ],  # the alias moved, the status tag not yet set
)
def test_a_candidate_a_crash_left_undecided_is_decided_by_the_next_run(
    dev: Settings, monkeypatch: pytest.MonkeyPatch, method: str, when: Any
) -> None:
    lake = Lake(dev.environment.lake)
    report = run_batch(dev, ["pnw"], progress=False, today=D0)
    ctx, features = _ctx(dev, D0), _features(lake, report)
    model = _new_candidate(lake, report, "retrained")
    with monkeypatch.context() as patch:
        _kill_when(patch, method, when)
        with pytest.raises(Killed):
            champions.register_region(ctx, lake, model, features, {})
    registry = champions.open_registry(dev.environment)
    name = model_name(SEGMENTS[0])
    assert registry.version(name, "2").tags["status"] == "candidate"  # left undecided

    decisions = champions.register_region(ctx, lake, model, features, {})
    for segment, d in decisions.items():
        name = model_name(segment)
        assert d.promoted and d.candidate_version == "2", d
        versions = {str(v.version): v.tags["status"] for v in registry.versions(name)}
        assert versions == {"1": "retired", "2": "champion"}  # registered once, decided once
        assert str(registry.champion(name).version) == "2"  # type: ignore[union-attr]
        assert registry.champion_history(name) == ["1", "2"]
        assert lake.exists(f"monitoring/promotions/{name}/v2-promoted.csv")
    again = champions.register_region(ctx, lake, model, features, {})
    assert {d.candidate_version for d in again.values()} == {"2"}
    assert all(len(registry.versions(model_name(s))) == 2 for s in SEGMENTS)


def test_an_undecided_candidate_of_older_data_is_superseded(
    dev: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake(dev.environment.lake)
    report = run_batch(dev, ["pnw"], progress=False, today=D0)
    ctx, features = _ctx(dev, D0), _features(lake, report)
    with monkeypatch.context() as patch:
        _kill_when(patch, "champion", lambda name: True)
        with pytest.raises(Killed):
            champions.register_region(ctx, lake, _new_candidate(lake, report, "a"), features, {})
    newer = _new_candidate(lake, report, "b")  # new data meanwhile: another model dataset
    decisions = champions.register_region(ctx, lake, newer, features, {})
    registry = champions.open_registry(dev.environment)
    name = model_name(SEGMENTS[0])
    assert decisions[SEGMENTS[0]].candidate_version == "3"
    statuses = {str(v.version): v.tags["status"] for v in registry.versions(name)}
    assert statuses == {"1": "retired", "2": "superseded", "3": "champion"}
