"""Features from events that concern one product in one store: deals, feature ads, prices.

Such events are planned (a price, a coupon, an advertisement), so a week's own events are known
when it is forecast. Each kind becomes a column `event_<kind>` holding the week's value (the
largest if several overlap). A product's rivals are the other products of its category in its
store that week. A `price` kind is given as its log, and adds `event_relative_price`, its log
price less the mean log price of the rivals and itself, and
`event_price_vs_usual`, its log price less the series' usual (mean) log price over the weeks
≤ t − H — the weeks the series' level `log_level` is measured on, so that the level and the
price's deviation from its usual value together say how far this week departs from the norm —
and the rivals' prices: `event_price_vs_cheapest_rival`, its log price less the lowest of the
rivals' (0 where it has no priced rival), and `event_cheaper_rivals`, how many rivals are
priced below it.

`event_others_<kind>` (every kind but price): the sum of the rivals' values — how many rival
products are on deal or advertised that week.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ["store_id", "product_id", "week_start"]


def product_event_weeks(events: pd.DataFrame) -> pd.DataFrame:
    """Per store × product × week, one column per event kind (value; missing where none)."""
    own = events[(events["scope"] == "store") & events["product_id"].fillna("").ne("")]
    if own.empty:
        return pd.DataFrame(columns=KEYS)
    first = _monday(own["start_date"])
    n_weeks = ((_monday(own["end_date"]) - first).dt.days // 7 + 1).clip(lower=1)
    rows = own.loc[own.index.repeat(n_weeks)]
    offset = rows.groupby(level=0).cumcount().to_numpy()
    weekly = pd.DataFrame(
        {
            "store_id": rows["scope_id"].to_numpy(),
            "product_id": rows["product_id"].to_numpy(),
            "week_start": first.loc[rows.index].to_numpy() + pd.to_timedelta(offset * 7, "D"),
            "kind": "event_" + rows["kind"].to_numpy(),
            "value": rows["value"].to_numpy(dtype=float),
        }
    )
    wide = weekly.pivot_table(index=KEYS, columns="kind", values="value", aggfunc="max")
    return wide.reset_index().rename_axis(columns=None)


def add_product_event_features(
    frame: pd.DataFrame,
    events: pd.DataFrame,
    horizon: int = 1,
) -> tuple[pd.DataFrame, list[str]]:
    """`frame` with the event columns (0 where a week had none) and their names.

    `frame` holds every week of each series it lists (a regular weekly grid)."""
    weekly = product_event_weeks(events)
    names = sorted(c for c in weekly.columns if c.startswith("event_"))
    out = frame.merge(weekly, on=KEYS, how="left", validate="many_to_one")
    shelf = shelf_weeks(out)
    others = others_events(out, [n for n in names if n != "event_price"], shelf)
    out = pd.concat([out, others], axis=1)
    if "event_price" in names:
        log_price = pd.Series(np.log(out["event_price"]), index=out.index)
        mean_on_shelf = log_price.groupby(shelf).transform("mean")
        out["event_relative_price"] = (log_price - mean_on_shelf).fillna(0.0)
        usual = _usual(out, log_price, horizon)
        out["event_price_vs_usual"] = (log_price - usual).fillna(0.0)
        rivals = rival_prices(log_price, shelf)
        out = pd.concat([out, rivals], axis=1)
        out["event_price"] = log_price.fillna(log_price.mean())
        names += ["event_relative_price", "event_price_vs_usual", *rivals.columns]
    names += list(others.columns)
    for name in names:
        out[name] = out[name].fillna(0.0)
    return out, names


def shelf_weeks(frame: pd.DataFrame) -> np.ndarray:
    """Numbers each row's store × category × week (store × week where `frame` has no
    category): the products that compete for one shelf that week."""
    keys = ["store_id", "week_start", *(["category"] if "category" in frame else [])]
    return frame.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()


def others_events(frame: pd.DataFrame, kinds: list[str], shelf: np.ndarray) -> pd.DataFrame:
    """Per row and event kind, the sum of the rivals' values (`event_others_<kind>`, e.g. how
    many competing products are on deal that week); `shelf` numbers each row's shelf-week."""
    values = frame[kinds].fillna(0.0)
    total = values.groupby(shelf).transform("sum")
    return (total - values).rename(columns=lambda c: c.replace("event_", "event_others_", 1))


def rival_prices(log_price: pd.Series, shelf: np.ndarray) -> pd.DataFrame:
    """Per row, its log price against its rivals' (`shelf` numbers each row's shelf-week): less
    the cheapest rival's (`event_price_vs_cheapest_rival`, NaN where it or every rival is
    unpriced) and the count of rivals priced below it (`event_cheaper_rivals`, NaN where it is
    unpriced)."""
    price = log_price.to_numpy(dtype=float)
    order = np.lexsort((price, shelf))
    order = order[~np.isnan(price[order])]  # priced rows by shelf-week, then price
    versus, cheaper = np.full(len(price), np.nan), np.full(len(price), np.nan)
    if len(order):
        versus[order], cheaper[order] = _against_rivals(price[order], shelf[order])
    return pd.DataFrame(
        {"event_price_vs_cheapest_rival": versus, "event_cheaper_rivals": cheaper},
        index=log_price.index,
    )


def _against_rivals(price: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `price` sorted by `group`, then price: its price less the lowest of another
    row of its group (NaN where none), and how many rows of its group are cheaper."""
    at = np.arange(len(price))
    first = np.r_[True, group[1:] != group[:-1]]
    last = np.r_[first[1:], True]
    group_start = np.maximum.accumulate(np.where(first, at, 0))
    following = price[np.minimum(at + 1, len(price) - 1)]  # a group's second, after its first
    rival = np.where(first, np.where(last, np.nan, following), price[group_start])
    new_price = first | np.r_[True, price[1:] != price[:-1]]
    price_start = np.maximum.accumulate(np.where(new_price, at, 0))
    return price - rival, (price_start - group_start).astype(float)


def _usual(frame: pd.DataFrame, log_price: pd.Series, horizon: int) -> pd.Series:
    """Per row, the mean of the series' known log prices over its weeks ≤ t − `horizon`."""
    order = frame.sort_values(["store_id", "product_id", "week_start"]).index
    price = log_price.loc[order]
    series = [frame.loc[order, "store_id"], frame.loc[order, "product_id"]]
    total = price.fillna(0.0).groupby(series).cumsum()
    count = price.notna().astype(float).groupby(series).cumsum()
    lagged_total = total.groupby(series).shift(horizon)
    lagged_count = count.groupby(series).shift(horizon)
    usual = lagged_total / lagged_count.where(lagged_count > 0)
    return usual.reindex(frame.index)


def _monday(dates: pd.Series) -> pd.Series:
    return dates - pd.to_timedelta(dates.dt.day_of_week, unit="D")
