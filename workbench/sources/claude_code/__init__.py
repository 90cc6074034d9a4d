"""Claude Code transcript trees as a workbench Dataset (placeholder docstring)."""

from workbench.sources.claude_code.ingest import IngestReport, ingest

__all__ = ["IngestReport", "ingest"]
