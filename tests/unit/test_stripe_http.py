"""The Stripe HTTP client reads proxy settings once, at construction, not on every call."""

from __future__ import annotations

import pytest

from workers.stripe_adapter import _http_client


def test_the_environments_proxy_for_stripe_is_taken_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an HTTPS proxy in the environment
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    # When the client is built
    client = _http_client("https://api.stripe.com", 5.0)
    # Then it carries that proxy, and its session no longer reads the environment per request
    assert client._proxy == {"https": "http://proxy.internal:3128"}
    assert client._session is not None
    assert client._session.trust_env is False


def test_no_proxy_excludes_a_local_stripe(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a proxy, and NO_PROXY naming the local fake's host
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    # When the client for a loopback API base is built
    client = _http_client("http://127.0.0.1:12111", 5.0)
    # Then no proxy is used
    assert client._proxy is None
