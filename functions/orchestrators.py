"""Registers the orchestrators of `demandops.pipeline.orchestration` with Durable Functions."""

from __future__ import annotations

import azure.durable_functions as df

from demandops.pipeline import orchestration

bp = df.Blueprint()
bp.orchestration_trigger(context_name="context")(orchestration.run_orchestrator)
bp.orchestration_trigger(context_name="context")(orchestration.region_orchestrator)
