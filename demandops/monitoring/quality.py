"""Cross-source data-quality checks: does each feed cover what the others need?

Each check gives one row: check, status (pass | warn | fail), failing (how many things fail),
detail (a few examples). They are results to report, not exceptions: the batch goes on.
"""

from __future__ import annotations

import pandas as pd

MAX_SERIES_GAP_WEEKS = 13  # a longer gap inside a series is worth a warning
CHECK_COLUMNS = ["check", "status", "failing", "detail"]


def cross_source_checks(
    region: str,
    stores: pd.DataFrame,
    shipments: pd.DataFrame,
    shoppers: pd.DataFrame,
    weather: pd.DataFrame,
    horizon: int,
) -> pd.DataFrame:
    rows = [
        _stores_in_shoppers(shipments, shoppers),
        *_weather_coverage(stores, shipments, weather, horizon),
        _region_weeks_contiguous(region, shipments),
        _series_gaps(shipments),
    ]
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def _row(check: str, failing: list[str], severity: str = "fail") -> dict[str, object]:
    detail = ", ".join(failing[:5]) + (f" and {len(failing) - 5} more" if len(failing) > 5 else "")
    return {
        "check": check,
        "status": severity if failing else "pass",
        "failing": len(failing),
        "detail": detail,
    }


def _stores_in_shoppers(shipments: pd.DataFrame, shoppers: pd.DataFrame) -> dict[str, object]:
    missing = sorted(set(shipments["store_id"]) - set(shoppers["store_id"]))
    return _row("shipment_stores_in_shoppers", missing)


def _weather_coverage(
    stores: pd.DataFrame, shipments: pd.DataFrame, weather: pd.DataFrame, horizon: int
) -> list[dict[str, object]]:
    """Every store's zip has observations for every shipped week and forecasts for the next H."""
    if shipments.empty:
        return [
            _row("weather_observed_covers_stores", []),
            _row("weather_forecast_covers_stores", []),
        ]
    first, last = shipments["week_start"].min(), shipments["week_start"].max()
    zips = sorted(set(stores["zip_code"]))
    weeks = pd.date_range(first, last, freq="7D")
    future = pd.date_range(last + pd.Timedelta(weeks=1), periods=horizon, freq="7D")
    out = []
    for kind, needed, check in (
        ("observed", weeks, "weather_observed_covers_stores"),
        ("forecast", future, "weather_forecast_covers_stores"),
    ):
        w = weather[weather["kind"] == kind]
        have = set(
            zip(
                w["zip_code"],
                w["date"] - pd.to_timedelta(w["date"].dt.day_of_week, unit="D"),
                strict=True,
            )
        )
        missing = [f"{z} {d:%Y-%m-%d}" for z in zips for d in needed if (z, d) not in have]
        out.append(_row(check, missing))
    return out


def _region_weeks_contiguous(region: str, shipments: pd.DataFrame) -> dict[str, object]:
    """No week without any shipment between the region's first and last week (a lost file)."""
    if shipments.empty:
        return _row("region_weeks_contiguous", [f"{region}: no shipments"])
    have = pd.DatetimeIndex(shipments["week_start"].unique())  # not a set of 800,000 Timestamps
    missing = pd.date_range(have.min(), have.max(), freq="7D").difference(have)
    return _row("region_weeks_contiguous", [f"{d:%Y-%m-%d}" for d in missing])


def _series_gaps(shipments: pd.DataFrame) -> dict[str, object]:
    """Series whose weeks skip more than MAX_SERIES_GAP_WEEKS between shipments."""
    s = shipments.sort_values(["store_id", "product_id", "week_start"])
    gap = s.groupby(["store_id", "product_id"])["week_start"].diff().dt.days // 7 - 1
    long = s[gap > MAX_SERIES_GAP_WEEKS]
    names = sorted(set(long["store_id"] + "/" + long["product_id"]))
    return _row("series_weeks_contiguous", names, severity="warn")
