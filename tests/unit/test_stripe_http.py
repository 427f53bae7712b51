"""The Stripe HTTP client: requests, with proxy settings read once, where a proxy applies;
kept-alive connections of our own everywhere else."""

from __future__ import annotations

import pytest
import stripe

from workers.adapters.stripe import _http_client, _KeptAlive


def test_the_environments_proxy_for_stripe_is_taken_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an HTTPS proxy in the environment
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    # When the client is built
    client = _http_client("https://api.stripe.com", 5.0)
    # Then it carries that proxy, and its session no longer reads the environment per request
    assert isinstance(client, stripe.RequestsClient)
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
    # Then no proxy is used: the kept-alive client talks to it directly
    assert isinstance(client, _KeptAlive)
    assert client._proxy is None


def test_without_a_proxy_stripe_is_reached_directly_over_tls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for scheme in ("https", "http", "all"):
        for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
            monkeypatch.delenv(name, raising=False)
    client = _http_client("https://api.stripe.com", 5.0)
    assert isinstance(client, _KeptAlive)
    assert (client._host, client._port, client._secure, client._timeout) == (
        "api.stripe.com", None, True, 5.0,
    )  # fmt: skip
    assert client._tls.verify_mode.name == "CERT_REQUIRED"
    assert client._tls.check_hostname is True


def test_an_api_base_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        _KeptAlive("ftp://api.stripe.com", 5.0)
