"""The screen in front of the routing: what can be refused without verifying a token is refused
before FastAPI does any work, and an address that keeps sending bad credentials is slowed down.

A bad credential still costs a service its HTTP parsing, its routing, the dependency machinery and
an error answer, a few milliseconds of the same two cores that answer everyone else: a burst of
them once made an authenticated read wait seven times longer (bench B9). So, in pure ASGI:

- a request to /v1 without a well-formed `Authorization: Bearer <token>` is answered 401 here;
- every 401 from /v1 (here or from the gate) counts as a failure of the caller's address, and an
  address with `failures_per_minute` failures in the last minute is answered 429 with Retry-After
  here, for a minute's moving window, without its token being looked at;
- except for a token that verifies (`Gate.verifies`: its signature and claims, or a token the gate
  verified before): a caller who shares an address with an attacker (a NAT, a proxy) keeps
  working, with the token it had or a newly issued one, so the throttle cannot be turned against
  a good caller. What stays throttled is the work bad credentials cause: a throttled address's bad
  token costs a signature check and a 429, never the routing, the dependencies or an error page.

The address is the peer's as the server sees it. Behind a reverse proxy that is the proxy, unless
the server is told to trust its forwarded headers (uvicorn's --proxy-headers and
--forwarded-allow-ips); then a limit per address is a limit for everyone behind it, which is why
tokens verified before pass.
"""

from __future__ import annotations

import structlog
from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth.gate import BEARER, NO_TOKEN, unauthorized_headers

log = structlog.get_logger(__name__)

SCREENED_PREFIX = "/v1"  # every route under it needs a token (tests/unit/test_route_policy.py)


class FailedCredentials:
    """How many bad credentials each address sent over the last minute (`limits`' moving window)."""

    def __init__(self, per_minute: int, storage_uri: str = "memory://") -> None:
        self.item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))

    def over(self, address: str) -> bool:
        return self.item is not None and not self._limiter.test(self.item, "failed-credentials", address)

    def count(self, address: str) -> None:
        if self.item is not None:
            self._limiter.hit(self.item, "failed-credentials", address)


class CredentialScreen:
    def __init__(self, app: ASGIApp, *, failures_per_minute: int, storage_uri: str = "memory://") -> None:
        self.app = app
        self.failures_per_minute = failures_per_minute
        self.failed = FailedCredentials(failures_per_minute, storage_uri)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(SCREENED_PREFIX):
            await self.app(scope, receive, send)
            return
        address = (scope.get("client") or ("unknown", 0))[0]
        found = BEARER.fullmatch((Headers(scope=scope).get("authorization") or "").strip())
        gate = scope["app"].state.runtime.gate
        if self.failed.over(address) and not (found and gate.verifies(found.group(1))):
            log.warning("credentials throttled", address=address, path=scope["path"])
            await _answer(
                429,
                f"too many requests with bad credentials from this address (over {self.failures_per_minute} "
                "a minute); a token that verifies still passes",
                {"Retry-After": "60"},
            )(scope, receive, send)
            return
        if not found:
            self.failed.count(address)
            await _answer(401, NO_TOKEN, unauthorized_headers(NO_TOKEN))(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.failed.count(address)
            await send(message)

        await self.app(scope, receive, watch)


def _answer(status: int, detail: str, headers: dict[str, str]) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)
