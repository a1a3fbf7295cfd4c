"""Typed errors. Library code raises these; the CLI prints their one-line message and exits non-zero."""


class GenforgeError(Exception):
    """A problem the user can fix. Its message is one line naming the file, field or value."""


class ConfigError(GenforgeError):
    """An option has a value genforge cannot use."""


class DataError(GenforgeError):
    """Input data is missing, unreadable or unsuitable."""


class CheckpointError(GenforgeError):
    """A run folder, checkpoint or exported model cannot be used."""
