"""The package's own errors.

Every error a user can cause (a bad name, a missing folder, a foreign
checkpoint) is one of these, with a message that says what to do. The CLI
and the pages catch `ResExplorerError` and show its text; anything else is
a bug and keeps its traceback.
"""


class ResExplorerError(Exception):
    """Base class: the message is meant for the user, as it stands."""


class DataError(ResExplorerError):
    """A data source that cannot be read: offline download, bad folder."""


class RunError(ResExplorerError):
    """A run folder that is missing or unreadable."""


class RunDamaged(RunError):
    """A run folder whose config cannot be read: listed as damaged, with what is wrong."""


class CheckpointError(ResExplorerError):
    """A file that is not a ResNet Explorer checkpoint, or a damaged one."""


class ConfigError(ResExplorerError, ValueError):
    """An invalid model or training setting; a ValueError as well."""


class BusyError(ResExplorerError):
    """What is asked for is held by another job or process: wait, or stop it."""


class DiskFullError(ResExplorerError):
    """A write found no space left; the file it would replace is kept."""


class FolderError(ResExplorerError):
    """A folder that cannot be used as asked: a file in its place, no
    permission, a read-only disk. The message names it and what to do."""
