"""Exception types. Every user-facing error names the offending file/key and the fix."""

from __future__ import annotations


class BenchkitError(Exception):
    """Base class for errors benchkit reports to the user (no traceback needed).

    The CLI prints the message as one line and exits with ``exit_code`` (2: usage, config or input problem).
    """

    exit_code = 2


class ConfigError(BenchkitError):
    """A configuration file or value is invalid (unknown key, wrong type, out of range)."""


class BadInputError(BenchkitError):
    """One input item (image, frame, annotation) cannot be used.

    Carries the path and a hint so batch runners can report it and move on.
    """

    def __init__(self, path, problem: str, fix: str = ""):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        msg = f"{self.path}: {problem}"
        if fix:
            msg += f" (fix: {fix})"
        super().__init__(msg)


class ConfigValueError(ConfigError, ValueError):
    """A config value is outside its domain (NaN, inf, out of range, unordered range, bad distribution).

    Also a ``ValueError`` so dataclass ``__post_init__`` checks keep working for callers that catch that.
    """


class CorruptFileError(BenchkitError, ValueError):
    """A file benchkit wrote or reads (``spec.json``, ``results.json``, a JSONL index, a YAML config) is damaged.

    Also a ``ValueError`` so readers that treat a damaged cache as "rebuild it" keep catching it.
    """

    def __init__(self, path, problem: str, fix: str = ""):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        msg = f"{self.path}: {problem}"
        if fix:
            msg += f"; fix: {fix}"
        super().__init__(msg)


class MissingSourceError(BenchkitError):
    """A dataset source folder is missing or malformed; message holds download/layout instructions."""


class UnknownNameError(BenchkitError, KeyError):
    """A registry lookup failed; the message carries close-match suggestions."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class UnavailableError(BenchkitError):
    """A metric/method cannot run here (missing weights or optional dependency)."""
