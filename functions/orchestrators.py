"""Registers the orchestrators of `demandops.orchestration` with Durable Functions, as they are."""

from __future__ import annotations

import azure.durable_functions as df

from demandops import orchestration

bp = df.Blueprint()
bp.orchestration_trigger(context_name="context")(orchestration.run_orchestrator)
bp.orchestration_trigger(context_name="context")(orchestration.region_orchestrator)
