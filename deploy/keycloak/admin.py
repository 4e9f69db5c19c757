"""A thin client of Keycloak's admin REST API, logged in as the bootstrap admin of the master
realm: what provisioning (deploy/keycloak/provision.py, sign_in.py) and the tests use."""

from __future__ import annotations

import httpx

REALM = "captives"


class ProvisioningError(RuntimeError):
    """The admin API refused a step; the message names the step and Keycloak's answer."""


class KeycloakAdmin:
    """A thin client of the admin REST API, logged in as the bootstrap admin of the master realm."""

    def __init__(self, base_url: str, username: str, password: str, realm: str = REALM) -> None:
        self.base_url = base_url.rstrip("/")
        self.realm = realm
        self._username = username
        self._password = password
        self.http = httpx.Client(base_url=self.base_url, timeout=30.0)
        self._login()

    def _login(self) -> None:
        answer = self.http.post(
            "/realms/master/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": self._username,
                "password": self._password,
            },
        )
        _check(answer, "admin login")
        self.http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def request(self, method: str, path: str, step: str, **kwargs) -> httpx.Response:
        answer = self.http.request(method, path, **kwargs)
        if answer.status_code == 401:  # the admin token (60 s) ran out during a long run
            self._login()
            answer = self.http.request(method, path, **kwargs)
        _check(answer, step)
        return answer

    def get_or_none(self, path: str, step: str) -> dict | None:
        answer = self.http.get(path)
        if answer.status_code == 401:
            self._login()
            answer = self.http.get(path)
        if answer.status_code == 404:
            return None
        _check(answer, step)
        return answer.json()

    @property
    def realm_path(self) -> str:
        return f"/admin/realms/{self.realm}"

    def client(self, client_id: str) -> dict | None:
        found = self.request(
            "GET", f"{self.realm_path}/clients", f"find client {client_id}", params={"clientId": client_id}
        )
        return found.json()[0] if found.json() else None

    def user(self, username: str) -> dict | None:
        found = self.request(
            "GET", f"{self.realm_path}/users", f"find user {username}", params={"username": username, "exact": "true"}
        )
        return found.json()[0] if found.json() else None

    def set_user_enabled(self, username: str, enabled: bool) -> None:
        user = self.user(username)
        if user is None:
            raise ProvisioningError(f"no user {username}")
        user["enabled"] = enabled
        self.request("PUT", f"{self.realm_path}/users/{user['id']}", f"enable={enabled} {username}", json=user)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> KeycloakAdmin:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check(answer: httpx.Response, step: str) -> None:
    if answer.is_error:
        raise ProvisioningError(f"{step}: HTTP {answer.status_code} {answer.text[:500]}")
