"""Typed errors for bad input. The CLI turns every `RMSearchError` into exit code 2 with its message.

Each message names the thing at fault, the problem, and how to fix it.
"""


class RMSearchError(ValueError):
    """Bad input: the message says what is wrong and how to fix it."""


class DataError(RMSearchError):
    """An embedding, gold or pair array (or the files holding them) is unusable."""


class ConfigError(RMSearchError):
    """A head, ensemble or search-space configuration is invalid."""


class ExportError(RMSearchError):
    """An exported ensemble folder is incomplete, edited or inconsistent."""
