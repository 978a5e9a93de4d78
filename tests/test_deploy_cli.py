"""`demandops init` scaffolds a deployment that loads; `demandops profile suggest` drafts a
profile that loads and reads the file it was drafted from."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conditioners.context import Context
from conditioners.engine import condition
from conditioners.profile import Profile, load_profile
from conditioners.schemas import SCHEMAS
from conditioners.suggest import suggest
from demandops.cli.main import main
from demandops.core.settings import load_settings


def test_init_scaffolds_config_templates_and_an_empty_lake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    acme = tmp_path / "acme"
    assert main(["init", str(acme), "--region", "north"]) == 0
    settings = load_settings(acme / "config")
    assert settings.region_ids() == ["north"]
    assert Path(settings.environment.lake) == (acme / "lake").resolve()
    for source in SCHEMAS:
        template = load_profile(acme / "config" / "sources" / "templates" / f"{source}.yaml")
        assert template.source == source and set(template.columns) == set(SCHEMAS[source].names)
    assert (acme / "lake" / "raw" / "shipments" / "region=north" / ".keep").is_file()
    assert "demandops profile suggest" in (acme / "README.md").read_text()
    assert main(["init", str(acme)]) == 2  # not over an existing deployment
    assert "exists and is not empty" in capsys.readouterr().err


def test_suggest_finds_delimiter_encoding_decimal_dates_and_daily_rows(tmp_path: Path) -> None:
    text = "Filiale;Artikel;Datum;Menge;Umsatz\r\n"
    for day in range(1, 15):
        text += f"Hauptstraße;A-7;{day:02d}.01.2024;{day};{day},50\r\n"
    data = text.encode("cp1252")
    draft = suggest(data, "abverkauf_2024.csv")
    profile = Profile.model_validate(yaml.safe_load(draft))
    assert profile.encoding == "cp1252" and profile.delimiter == ";"
    assert profile.columns["store_id"].source == "Filiale"
    assert profile.columns["product_id"].source == "Artikel"
    assert profile.columns["week_start"].format == "%d.%m.%Y"
    assert profile.aggregate is not None and profile.aggregate.columns == {"units": "sum"}
    assert "# line endings: CRLF" in draft and "Umsatz (number, decimal ',')" in draft
    assert profile.columns["units"].source == "Menge"
    result = condition(data, "abverkauf_2024.csv", profile, Context())
    assert result.frame["units"].tolist() == [sum(range(1, 8)), sum(range(8, 15))]  # 2 weeks


def test_suggest_needs_a_header_and_a_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("Store,Item\n")
    assert main(["profile", "suggest", str(empty)]) == 2
    assert "needs a header and at least one record" in capsys.readouterr().err
