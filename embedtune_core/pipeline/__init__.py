"""The pipeline: one orchestrator for `run`, `train`, `mine` and `eval`, the run folder, results
and the report."""
