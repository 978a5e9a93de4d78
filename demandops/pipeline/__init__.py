"""The weekly batch: its steps, one region's run, compute backends and the orchestration."""
