"""The whole feature table of one partition from its conditioned feeds, in one call.

The lake step (`demandops.pipeline.steps.features_for_region`) and the Dominick's benchmark
both build their features here, so a benchmark measures exactly what the product computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from demandops.core.calendar import US_RETAIL_CALENDAR, HolidayCalendar
from ml.exogenous import add_exogenous_features
from ml.features import Panel, build_features, build_panel
from ml.product_events import add_product_event_features


@dataclass(frozen=True)
class ConditionedFeeds:
    """The standardized tables one partition's features are made of."""

    shipments: pd.DataFrame
    stores: pd.DataFrame
    products: pd.DataFrame
    promotions: pd.DataFrame
    shoppers: pd.DataFrame
    weather: pd.DataFrame
    events: pd.DataFrame
    returns: pd.DataFrame


def feature_table(
    feeds: ConditionedFeeds,
    horizon: int,
    baseline_window: int,
    absent_is_zero: bool = True,
    holidays: HolidayCalendar = US_RETAIL_CALENDAR,
) -> tuple[pd.DataFrame, Panel]:
    """History and the coming `horizon` weeks: lags, calendar (`holidays`), promotions,
    exogenous feeds, product events. `absent_is_zero`: see `ml.features.build_panel`."""
    ship = feeds.shipments
    panel = build_panel(ship, ship["week_start"].max(), horizon, absent_is_zero)
    frame = build_features(
        panel, feeds.stores, feeds.products, feeds.promotions, horizon, baseline_window, holidays
    )
    frame, exogenous = add_exogenous_features(  # weather, events, returns, demographics
        frame, feeds.stores, feeds.shoppers, feeds.weather, feeds.events, feeds.returns, horizon
    )
    # deals, feature ads, prices
    frame, product_events = add_product_event_features(frame, feeds.events, horizon)
    numeric = [*exogenous, *product_events]  # an absent feed leaves untyped empty columns
    frame[numeric] = frame[numeric].astype(float)
    return frame, panel
