"""Which raw files a feed reads, feeds a deployment does not have, and loud rejection warnings.

- A feed is part of a deployment when its source profiles read it: shipments always are; any
  other source without a profile and without raw files is *absent*, an empty dataset whose
  manifest says so, and the models train without its features.
- A profile may read files outside its source's own `raw/<source>/` folder (e.g. store
  attributes from the shipments export): those files are inputs of that source too.
- A file of which more than its profile's `warn_rejected_share` of the rows is rejected is
  named in a warning: in its part's and its dataset's manifest, in the data-quality results
  (check `rejected_share`, status `warn`), and printed by `demandops condition` and `run`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from conditioners.combine import read_standard
from conditioners.profile import Profile
from conditioners.schemas import SCHEMAS
from conditioners.table import Conditioned
from demandops.core.errors import DataError
from demandops.core.hashing import code_version, digest
from demandops.core.lake import Dataset, Lake, commit_or_reuse, frame_to_csv_bytes, versioned

REQUIRED = ("shipments",)
BOOKED_RETURNS = "returns_booked.csv"  # beside shipments.csv: returns booked from negatives


def configured(source: str, profiles: dict[str, Profile]) -> bool:
    return source in REQUIRED or any(p.source == source for p in profiles.values())


def _static_prefix(pattern: str) -> str:
    """The folders of a glob before its first wildcard (`shipments/region=*/x` -> `shipments/`)."""
    cut = min((i for i, ch in enumerate(pattern) if ch in "*?["), default=len(pattern))
    return pattern[:cut].rsplit("/", 1)[0] + "/" if "/" in pattern[:cut] else ""


def source_files(lake: Lake, source: str, prefix: str, profiles: dict[str, Profile]) -> list[str]:
    """The raw files of a feed: every file below raw/<prefix>/ (a file no profile reads is
    reported unreadable), and the files elsewhere that a profile of the source reads. For a
    region partition (`prefix` with `region=`), only files of that region's folders."""
    own = [f for f in lake.list_files(f"raw/{prefix}") if not _hidden(f)]
    region = prefix.split("/", 1)[1] if "/" in prefix else None
    extra: list[str] = []
    for profile in (p for p in profiles.values() if p.source == source):
        for pattern in profile.files:
            folder = _static_prefix(pattern)
            if folder.startswith(f"{source}/") or folder == "":
                continue
            for f in lake.list_files(f"raw/{folder}".rstrip("/")):
                rel = f.removeprefix("raw/")
                in_region = region is None or f"/{region}/" in f"/{rel}"
                if not _hidden(f) and in_region and profile.matches(rel):
                    extra.append(f)
    return sorted(dict.fromkeys(own + extra))


def _hidden(path: str) -> bool:
    return path.rsplit("/", 1)[-1].startswith(".")


def absent_dataset(lake: Lake, source: str, prefix: str) -> Dataset:
    """An empty dataset standing for a feed the deployment does not have."""
    version = digest({"absent": source, "code": code_version()})

    def build() -> tuple[dict[str, bytes], dict[str, object]]:
        manifest: dict[str, object] = {"source": source, "version": version, "absent": True}
        manifest |= {"rows_in": 0, "rows_out": 0, "rows_rejected": 0, "rejected_by_reason": {}}
        manifest |= {"inputs": {}, "profiles": {}, "parts": {}, "unreadable": []}
        return {f"{source}.csv": frame_to_csv_bytes(SCHEMAS[source].empty())}, manifest

    return commit_or_reuse(lake, versioned(f"conditioned/{prefix}", version), build)


def no_raw_data(lake: Lake, prefix: str) -> DataError:
    return DataError(
        f"no raw data in {lake.location(f'raw/{prefix}')}: run `demandops generate` or add the feed"
    )


def part_extras(result: Conditioned, profile: Profile, file: str) -> dict[str, object]:
    """What a part's manifest says beyond rows in/out/rejected (only what applies)."""
    extras: dict[str, object] = {}
    if result.rows_aggregated:
        extras["rows_aggregated"] = result.rows_aggregated
    if result.returns is not None:
        extras["returns_booked"] = result.returns.num_rows
    share = result.rejected_share()
    if result.rows_in and share > profile.warn_rejected_share:
        reasons = result.rejects["reason"].value_counts()
        top = ", ".join(f"{r} {n}" for r, n in reasons.head(3).items())
        extras["warning"] = (
            f"{share:.0%} of the {result.rows_in} rows of {file} were rejected "
            f"(more than {profile.warn_rejected_share:.0%}; {top})"
        )
    return extras


def dataset_extras(parts: list[Dataset]) -> dict[str, object]:
    """A dataset manifest's sums of its parts' extras (only what applies)."""
    extras: dict[str, object] = {}
    aggregated = sum(int(p.manifest.get("rows_aggregated", 0)) for p in parts)
    if aggregated:
        extras["rows_aggregated"] = aggregated
    booked = sum(int(p.manifest.get("returns_booked", 0)) for p in parts)
    if booked:
        extras["returns_booked"] = booked
    warnings = [str(p.manifest["warning"]) for p in parts if "warning" in p.manifest]
    if warnings:
        extras["warnings"] = warnings
    return extras


def warning_checks(datasets: list[Dataset]) -> list[dict[str, Any]]:
    """Data-quality rows (check `rejected_share`, status `warn`) for the datasets' warnings."""
    return [
        {"check": "rejected_share", "status": "warn", "failing": 1, "detail": w}
        for d in datasets
        for w in d.manifest.get("warnings", [])
    ]


def is_absent(dataset: Dataset) -> bool:
    return bool(dataset.manifest.get("absent"))


# the data-quality checks that look at a feed, by feed: not made when the feed is absent
CHECKS_OF = {
    "shipment_stores_in_shoppers": "shoppers",
    "weather_observed_covers_stores": "weather",
    "weather_forecast_covers_stores": "weather",
}


def without_absent(checks: pd.DataFrame, datasets: dict[str, Dataset]) -> pd.DataFrame:
    """The checks, less those of feeds the deployment does not have."""
    absent = {n for n, d in datasets.items() if is_absent(d)}
    if not absent:
        return checks
    keep = ~checks["check"].map(CHECKS_OF).isin(absent)
    return checks[keep].reset_index(drop=True)


def derived_stores(shipments: pd.DataFrame, region: str) -> pd.DataFrame:
    """Store attributes where the deployment has no stores feed: every shipped store in the
    region, one format (`large`), no zip code, and a constant selling area (no information)."""
    ids = sorted(shipments["store_id"].unique())
    return pd.DataFrame(
        {"store_id": ids, "region": region, "zip_code": "", "store_format": "large", "sqft": 1}
    )


def derived_products(shipments: pd.DataFrame) -> pd.DataFrame:
    """The catalogue where the deployment has no products feed: every shipped product, one
    category, sold by the unit, no regular price (so promotions give no discount)."""
    ids = sorted(shipments["product_id"].unique())
    return pd.DataFrame(
        {"product_id": ids, "category": "all", "pack_size": 1, "regular_price": float("nan")}
    )


def with_booked_returns(returns: pd.DataFrame, lake: Lake, shipments: Dataset) -> pd.DataFrame:
    """The returns feed plus the returns booked from negative shipments (summed per key)."""
    if "returns_booked" not in shipments.manifest:
        return returns
    booked = read_standard(lake.read_bytes(shipments.file(BOOKED_RETURNS)), SCHEMAS["returns"])
    key = list(SCHEMAS["returns"].key)
    both = pd.concat([returns, booked], ignore_index=True)
    summed = both.groupby(key, as_index=False).agg(units_returned=("units_returned", "sum"))
    return pd.DataFrame(summed)
