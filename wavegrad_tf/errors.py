"""Errors a user can fix (a bad file, flag or request). The command-line tools print them as one line."""


class UserError(ValueError):
    """The message names the input, what was expected and what came."""


class ConfigError(UserError):
    """A config file, schedule file or override is invalid; the message names the field."""
