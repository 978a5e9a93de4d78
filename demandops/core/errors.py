"""Errors a user can act on. The CLI prints them as one line and exits non-zero."""


class DemandOpsError(Exception):
    """Base class: a problem with the user's input, configuration or data, not a bug."""


class ConfigError(DemandOpsError):
    """A configuration file is missing, unreadable or invalid."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = file, key, problem
        where = f"{file}: {key}" if key else file
        super().__init__(f"invalid configuration: {where}: {problem}")


class DataError(DemandOpsError):
    """Raw or intermediate data is missing or cannot be read."""
