"""One base error; the CLI maps it to ``Error: ...`` and exit code 1."""


class WorkbenchError(Exception):
    """A problem the user can fix; the message names the value and the fix."""


class DatasetError(WorkbenchError):
    """A dataset folder is missing, incomplete or corrupt."""


class EngineError(WorkbenchError):
    """A database cannot be reached, or refuses what was asked of it."""


class UnsafeTargetError(EngineError):
    """The target database holds data the workbench did not create."""
