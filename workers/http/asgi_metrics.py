"""An ASGI middleware that counts and times every HTTP request by response status (the Stripe
webhook endpoint's `orderflow_webhook_requests_total`); no request content is looked at."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workers import metrics


class CountResponses:
    """Wraps an ASGI app; a request that ends without a response counts as 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, noting the status of the response it gets."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def noting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        finally:
            metrics.record_webhook(status, time.perf_counter() - started)
