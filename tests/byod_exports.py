"""Three small raw exports in shapes unlike the sample's, for docs/bring-your-own-data.md.

    .venv/bin/python -m tests.byod_exports DIR     # writes DIR/raw/... (deterministic)

- region `rhein`: a daily store-sales export (one row per store and day, items sold, store type
  letters a-d, a state-holiday column 0/a/b/c, closed days with 0 sales);
- region `east`: a store x department weekly export in currency with cents (week-ending
  Fridays as D/M/Y, negative weeks where returns exceeded sales), CR line endings, and a store
  list with type letters A/B/C, also with CR line endings;
- region `web`: a transaction log (one row per sale with a timestamp, quantity and price).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2022-01-03")  # a Monday
WEEKS = 104
HOLIDAYS = {  # a few German state holidays: a public holiday, b Easter, c Christmas
    "2022-01-01": "a", "2022-04-15": "b", "2022-04-18": "b", "2022-05-01": "a",
    "2022-10-03": "a", "2022-12-25": "c", "2022-12-26": "c", "2023-01-01": "a",
    "2023-04-07": "b", "2023-04-10": "b", "2023-05-01": "a", "2023-10-03": "a",
    "2023-12-25": "c", "2023-12-26": "c",
}  # fmt: skip


def _season(days: pd.DatetimeIndex) -> np.ndarray:
    return 1.0 + 0.25 * np.cos(2 * np.pi * (days.day_of_year.to_numpy() - 350) / 365.25)


def daily_store_sales(rng: np.random.Generator) -> str:
    days = pd.date_range(START, periods=WEEKS * 7, freq="D")
    types = {1: "a", 2: "c", 3: "a", 4: "d", 5: "b"}
    lines = ["Store,DayOfWeek,Date,Sales,Customers,Open,Promo,StateHoliday,SchoolHoliday,StoreType"]
    for store, kind in types.items():
        level = {"a": 520.0, "b": 180.0, "c": 260.0, "d": 610.0}[kind]
        promo = (days.isocalendar().week.to_numpy() % 3 == store % 3).astype(int)
        lift = 1 + 0.3 * promo + 0.15 * (days.day_of_week.to_numpy() == 5)
        expected = level * _season(days) * lift * (1 + 0.002 * np.arange(len(days)) / 7)
        sales = rng.poisson(expected)
        for i, day in enumerate(days):
            holiday = HOLIDAYS.get(f"{day:%Y-%m-%d}", "0")
            is_open = int(day.day_of_week != 6 and holiday == "0")
            sold = int(sales[i]) * is_open
            customers = int(sold * rng.uniform(0.9, 1.1) / 1.6) if is_open else 0
            school = int(day.month in (7, 8))
            lines.append(
                f"{store},{day.day_of_week + 1},{day:%Y-%m-%d},{sold},{customers},{is_open},"
                f"{promo[i] * is_open},{holiday},{school},{kind}"
            )
    return "\n".join(lines) + "\n"


def weekly_department_sales(rng: np.random.Generator) -> str:
    fridays = pd.date_range(START + pd.Timedelta(days=4), periods=WEEKS, freq="7D")
    lines = ["Store,Dept,Date,Weekly_Sales,IsHoliday"]
    for store in (21, 22, 23):
        for dept, level in ((1, 24000.0), (7, 9000.0), (38, 3000.0)):
            expected = level * (1.2 if store == 21 else 0.8) * _season(fridays)
            sales = rng.normal(expected, 0.08 * expected)
            for i, friday in enumerate(fridays):
                value = sales[i]
                if dept == 38 and rng.random() < 0.04:
                    value = -rng.uniform(5, 60)  # returns booked as negative sales
                holiday = "TRUE" if friday.month == 12 and friday.day >= 20 else "FALSE"
                lines.append(f"{store},{dept},{friday:%d/%m/%Y},{value:.2f},{holiday}")
    return "\r".join(lines) + "\r"  # classic Mac line endings


def department_stores() -> str:
    return "\r".join(["Store,Type,Size", "21,A,151315", "22,B,93188", "23,C,39690"]) + "\r"


def transaction_log(rng: np.random.Generator) -> str:
    lines = ["txn_id,timestamp,store,sku,qty,unit_price"]
    prices = {"SKU-100": 3.49, "SKU-200": 12.99, "SKU-300": 0.89}
    per_day = {"SKU-100": 2.5, "SKU-200": 1.0, "SKU-300": 4.0}
    days = pd.date_range(START, periods=WEEKS * 7, freq="D")
    txn = 0
    for store in (31, 32):
        for day in days:
            for sku, rate in per_day.items():
                for _ in range(rng.poisson(rate * (1.3 if store == 31 else 0.7))):
                    txn += 1
                    at = day + pd.Timedelta(seconds=int(rng.integers(8 * 3600, 21 * 3600)))
                    qty = int(rng.choice([1, 1, 1, 2, 3]))
                    lines.append(
                        f"T{txn:07d},{at:%Y-%m-%dT%H:%M:%S},{store},{sku},{qty},{prices[sku]}"
                    )
    return "\n".join(lines) + "\n"


def write_exports(folder: Path, seed: int = 7) -> list[Path]:
    """The three exports (and the department stores' list) below `folder`/raw/."""
    rng = np.random.default_rng(seed)
    files = {
        "shipments/region=rhein/store_sales_2022_2023.csv": daily_store_sales(rng),
        "shipments/region=east/dept_sales.csv": weekly_department_sales(rng),
        "stores/east_stores.csv": department_stores(),
        "shipments/region=web/transactions.csv": transaction_log(rng),
    }
    written = []
    for name, text in files.items():
        path = folder / "raw" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
        written.append(path)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    for path in write_exports(parser.parse_args().folder):
        print(f"{path}  {path.stat().st_size / 1e3:.0f} kB")
