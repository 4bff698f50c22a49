"""One root error class with clear subclasses.

Every error a user can cause derives from :class:`HealthtraceError`, so the CLI and API can print a clear
message (never a traceback) and exit non-zero, while real bugs still surface as ordinary exceptions.
"""

from __future__ import annotations


class HealthtraceError(Exception):
    """Root of every expected, user-facing failure."""


class ConfigError(HealthtraceError):
    """Settings, a model file or a playbook file is invalid."""


class ModelFileError(ConfigError):
    """A scoring model file cannot be read or fails validation."""


class InputError(HealthtraceError):
    """Input is malformed, too large or out of bounds."""


class InputTooLargeError(InputError):
    """An input exceeds a configured bound (bytes, rows, files, items)."""


class ParseError(InputError):
    """A source file could not be parsed; names the file and the problem."""

    def __init__(self, path: str | None, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class GroundingError(HealthtraceError):
    """A citation does not align to its source text."""


class ExtractionError(HealthtraceError):
    """An extractor failed on a document (the document stays pending, never lost)."""


class LLMError(ExtractionError):
    """The LLM endpoint failed, timed out or answered off-schema after retries."""


class StoreError(HealthtraceError):
    """The ledger or the vector store refused an operation."""


class NotFoundError(StoreError):
    """An account, document, model or snapshot does not exist."""


class AuthError(HealthtraceError):
    """Missing or invalid credentials (HTTP 401)."""


class PermissionDeniedError(HealthtraceError):
    """Valid credentials without the right scope or tenant (HTTP 403)."""
