"""Exceptions with messages meant for users (printed by the CLI without a traceback)."""


class SpikelabError(Exception):
    """A problem with the user's input, configuration, data or environment."""


class ConfigError(SpikelabError, ValueError):
    """An invalid configuration (unknown key, wrong type, out-of-range value)."""


class DataError(SpikelabError, ValueError):
    """Missing, unreadable or inconsistent data files."""
