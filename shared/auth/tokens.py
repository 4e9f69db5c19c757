"""Getting access tokens from the identity provider, for the project's own callers: the demo
(a person per step, with his password), the benchmarks and the test suites (the operator client's
credentials). The services never issue a token; they only verify (shared/auth/gate.py).

A token is cached and fetched again a minute before it expires, so a long run never sends a dead
one; `BearerAuth` puts the current one on every request of an httpx client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field

import httpx

REFRESH_MARGIN_S = 60.0


class NoToken(RuntimeError):
    """The identity provider refused: the message names who asked and what it answered."""


@dataclass
class TokenSource:
    """Tokens for one client (client credentials) or one person (the password grant through a
    public client such as captives-cli)."""

    token_endpoint: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    _token: str | None = field(default=None, init=False, repr=False)
    _expires: float = field(default=0.0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def who(self) -> str:
        return f"person {self.username}" if self.username else f"client {self.client_id}"

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() > self._expires - REFRESH_MARGIN_S:
                self._fetch()
            return self._token

    def _fetch(self) -> None:
        if self.username is not None:
            form = {"grant_type": "password", "client_id": self.client_id, "username": self.username}
            form["password"] = self.password or ""
            if self.client_secret:
                form["client_secret"] = self.client_secret
        else:
            form = {"grant_type": "client_credentials", "client_id": self.client_id}
            form["client_secret"] = self.client_secret or ""
        try:
            answer = httpx.post(self.token_endpoint, data=form, timeout=30.0)
        except httpx.HTTPError as error:
            raise NoToken(f"{self.who}: {self.token_endpoint} did not answer: {error}") from None
        if answer.status_code != 200:
            raise NoToken(f"{self.who} got no token: HTTP {answer.status_code} {answer.text[:300]}")
        issued = answer.json()
        self._token = issued["access_token"]
        self._expires = time.monotonic() + float(issued.get("expires_in", 60))


class BearerAuth(httpx.Auth):
    """httpx auth: the source's current token on every request that names no other credential
    of its own (a request sent with another person's headers keeps them)."""

    def __init__(self, source: TokenSource):
        self.source = source

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "Authorization" not in request.headers:
            request.headers["Authorization"] = f"Bearer {self.source.token()}"
        yield request


class BearerHeaders(Mapping[str, str]):
    """Request headers whose Authorization is the source's current token each time they are read,
    so `headers=...` (or `{**headers, ...}` built at the call) never carries an expired one."""

    def __init__(self, source: TokenSource, **extra: str):
        self.source = source
        self.extra = extra

    def _current(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.source.token()}", **self.extra}

    def __getitem__(self, name: str) -> str:
        return self._current()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(("Authorization", *self.extra))

    def __len__(self) -> int:
        return 1 + len(self.extra)

    def __repr__(self) -> str:
        return f"BearerHeaders({self.source.who})"
