"""API keys: where they are read from, constant-time comparison, and the loopback rule."""

from __future__ import annotations

import pytest

from streamer.errors import InputError
from streamer.serve.auth import ApiKeyAuth, check_bind, is_loopback, resolve_api_key

pytestmark = pytest.mark.timeout(30)


def test_off_lets_everything_through():
    auth = ApiKeyAuth(None)
    assert not auth.enabled and auth.check({}, {})


@pytest.mark.parametrize(
    "headers, query, ok",
    [
        ({"authorization": "Bearer s3cret"}, {}, True),
        ({"Authorization": "bearer s3cret"}, {}, True),
        ({"x-api-key": "s3cret"}, {}, True),
        ({}, {"api_key": "s3cret"}, True),
        ({}, {}, False),
        ({"authorization": "Bearer wrong"}, {}, False),
        ({"authorization": "Basic s3cret"}, {}, False),
        ({"x-api-key": "s3cre"}, {}, False),
        ({}, {"api_key": "s3cret-and-more"}, False),
        ({"authorization": "Bearer wrong"}, {"api_key": "s3cret"}, False),  # a header wins over the query
    ],
)
def test_key_sources(headers, query, ok):
    assert ApiKeyAuth("s3cret").check(headers, query) is ok


def test_non_ascii_keys_compare():
    assert ApiKeyAuth("clé").check({"x-api-key": "clé"})
    assert not ApiKeyAuth("clé").check({"x-api-key": "cle"})


def test_empty_key_is_refused():
    with pytest.raises(InputError):
        ApiKeyAuth("  ")


def test_key_from_env():
    assert resolve_api_key(None, {"STREAMER_API_KEY": "k"}) == "k"
    assert resolve_api_key("flag", {"STREAMER_API_KEY": "k"}) == "flag"
    assert resolve_api_key(None, {}) is None


@pytest.mark.parametrize(
    "host, loop",
    [
        ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
        ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.com", False),
    ],
)  # fmt: skip
def test_loopback(host, loop):
    assert is_loopback(host) is loop


def test_non_loopback_needs_a_key():
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "key")
    with pytest.raises(InputError, match="refusing to listen on 0.0.0.0 without an API key"):
        check_bind("0.0.0.0", None)
