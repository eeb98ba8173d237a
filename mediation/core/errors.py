"""Domain errors with stable codes. HTTP and CLI layers translate them; nothing else does."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base for errors a user can act on. `code` is stable; `message` is user language."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class InvalidInput(DomainError):
    code = "invalid"


class PermissionDenied(DomainError):
    code = "permission_denied"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    """The action is not allowed from the case's current state, or lost to a concurrent change."""

    code = "conflict"
