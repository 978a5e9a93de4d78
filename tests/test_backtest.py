"""The rolling-origin protocol of `demandops backtest`: where its cuts and forecast weeks lie."""

from __future__ import annotations

import pandas as pd
import pytest

from ml.backtest import Protocol


def test_cuts_step_back_from_the_last_week_with_a_gap() -> None:
    weeks = pd.date_range("2023-01-02", periods=30, freq="7D")
    cuts = Protocol(rounds=3, horizon=2, gap=1, step=4).cuts(weeks)
    assert [(f"{c:%m-%d}", [f"{w:%m-%d}" for w in t]) for c, t in cuts] == [
        ("05-08", ["05-22", "05-29"]),
        ("06-05", ["06-19", "06-26"]),
        ("07-03", ["07-17", "07-24"]),
    ]
    assert cuts[-1][1][-1] == weeks[-1] and Protocol(3, 2, 1, 4).lead == 3


def test_the_dominicks_protocol_is_rounds_12_horizon_2_gap_1_step_2() -> None:
    """Train on weeks ..133+2k, forecast 135+2k and 136+2k, k = 1..12 (TSPerf OJ)."""
    week = {w: pd.Timestamp("1989-09-11") + pd.Timedelta(weeks=w - 1) for w in range(1, 161)}
    present = pd.DatetimeIndex([d for w, d in week.items() if w not in (50, 51)])  # gaps
    cuts = Protocol(rounds=12, horizon=2, gap=1, step=2).cuts(present)
    assert [(c, list(t)) for c, t in cuts] == [
        (week[133 + 2 * k], [week[135 + 2 * k], week[136 + 2 * k]]) for k in range(1, 13)
    ]


def test_a_history_too_short_for_the_protocol_is_an_error() -> None:
    weeks = pd.date_range("2023-01-02", periods=10, freq="7D")
    with pytest.raises(ValueError, match="10 weeks of history; this protocol needs more than"):
        Protocol(rounds=3, horizon=4).cuts(weeks)
    with pytest.raises(ValueError, match="at least"):
        Protocol(rounds=0)
