"""Workbench: turn a chat-history backend's performance plan into measurements."""

from workbench.errors import WorkbenchError

__all__ = ["WorkbenchError"]
__version__ = "0.1.0"
