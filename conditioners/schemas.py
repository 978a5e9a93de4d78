"""Standardized schemas, declared once and checked at every boundary.

All conditioned data is long format with named columns, written as UTF-8 CSV with ISO dates.
Identifiers are strings, quantities are retail units (not cases), temperatures °C, precipitation
and snow mm, money USD, shares 0..1. `unit` names the standard unit a profile converts into.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from demandops.core.errors import DataError


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "str" | "int" | "float" | "date"
    description: str
    nullable: bool = False
    min_value: float | None = None
    max_value: float | None = None
    unit: str | None = None  # the standard unit values are converted into

    @property
    def bounded(self) -> bool:
        return self.min_value is not None or self.max_value is not None

    def check(self, schema: str, missing: int, low: Any = None, high: Any = None) -> None:
        """The column's rules on what a table holds in it: the number of missing values, and
        (when it is bounded and holds any value) the lowest and highest value."""
        if not self.nullable and missing:
            raise DataError(f"{schema}.{self.name}: {missing} missing values")
        if self.min_value is not None and low is not None and low < self.min_value:
            raise DataError(f"{schema}.{self.name}: values below {self.min_value}")
        if self.max_value is not None and high is not None and high > self.max_value:
            raise DataError(f"{schema}.{self.name}: values above {self.max_value}")


@dataclass(frozen=True)
class Schema:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Check columns, types, nulls, bounds and key uniqueness; return the frame in order."""
        missing = [n for n in self.names if n not in frame.columns]
        if missing:
            raise DataError(f"{self.name}: missing columns {missing}")
        for col in self.columns:
            values = frame[col.name]
            if not _KIND_CHECKS[col.kind](values.dtype):
                raise DataError(f"{self.name}.{col.name}: expected {col.kind}, got {values.dtype}")
            present = values.dropna()
            bounds = (present.min(), present.max()) if col.bounded and len(present) else ()
            col.check(self.name, len(values) - len(present), *bounds)
        if frame.duplicated(list(self.key)).any():
            raise DataError(f"{self.name}: duplicate keys {list(self.key)}")
        return frame[self.names]

    def check(self, table: pa.Table) -> pa.Table:
        """`validate` for an Arrow table, types checked as Arrow types (keys are unique by
        construction: conditioning rejects repeated keys)."""
        expected = pa.schema([(c.name, ARROW_TYPES[c.kind]) for c in self.columns])
        if not table.schema.equals(expected):
            raise DataError(f"{self.name}: expected columns {expected}, got {table.schema}")
        for col in self.columns:
            values = table.column(col.name)
            bounded = col.bounded and len(values) > values.null_count
            bounds = [v.as_py() for v in pc.min_max(values).values()] if bounded else []
            col.check(self.name, values.null_count, *bounds)
        return table

    def to_frame(self, table: pa.Table) -> pd.DataFrame:
        """An Arrow table of this schema as pandas, in the schema's dtypes."""
        frame = table.to_pandas()
        for col in self.columns:
            if col.kind == "int" and col.nullable:
                frame[col.name] = frame[col.name].astype("Int64")
        return frame

    def empty(self) -> pd.DataFrame:
        return pd.DataFrame({c.name: pd.Series(dtype=DTYPES[c.kind]) for c in self.columns})


DTYPES: dict[str, Any] = {
    "str": "str",
    "int": "Int64",
    "float": "float64",
    "date": "datetime64[ns]",
}
ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "date": pa.timestamp("ns"),
}
_KIND_CHECKS = {
    "str": pd.api.types.is_string_dtype,
    "int": pd.api.types.is_integer_dtype,
    "float": pd.api.types.is_numeric_dtype,
    "date": pd.api.types.is_datetime64_any_dtype,
}


STORE_FORMATS = ("large", "small")
EVENT_SCOPES = ("national", "region", "zip", "store")
WEATHER_KINDS = ("observed", "forecast")

STORES = Schema(
    "stores",
    (
        Column("store_id", "str", "store identifier"),
        Column("region", "str", "region id from config/regions.yaml"),
        Column("zip_code", "str", "5-digit US zip code"),
        Column("store_format", "str", "large | small"),
        Column("sqft", "int", "selling area", min_value=0, unit="sqft"),
    ),
    key=("store_id",),
)

PRODUCTS = Schema(
    "products",
    (
        Column("product_id", "str", "product identifier"),
        Column("category", "str", "product category"),
        Column("pack_size", "int", "retail units per case", min_value=1, unit="unit"),
        Column("regular_price", "float", "regular shelf price per unit", min_value=0, unit="usd"),
    ),
    key=("product_id",),
)

SHIPMENTS = Schema(
    "shipments",
    (
        Column("store_id", "str", "store identifier"),
        Column("product_id", "str", "product identifier"),
        Column("week_start", "date", "Monday of the week shipped"),
        Column("units", "int", "retail units shipped in the week", min_value=0, unit="unit"),
    ),
    key=("store_id", "product_id", "week_start"),
)

RETURNS = Schema(
    "returns",
    (
        Column("store_id", "str", "store identifier"),
        Column("product_id", "str", "product identifier"),
        Column("week_start", "date", "Monday of the week the units came back"),
        Column("units_returned", "int", "retail units returned", min_value=0, unit="unit"),
    ),
    key=("store_id", "product_id", "week_start"),
)

PROMOTIONS = Schema(
    "promotions",
    (
        Column("store_id", "str", "store identifier"),
        Column("product_id", "str", "product identifier"),
        Column("week_start", "date", "Monday of the promoted week"),
        Column("promo_price", "float", "promoted shelf price per unit", min_value=0, unit="usd"),
    ),
    key=("store_id", "product_id", "week_start"),
)

WEATHER = Schema(
    "weather",
    (
        Column("zip_code", "str", "5-digit US zip code"),
        Column("date", "date", "the day observed or forecast"),
        Column("kind", "str", "observed | forecast"),
        Column("issued", "date", "day a forecast was issued (observations: empty)", nullable=True),
        Column("tmax_c", "float", "daily maximum", True, -60, 60, unit="degC"),
        Column("tmin_c", "float", "daily minimum", True, -70, 50, unit="degC"),
        Column("precip_mm", "float", "precipitation", True, 0, 500, unit="mm"),
        Column("snow_mm", "float", "snowfall", True, 0, 2000, unit="mm"),
    ),
    key=("zip_code", "date", "kind", "issued"),
)

SHOPPERS = Schema(
    "shoppers",
    (
        Column("store_id", "str", "store identifier"),
        Column("population", "int", "people in the trade area", True, 0, unit="person"),
        Column("median_income", "float", "median household income", True, 0, 1e6, unit="usd"),
        Column("share_age_under_18", "float", "share of people under 18", True, 0, 1, "share"),
        Column("share_age_60_plus", "float", "share of people 60 or older", True, 0, 1, "share"),
        Column("household_size", "float", "mean persons per household", True, 1, 10, "person"),
    ),
    key=("store_id",),
)

EVENTS = Schema(
    "events",
    (
        Column("start_date", "date", "first day of the event"),
        Column("end_date", "date", "last day of the event (inclusive)"),
        Column("scope", "str", "national | region | zip | store"),
        Column("scope_id", "str", "region id, zip code or store id ('US' for national)"),
        Column("kind", "str", "holiday | sports | festival | school | deal | feature | ..."),
        Column("name", "str", "what the event is"),
        Column("product_id", "str", "the product it concerns (empty: every product)", True),
        Column("value", "float", "intensity: 1 for an event, a share for promotions", min_value=0),
    ),
    key=("scope", "scope_id", "kind", "name", "start_date", "product_id"),
)

SCHEMAS = {
    s.name: s for s in (STORES, PRODUCTS, SHIPMENTS, RETURNS, PROMOTIONS, WEATHER, SHOPPERS, EVENTS)
}
