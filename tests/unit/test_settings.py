"""Settings: the URL formats of SPEC section 3, signing keys, and secrets kept out of errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from workers.settings import Settings


def test_empty_configuration_means_embedded_sqlite_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)
    assert settings.effective_database_url() == f"sqlite:///{tmp_path / 'orderflow.sqlite3'}"
    assert settings.redis_url == ""


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6380/0", "redis://:pw@h:1/2", "rediss://h:6380/0", "unix:///tmp/r.s"]
)
def test_redis_urls_in_the_documented_formats_are_accepted(url: str) -> None:
    assert Settings(redis_url=url, _env_file=None).redis_url == url


def test_other_redis_schemes_are_refused() -> None:
    with pytest.raises(ValidationError, match="redis_url must start with"):
        Settings(redis_url="http://127.0.0.1:6379", _env_file=None)


def test_a_bad_smtp_url_error_never_shows_the_password() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(smtp_url="ftp://user:hunter2secret@mail:25", _env_file=None)
    assert "hunter2secret" not in str(caught.value)


def test_signing_keys_parse_in_order_and_stay_hidden_in_repr() -> None:
    settings = Settings(signing_keys="new:s3cr3t-one, old:s3cr3t-two", _env_file=None)
    assert settings.signing_key_pairs() == [("new", b"s3cr3t-one"), ("old", b"s3cr3t-two")]
    assert "s3cr3t" not in repr(settings)


def test_environment_variables_use_the_orderflow_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERFLOW_DATABASE_URL", "postgresql+psycopg://u@127.0.0.1:5433/db")
    monkeypatch.setenv("ORDERFLOW_WORKER_THREADS", "7")
    settings = Settings(_env_file=None)
    assert settings.effective_database_url() == "postgresql+psycopg://u@127.0.0.1:5433/db"
    assert settings.worker_threads == 7


def test_malformed_signing_keys_are_refused_without_echoing_them() -> None:
    settings = Settings(signing_keys="no-colon-secret", _env_file=None)
    with pytest.raises(ValueError, match="key_id:secret") as caught:
        settings.signing_key_pairs()
    assert "no-colon-secret" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://worker:s3cr3t-pw@10.0.0.5:6379/0",
        "rediss://worker:s3cr3t-pw@redis.internal:6380/0?ssl_ca_certs=/etc/orderflow/ca.pem",
        "unix://worker:s3cr3t-pw@/run/redis/redis.sock?db=0",
    ],
)
def test_redis_urls_with_a_user_and_password_are_accepted_and_kept_out_of_repr(url: str) -> None:
    # Given a URL with an ACL user and a password, and a database URL with a password
    database_url = "postgresql+psycopg://orderflow_runtime:s3cr3t-pw@db.internal/orderflow"
    # When settings are made from them
    settings = Settings(redis_url=url, database_url=database_url, _env_file=None)
    # Then both are used as given, and neither appears in the settings' text form
    assert (settings.redis_url, settings.database_url) == (url, database_url)
    assert "s3cr3t-pw" not in repr(settings)
    assert "s3cr3t-pw" not in str(settings)


@pytest.mark.parametrize(
    "url", ["redis://worker:pa/ss-s3cr3t@h:6379/0", "redis://worker:pa#ss-s3cr3t@h:6379/0"]
)
def test_a_redis_url_with_an_unencoded_password_is_refused_without_echoing_it(url: str) -> None:
    # When the password holds a '/' or '#' that was not percent-encoded
    with pytest.raises(ValidationError) as refused:
        Settings(redis_url=url, _env_file=None)
    # Then the error says what to do, and shows no part of the password
    assert "percent-encode special characters" in str(refused.value)
    assert "s3cr3t" not in str(refused.value)
    assert "'pa'" not in str(refused.value)  # what urllib's own message would quote
