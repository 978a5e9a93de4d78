"""Source profiles: one declarative YAML per feed shape (see docs/sources.md).

A profile says which raw files it reads (globs below `raw/`), how to read them (format,
encoding, delimiter, header position, JSON record path, sheet), and how each column of the
source's standard schema is made: from which raw column, with which date format, unit or
transform — or as a constant. A new feed shape is a new YAML file, not new code.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from conditioners.options import TEXT_HOW, Aggregate, Negative, Rounding
from conditioners.schemas import SCHEMAS
from demandops.core.errors import ConfigError
from demandops.core.hashing import digest


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    """How one standard column is made from the raw data."""

    # the raw column (or JSON field); `{col}` placeholders name, per row, the column to read:
    # `price{brand}` reads column price7 in a row whose brand is 7
    source: str | None = Field(default=None, alias="from")
    value: str | None = None  # a constant instead of a raw column
    format: str | None = None  # dates: strftime, "iso", "week_index" or "excel"
    origin: str | None = None  # week_index: the first day of week 1
    align: Literal["monday"] | None = None  # dates: move to the Monday of their week
    offset_days: int = 0  # then added (e.g. -6: week ending Sunday -> its Monday)
    transform: Literal["exp", "lower", "upper"] | None = None
    unit: str | None = None  # the raw values' unit, fixed for the feed
    unit_from: str | None = None  # ...or the raw column that holds each row's unit code
    unit_map: dict[str, str] = Field(default_factory=dict)  # unit codes -> unit names
    decimal: str = "."  # decimal separator of numbers
    zero_pad: int | None = None  # identifiers: left-pad with zeros to this width
    from_path: str | None = None  # ...or the value of the folder `<from_path>=<value>` in the path
    value_map: dict[str, str] = Field(default_factory=dict, alias="map")  # raw value -> value
    # numbers, after the unit: times `scale`, divided by a price (raw column or constant), rounded
    scale: float | None = None
    price_from: str | None = None
    price: float | None = Field(default=None, gt=0)
    round: Rounding | None = None
    negative: Negative = "quarantine"  # below 0: quarantined, clipped to 0, or booked as returns

    @model_validator(mode="after")
    def _one_origin(self) -> ColumnSpec:
        origins = [self.source, self.value, self.from_path]
        if sum(o is not None for o in origins) != 1:
            raise ValueError(
                "give exactly one of `from` (a raw column), `value` (a constant) "
                "or `from_path` (a folder name=value of the raw path)"
            )
        if self.price is not None and self.price_from is not None:
            raise ValueError("give at most one of `price` (a constant) or `price_from` (a column)")
        if self.format == "week_index" and self.origin is None:
            raise ValueError("format week_index needs `origin` (the first day of week 1)")
        return self


class Profile(_Strict):
    """One feed shape of one source."""

    name: str
    source: str
    description: str = ""
    files: list[str] = Field(min_length=1)  # globs relative to raw/
    format: Literal["csv", "json", "xlsx", "ics"] = "csv"
    encoding: str = "utf-8"
    delimiter: str = ","
    header_row: int = Field(default=1, ge=1)  # csv, xlsx: the line/row holding the header
    sheet: str | None = None  # xlsx: the sheet (default: the first)
    records: str | None = None  # json: dotted path to the list of records
    meta: list[str] = Field(default_factory=list)  # json: top-level fields copied to records
    sentinels: list[str] = Field(default_factory=lambda: ["-9999"])  # mean "missing"
    columns: dict[str, ColumnSpec]
    skip: dict[str, list[str]] = Field(default_factory=dict)  # raw column -> values not wanted
    aggregate: Aggregate | None = None  # fold rows of one key (days, transactions) into one
    warn_rejected_share: float = Field(default=0.5, ge=0, le=1)  # warn above this share

    @model_validator(mode="after")
    def _fits_schema(self) -> Profile:
        if self.source not in SCHEMAS:
            raise ValueError(f"unknown source {self.source!r}; known: {sorted(SCHEMAS)}")
        schema = SCHEMAS[self.source]
        unknown = sorted(set(self.columns) - set(schema.names))
        if unknown:
            raise ValueError(f"columns {unknown} are not in the {self.source} schema")
        unmapped = [c.name for c in schema.columns if not c.nullable and c.name not in self.columns]
        if unmapped:
            raise ValueError(f"required {self.source} columns {unmapped} are not mapped")
        for name, spec in self.columns.items():
            column = schema.column(name)
            if spec.negative != "quarantine" and column.min_value != 0:
                raise ValueError(f"{name}: `negative` needs a column whose minimum is 0")
            if spec.negative == "returns" and (self.source, name) != ("shipments", "units"):
                raise ValueError(f"{name}: `negative: returns` is for shipments units only")
        if self.aggregate is not None:
            _check_aggregate(self.aggregate, self.source)
        return self

    @property
    def version(self) -> str:
        return digest(self.model_dump(mode="json", by_alias=True))

    def matches(self, raw_path: str) -> bool:
        """Whether this profile reads `raw_path` (a path below the lake's raw/)."""
        return any(fnmatch.fnmatchcase(raw_path, pattern) for pattern in self.files)

    @property
    def raw_columns(self) -> list[str]:
        """The raw columns the profile reads (a `from` template reads its placeholders)."""
        names = [
            name
            for s in self.columns.values()
            if s.source is not None
            for name in (template_fields(s.source) or [s.source])
        ]
        names += [s.unit_from for s in self.columns.values() if s.unit_from is not None]
        names += [s.price_from for s in self.columns.values() if s.price_from is not None]
        names += list(self.skip)
        return list(dict.fromkeys(names))


def _check_aggregate(aggregate: Aggregate, source: str) -> None:
    schema = SCHEMAS[source]
    weekly = "week_start" in schema.key
    if aggregate.week_start is not None and not weekly:
        raise ValueError(f"aggregate.week_start: {source} is not a weekly feed")
    for name, how in aggregate.columns.items():
        if name not in schema.names or name in schema.key:
            raise ValueError(f"aggregate.columns: {name} is not a non-key {source} column")
        if schema.column(name).kind == "str" and how not in TEXT_HOW:
            raise ValueError(f"aggregate.columns.{name}: text takes first or last, not {how}")
    numbers = [c.name for c in schema.columns if c.kind != "str" and c.name not in schema.key]
    unnamed = [n for n in numbers if n not in aggregate.columns]
    if unnamed:
        raise ValueError(f"aggregate.columns: say how {unnamed} combine (sum, mean, max, ...)")


def template_fields(source: str) -> list[str]:
    """The raw columns named in a `from` template such as `price{brand}` ([] if it is plain)."""
    return re.findall(r"\{(\w[\w ]*)\}", source)


def load_profile(path: Path) -> Profile:
    """One profile file; an invalid one is a ConfigError naming the file and the key."""
    import yaml

    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, ~10 × faster
        data: Any = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), "", f"cannot read the profile ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "expected a mapping")
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(str(path), key, err["msg"]) from exc


def load_profiles(folder: Path) -> dict[str, Profile]:
    """Every `*.yaml` profile in `folder`, by name; names must be unique."""
    if not folder.is_dir():
        raise ConfigError(str(folder), "", "no such profile folder")
    profiles: dict[str, Profile] = {}
    for path in sorted(folder.glob("*.yaml")):
        profile = load_profile(path)
        if profile.name in profiles:
            raise ConfigError(str(path), "name", f"duplicate profile name {profile.name!r}")
        profiles[profile.name] = profile
    if not profiles:
        raise ConfigError(str(folder), "", "no *.yaml source profiles")
    return profiles


def profile_for(
    raw_path: str, profiles: dict[str, Profile], source: str | None = None
) -> Profile | None:
    """The one profile (of `source`, if given) that reads `raw_path`; None if none does. Two is
    a ConfigError. A file may be read by one profile of each source (e.g. store attributes
    taken from the shipments export)."""
    found = [p for p in profiles.values() if p.matches(raw_path)]
    if source is not None:
        found = [p for p in found if p.source == source]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ConfigError("config/sources", "files", f"{raw_path} matches profiles {names}")
    return found[0] if found else None
