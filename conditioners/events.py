"""Events: holidays, local events and promotions, each with a scope (national, region, zip,
store), dates (end inclusive) and an optional product."""

from __future__ import annotations

from conditioners.columns import Frame
from conditioners.context import Context
from conditioners.schemas import EVENT_SCOPES
from conditioners.table import RowSorter


def rules(frame: Frame, rows: RowSorter, ctx: Context) -> None:
    scope, scope_id = frame.coded("scope"), frame.coded("scope_id")
    rows.reject_values(scope, (~scope.isin(EVENT_SCOPES), "bad_scope", ""))
    in_region = scope.spread(scope.eq("region"))
    if ctx.regions is not None:
        rows.reject(in_region & scope_id.spread(~scope_id.isin(ctx.regions)), "unknown_region")
    bad_zip = scope.spread(scope.eq("zip")) & scope_id.spread(~scope_id.fullmatch(r"\d{5}"))
    rows.reject(bad_zip, "bad_zip_code")
    rows.reject(frame.array("end_date") < frame.array("start_date"), "bad_date_range")
