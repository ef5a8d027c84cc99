"""API-key authentication shared by every endpoint, and the rule that guards non-loopback binds.

A key comes from ``--api-key`` or ``STREAMER_API_KEY``. Clients send it as
``Authorization: Bearer KEY`` or ``x-api-key: KEY`` (HTTP headers / gRPC metadata), or, for
browsers that cannot set WebSocket headers, as the query parameter ``api_key=KEY``. Keys are
compared in constant time. A server bound to anything but a loopback address refuses to start
without a key.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping

from streamer.errors import InputError

__all__ = ["ApiKeyAuth", "ENV_VAR", "QUERY_PARAM", "is_loopback", "check_bind", "resolve_api_key"]

ENV_VAR = "STREAMER_API_KEY"
QUERY_PARAM = "api_key"


class ApiKeyAuth:
    """Checks a request's credentials against one key; with no key every request passes."""

    def __init__(self, key: str | None):
        if key is not None and not key.strip():
            raise InputError("the API key is empty")
        self._key = None if key is None else key.encode("utf-8")

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def presented(self, headers: Mapping[str, str], query: Mapping[str, str] | None = None) -> str | None:
        """The key a request carries (header first, then the query parameter), or None."""
        auth = _get(headers, "authorization")
        if auth is not None:
            scheme, _, value = auth.strip().partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip()
        key = _get(headers, "x-api-key")
        if key is not None:
            return key.strip()
        if query is not None:
            return query.get(QUERY_PARAM)
        return None

    def check(self, headers: Mapping[str, str], query: Mapping[str, str] | None = None) -> bool:
        """True if auth is off or the request carries the key (constant-time comparison)."""
        if self._key is None:
            return True
        given = self.presented(headers, query)
        if given is None:
            return False
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self._key)


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict with other casing (gRPC metadata is lower case already)
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def resolve_api_key(flag: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The key from the flag, else from ``STREAMER_API_KEY``, else None."""
    if flag is not None:
        return flag
    value = environ.get(ENV_VAR)
    return value if value else None


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 / ::1; False for wildcard and every other address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname: it may resolve to anything


def check_bind(host: str, key: str | None) -> None:
    """Refuse (InputError) to listen on a non-loopback address without an API key."""
    if key is None and not is_loopback(host):
        raise InputError(
            f"refusing to listen on {host} without an API key: pass --api-key or set {ENV_VAR} "
            "(or listen on 127.0.0.1)"
        )
