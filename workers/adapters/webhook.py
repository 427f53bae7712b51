"""The webhook adapter (WebhookPoster): POST a signed JSON body to a manufacturer's URL.

Neither the secret nor the URL (it may hold a token) ever appears in an error; redirects are
refused, not followed, so the signed body goes only where it was configured.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from email.message import Message
from typing import IO

from models.domain.errors import PermanentError, RetryableError
from models.domain.webhook_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_header

ID_HEADER = "Orderflow-Message-Id"
# Worth another try: the receiver is busy, rate-limiting or broken for now (and every 5xx).
_RETRY_STATUS = frozenset({408, 425, 429})
_MAX_RESPONSE_BYTES = 64 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is refused, not followed: the signed body goes where it was configured."""

    def redirect_request(  # noqa: PLR0917 - urllib's signature
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def post(url: str, body: bytes, secret: bytes, timeout_s: float, *, ident: str) -> None:
    """POST one signed body; our errors say whether trying again can help. Neither the secret
    nor the URL (it may hold a token) ever appears in an error."""
    if not url.startswith(("https://", "http://")):
        raise PermanentError("webhook_url_refused", "only http(s) URLs are called")
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "orderflow-webhooks/1",
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: signature_header(secret, stamp, body),
        ID_HEADER: ident,
    }
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - scheme checked above
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            response.read(_MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as error:
        raise refusal(error.code) from None
    except urllib.error.URLError as error:
        reason = error.reason
        name = type(reason).__name__ if isinstance(reason, BaseException) else "URLError"
        raise RetryableError("webhook_unreachable", name) from None
    except (OSError, http.client.HTTPException) as error:
        raise RetryableError("webhook_unreachable", type(error).__name__) from None


def refusal(status: int) -> PermanentError | RetryableError:
    """What a non-2xx answer means: 5xx, 408, 425 and 429 pass; other answers will not change."""
    if status >= 500 or status in _RETRY_STATUS or status < 200:
        return RetryableError("webhook_http_error", f"HTTP {status}")
    if 300 <= status < 400:
        return PermanentError("webhook_redirected", f"HTTP {status}; redirects are not followed")
    return PermanentError("webhook_refused", f"HTTP {status}")


class HttpWebhookPoster:
    """WebhookPoster over HTTP, signing with the configured secret."""

    def __init__(self, secret: bytes, timeout_s: float) -> None:
        self._secret = secret
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"HttpWebhookPoster(timeout_s={self._timeout_s})"

    def post(self, url: str, body: bytes, *, ident: str) -> None:
        """Sign and POST `body`; never unsigned: without a secret the message waits."""
        if not self._secret:
            raise RetryableError("webhook_unsigned", "ORDERFLOW_OEM_WEBHOOK_SECRET is not set")
        post(url, body, self._secret, self._timeout_s, ident=ident)
