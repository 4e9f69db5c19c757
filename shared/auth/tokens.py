"""Getting access tokens from the identity provider, for the project's own callers: the demo
(a person per step, with his password), the benchmarks and the test suites (the operator client's
credentials). The services never issue a token; they only verify (shared/auth/gate.py).

A token is cached and renewed a minute before it expires, so a long run never sends a dead one;
`BearerAuth` puts the current one on every request of an httpx client. A person's token is
renewed with the refresh token of his sign-in while his session lasts, so he is not asked for a
one-time code again (shared/auth/one_time_codes.py); when the session has ended (revoked, timed
out, his account disabled) he signs in again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field

import httpx

from shared.auth.one_time_codes import OneTimeCodes

REFRESH_MARGIN_S = 60.0


class NoToken(RuntimeError):
    """The identity provider refused: the message names who asked and what it answered."""


@dataclass
class TokenSource:
    """Tokens for one client (client credentials) or one person (the password grant through the
    command line's client, with his one-time code when he has a second factor)."""

    token_endpoint: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    one_time_codes: OneTimeCodes | None = field(default=None, repr=False)
    _token: str | None = field(default=None, init=False, repr=False)
    _expires: float = field(default=0.0, init=False, repr=False)
    _refresh: str | None = field(default=None, init=False, repr=False)
    _refresh_expires: float = field(default=0.0, init=False, repr=False)
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
        if self._refresh is not None and time.monotonic() < self._refresh_expires - REFRESH_MARGIN_S:
            answer = self._post({"grant_type": "refresh_token", "refresh_token": self._refresh})
            if answer.status_code == 200:
                return self._keep(answer.json())
            self._refresh = None  # the session ended: sign in again
        if self.username is not None:
            form = {"grant_type": "password", "username": self.username, "password": self.password or ""}
            if self.one_time_codes is not None:
                form["totp"] = self.one_time_codes.next_code()
        else:
            form = {"grant_type": "client_credentials"}
        answer = self._post(form)
        if answer.status_code != 200:
            raise NoToken(f"{self.who} got no token: HTTP {answer.status_code} {answer.text[:300]}")
        self._keep(answer.json())

    def _post(self, form: dict[str, str]) -> httpx.Response:
        form = {**form, "client_id": self.client_id}
        if self.client_secret:
            form["client_secret"] = self.client_secret
        try:
            return httpx.post(self.token_endpoint, data=form, timeout=30.0)
        except httpx.HTTPError as error:
            raise NoToken(f"{self.who}: {self.token_endpoint} did not answer: {error}") from None

    def _keep(self, issued: dict) -> None:
        now = time.monotonic()
        self._token = issued["access_token"]
        self._expires = now + float(issued.get("expires_in", 60))
        # A client's own grant has no session to refresh; a person's has one while it lasts.
        self._refresh = issued.get("refresh_token") if self.username is not None else None
        self._refresh_expires = now + float(issued.get("refresh_expires_in", 0))


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
