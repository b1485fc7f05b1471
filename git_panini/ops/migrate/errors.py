"""The one error a migration stops with."""


class MigrateError(Exception):
    """What stops a migration, in one line; `usage` marks a bad argument or revision (exit 2)."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage
