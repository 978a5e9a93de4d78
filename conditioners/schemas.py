"""Standardized schemas, declared once and checked at every boundary.

All conditioned data is long format with named columns. Dates are ISO weeks' Mondays
(`week_start`), identifiers are strings, units are retail units (not cases).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from demandops.errors import DataError


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "str" | "int" | "float" | "date" | "bool"
    description: str
    nullable: bool = False
    min_value: float | None = None


@dataclass(frozen=True)
class Schema:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Check columns, types, nulls, bounds and key uniqueness; return the frame in order."""
        missing = [n for n in self.names if n not in frame.columns]
        if missing:
            raise DataError(f"{self.name}: missing columns {missing}")
        for col in self.columns:
            _check_column(self.name, col, frame[col.name])
        if frame.duplicated(list(self.key)).any():
            raise DataError(f"{self.name}: duplicate keys {list(self.key)}")
        return frame[self.names]


_KIND_CHECKS = {
    "str": pd.api.types.is_string_dtype,
    "int": pd.api.types.is_integer_dtype,
    "float": pd.api.types.is_numeric_dtype,
    "date": pd.api.types.is_datetime64_any_dtype,
    "bool": pd.api.types.is_bool_dtype,
}


def _check_column(schema: str, col: Column, values: pd.Series) -> None:
    if not _KIND_CHECKS[col.kind](values.dtype):
        raise DataError(f"{schema}.{col.name}: expected {col.kind}, got {values.dtype}")
    if not col.nullable and values.isna().any():
        raise DataError(f"{schema}.{col.name}: {int(values.isna().sum())} missing values")
    if col.min_value is not None and (values.dropna() < col.min_value).any():
        raise DataError(f"{schema}.{col.name}: values below {col.min_value}")


STORES = Schema(
    "stores",
    (
        Column("store_id", "str", "store identifier"),
        Column("region", "str", "region id from config/regions.yaml"),
        Column("zip_code", "str", "5-digit US zip code"),
        Column("store_format", "str", "large | small"),
        Column("sqft", "int", "selling area, square feet", min_value=0),
    ),
    key=("store_id",),
)

PRODUCTS = Schema(
    "products",
    (
        Column("product_id", "str", "product identifier"),
        Column("category", "str", "product category"),
        Column("pack_size", "int", "retail units per case", min_value=1),
        Column("regular_price", "float", "regular shelf price per unit, USD", min_value=0),
    ),
    key=("product_id",),
)

SHIPMENTS = Schema(
    "shipments",
    (
        Column("store_id", "str", "store identifier"),
        Column("product_id", "str", "product identifier"),
        Column("week_start", "date", "Monday of the week shipped"),
        Column("units", "int", "retail units shipped in the week", min_value=0),
    ),
    key=("store_id", "product_id", "week_start"),
)

PROMOTIONS = Schema(
    "promotions",
    (
        Column("store_id", "str", "store identifier"),
        Column("product_id", "str", "product identifier"),
        Column("week_start", "date", "Monday of the promoted week"),
        Column("promo_price", "float", "promoted shelf price per unit, USD", min_value=0),
    ),
    key=("store_id", "product_id", "week_start"),
)

STORE_FORMATS = ("large", "small")
