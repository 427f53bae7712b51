"""`orderflow webhooks`: serve the Stripe webhook endpoint with uvicorn, enqueueing verified
events on the configured (or embedded) Redis."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn

from workers.cli.context import redis_connection
from workers.http import metrics_server
from workers.http.stripe_webhooks import PATH, create_app, redis_enqueuer
from workers.logs import configure_logging
from workers.settings import Settings

log = logging.getLogger(__name__)


class NotConfiguredError(Exception):
    """A setting the endpoint cannot run without is missing; the text says which."""


def check(settings: Settings) -> tuple[str, tuple[str, bytes] | None]:
    """The webhook secret and our signing key, or NotConfiguredError."""
    secret = settings.stripe_webhook_secret.get_secret_value()
    if not secret:
        raise NotConfiguredError(
            "ORDERFLOW_STRIPE_WEBHOOK_SECRET is not set: unverifiable webhooks are never accepted"
        )
    try:
        keys = settings.signing_key_pairs()
    except ValueError as error:
        raise NotConfiguredError(str(error)) from None
    if not keys and not settings.accept_unsigned:
        # Unsigned stripe.event envelopes would all be quarantined by the ingress.
        raise NotConfiguredError(
            "ORDERFLOW_SIGNING_KEYS is empty and ORDERFLOW_ACCEPT_UNSIGNED is false: "
            "events could not be signed"
        )
    return secret, keys[0] if keys else None


def serve(settings: Settings, log_level: str) -> None:
    """Run until SIGINT/SIGTERM; the caller has run `check`."""
    secret, signing_key = check(settings)
    configure_logging(log_level.upper(), settings.log_format)
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _exit_cleanly)
    # Its own port, not the webhook's: that one faces Stripe, metrics stay on loopback.
    metrics = metrics_server.serve(settings)
    try:
        _run(settings, secret, signing_key, log_level)
    finally:
        if metrics is not None:
            metrics.close()


def _run(
    settings: Settings, secret: str, signing_key: tuple[str, bytes] | None, log_level: str
) -> None:
    with redis_connection(settings) as client:
        app = create_app(secret, redis_enqueuer(client), signing_key=signing_key)
        log.info(
            "Stripe webhooks on http://%s:%d%s", settings.webhook_host, settings.webhook_port, PATH
        )
        uvicorn.run(
            app,
            host=settings.webhook_host,
            port=settings.webhook_port,
            log_level=log_level.lower(),
            log_config=None,  # keep our log format
        )


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler
    # it found: end with status 0 here, releasing Redis (and an embedded server) on the way out.
    raise SystemExit(0)
