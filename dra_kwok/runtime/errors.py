"""Typed Kubernetes API errors, so that callers match on a class, not on status codes and body text.

Why: "409" means both AlreadyExists (a create met an object of that name) and Conflict (a stale resourceVersion or a
failed precondition), and they call for different actions. The apiserver says which in the Status body's `reason`;
:func:`api_error` reads it once. Every class is an ``ApiException`` (the official client's), so code that catches
that keeps working, and ``status`` / ``reason`` / ``body`` are still there. The tree follows client-go's
``apimachinery/pkg/api/errors`` predicates (IsNotFound, IsAlreadyExists, IsConflict, IsGone/IsResourceExpired,
IsInvalid, IsForbidden).
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.exceptions import ApiException

__all__ = ["AlreadyExists", "ApiError", "Conflict", "Forbidden", "Gone", "Invalid", "NotFound", "api_error"]


class ApiError(ApiException):
    """A non-2xx answer of the apiserver. ``reason`` is the Status reason (``AlreadyExists``...), ``message`` its
    message."""

    def __init__(self, status: int, reason: str, message: str = "", body: str | None = None, http_resp: Any = None):
        super().__init__(status=status, reason=reason)
        self.body = body
        self.message = message
        if http_resp is not None:
            self.headers = http_resp.headers

    def __str__(self) -> str:
        return f"{self.status} {self.reason}" + (f": {self.message}" if self.message else "")


class NotFound(ApiError):
    """404: the object (or its namespace) does not exist."""


class AlreadyExists(ApiError):
    """409 AlreadyExists: a create met an object of the same name."""


class Conflict(ApiError):
    """409 Conflict: a stale resourceVersion, or a failed uid / resourceVersion precondition."""


class Gone(ApiError):
    """410 Gone / Expired: the resourceVersion is too old to watch from; re-list."""


class Invalid(ApiError):
    """422: the object breaks the API's validation."""


class Forbidden(ApiError):
    """403: RBAC (or an admission policy) refused the request."""


_BY_REASON = {"AlreadyExists": AlreadyExists, "Conflict": Conflict, "NotFound": NotFound, "Gone": Gone,
              "Expired": Gone, "Invalid": Invalid, "Forbidden": Forbidden}
_BY_STATUS = {404: NotFound, 409: Conflict, 410: Gone, 422: Invalid, 403: Forbidden}


def api_error(status: int, body: bytes | str | dict | None = None, http_resp: Any = None) -> ApiError:
    """The typed error for an answer: by the Status body's reason when there is one, else by the status code."""
    status_obj: dict = {}
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body if isinstance(body, str) else None
    if isinstance(body, dict):
        status_obj, text = body, json.dumps(body)
    elif text:
        try:
            parsed = json.loads(text)
            status_obj = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            pass
    code = int(status_obj.get("code") or status)
    reason = str(status_obj.get("reason") or "")
    cls = _BY_REASON.get(reason) or _BY_STATUS.get(code, ApiError)
    return cls(code, reason or cls.__name__, str(status_obj.get("message") or ""), text, http_resp)
