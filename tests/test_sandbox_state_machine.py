"""A hypothesis state machine over the sandbox's Management API, against a model of who owns what.

Each example gets a fresh demo tenant (it starts in about 0.15 s), so every user in it is the
example's own: the demo people it starts with, database users it creates with ``POST /users`` and
social users it creates by a first login through the tenant's pages. Rules create, patch metadata,
link by ``provider``/``user_id`` and by ``link_with`` (the secondary's ID token from a real login,
the primary's own access token from another), unlink and delete, and make the bad calls (an unknown
id, an identity already linked, a user linked to itself, a primary as a secondary). After every
step: no 5xx, the tenant's users and their identities are the model's (each identity under exactly
one user), a refused call changed nothing, and an unlinked user came back with every field it had
when it was linked but those Auth0 recreates (``RECREATED``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, precondition, rule
from test_sandbox_management import enc
from test_sandbox_unlink_roundtrip import RECREATED

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.connections import DATABASE
from linking_toolkit.sandbox.defaults import PASSWORD_REALM
from linking_toolkit.sandbox.seed import DEMO_PEOPLE

Ident = tuple[str, str]  # (provider, the provider's user id)
Account = tuple[str, str]  # (connection, email): who a person logs in as

REDIRECT = "http://127.0.0.1:8765/callback"
USER_SCOPE = "openid profile email update:current_user_identities"
# Every social account the demo's simulated providers know, users or not yet.
SOCIAL_ACCOUNTS = sorted((c, p["email"]) for p in DEMO_PEOPLE for c, _, _ in p["accounts"] if c != DATABASE)
METADATA_KEYS = ("theme", "plan", "team")
METADATA_VALUES = st.one_of(st.none(), st.integers(0, 9), st.sampled_from(["a", "b", "é"]),
                            st.lists(st.integers(0, 3), max_size=2))


def full_id(ident: Ident) -> str:
    return f"{ident[0]}|{ident[1]}"


def split(user_id: str) -> Ident:
    provider, _, short = user_id.partition("|")
    return provider, short


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a JWT the tenant signed (read only, for its ``sub``)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def profile_of(doc: dict[str, Any]) -> dict[str, Any]:
    """What unlink must give back of a standalone user: everything Auth0 does not recreate."""
    return {k: v for k, v in doc.items() if k not in RECREATED}


class SandboxMachine(RuleBasedStateMachine):
    users = Bundle("users")

    def __init__(self) -> None:
        super().__init__()
        self.tenant = Sandbox(seed=7).start()
        self.web = httpx2.Client(base_url=self.tenant.base_url, timeout=30)
        token = self.call(self.web, "POST", "/oauth/token", json={
            "grant_type": "client_credentials", "client_id": self.tenant.m2m_client_id,
            "client_secret": self.tenant.m2m_client_secret,
            "audience": self.tenant.management_audience}).json()["access_token"]
        self.api = httpx2.Client(base_url=self.tenant.base_url + "/api/v2", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})
        self.identities: dict[str, list[Ident]] = {}  # user -> its identities, main one first
        self.metadata: dict[str, dict[str, Any]] = {}
        self.standalone: dict[Ident, dict[str, Any]] = {}  # an identity's user, as it last stood alone
        self.accounts: dict[Account, Ident] = {}
        self.passwords = {(DATABASE, u["email"]): u["password"] for u in self.tenant.demo_users}
        self.created = 0
        for doc in self.all_users():
            ident = split(doc["user_id"])
            self.identities[doc["user_id"]] = [ident]
            self.metadata[doc["user_id"]] = doc.get("user_metadata", {})
            self.accounts[(doc["identities"][0]["connection"], doc["email"])] = ident

    def teardown(self) -> None:
        self.api.close()
        self.web.close()
        self.tenant.stop()

    # -- HTTP, the model, snapshots --------------------------------------------------------------------

    def call(self, client: httpx2.Client, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        response = client.request(method, path, **kwargs)
        assert response.status_code < 500, (method, path, response.status_code, response.text)
        return response

    def all_users(self) -> list[dict[str, Any]]:
        users = self.call(self.api, "GET", "/users", params={"per_page": 100}).json()
        assert len(users) < 100  # one page holds the example's tenant
        return users

    def owner_of(self, ident: Ident) -> str | None:
        return next((u for u, held in self.identities.items() if ident in held), None)

    def refused(self, response: httpx2.Response, before: list[dict[str, Any]], status: int) -> None:
        """The call was refused with ``status`` and Auth0's error shape, and nothing changed."""
        assert response.status_code == status, (response.status_code, response.text)
        assert set(response.json()) >= {"statusCode", "error", "message"}
        assert self.all_users() == before

    def add_user(self, ident: Ident, metadata: dict[str, Any] | None = None) -> str:
        self.identities[full_id(ident)] = [ident]
        self.metadata[full_id(ident)] = metadata or {}
        return full_id(ident)

    def login(self, account: Account) -> dict[str, Any] | None:
        """Log in as ``account`` as a person would; its tokens, or None if the tenant refuses."""
        connection, email = account
        if connection == DATABASE:
            response = self.call(self.web, "POST", "/oauth/token", data={
                "grant_type": PASSWORD_REALM, "client_id": self.tenant.client_id, "username": email,
                "password": self.passwords[account], "realm": DATABASE, "scope": USER_SCOPE,
                "audience": self.tenant.management_audience})
            ident = self.accounts[account]
            if self.owner_of(ident) is None:  # deleted: no such database user any more
                assert response.status_code == 403, response.text
                return None
            assert response.status_code == 200, response.text
            tokens = response.json()
            assert claims_of(tokens["id_token"])["sub"] == self.owner_of(ident)
            return tokens
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        url = f"{self.tenant.base_url}/authorize?" + urlencode({
            "response_type": "code", "client_id": self.tenant.client_id, "redirect_uri": REDIRECT,
            "scope": USER_SCOPE, "state": "s", "audience": self.tenant.management_audience,
            "code_challenge": challenge, "code_challenge_method": "S256"})
        redirected = self.tenant.approve_browser(url, connection=connection, email=email)
        code = parse_qs(urlsplit(redirected).query)["code"][0]
        response = self.call(self.web, "POST", "/oauth/token", data={
            "grant_type": "authorization_code", "client_id": self.tenant.client_id, "code": code,
            "code_verifier": verifier, "redirect_uri": REDIRECT})
        assert response.status_code == 200, response.text
        tokens = response.json()
        sub = claims_of(tokens["id_token"])["sub"]
        known = self.accounts.get(account)
        if known is not None and self.owner_of(known) is not None:
            assert sub == self.owner_of(known)
        else:  # a first login (or one after a delete) makes the user from the provider's profile
            assert sub not in self.identities and (known is None or sub == full_id(known))
            self.accounts[account] = split(sub)
            self.add_user(split(sub))
            event("login created a user")
        return tokens

    def expected_link(self, primary: str, ident: Ident) -> int:
        """The status the tenant must answer a link of ``ident`` into ``primary`` with."""
        owner = self.owner_of(ident)
        if owner is None:
            return 400  # an inexistent identity
        if primary not in self.identities:
            return 404
        if owner == primary:
            return 400 if self.identities[primary][0] == ident else 409
        if self.identities[owner][0] != ident or len(self.identities[owner]) > 1:
            return 400  # linked elsewhere, or a primary as a secondary
        return 201

    def linked(self, response: httpx2.Response, primary: str, ident: Ident) -> None:
        assert response.status_code == 201, response.text
        secondary = self.owner_of(ident)
        assert secondary is not None
        del self.identities[secondary], self.metadata[secondary]
        self.identities[primary].append(ident)
        assert [(i["provider"], i["user_id"]) for i in response.json()] == self.identities[primary]

    # -- rules -----------------------------------------------------------------------------------------

    @rule(target=users)
    def start_users(self) -> Any:
        """The demo people the example's tenant starts with."""
        return multiple(*sorted(self.identities))

    @rule(target=users, name_given=st.booleans(), meta=st.dictionaries(
        st.sampled_from(METADATA_KEYS), st.integers(0, 9), max_size=2))
    def create_database_user(self, name_given: bool, meta: dict[str, Any]) -> str:
        self.created += 1
        email = f"made{self.created}@machine.example.org"
        body: dict[str, Any] = {"connection": DATABASE, "email": email, "password": f"pw-{self.created}-x",
                                "given_name": "Made", "family_name": f"N{self.created}",
                                "username": f"made{self.created}", "user_metadata": meta}
        if name_given:
            body["name"] = f"Made N{self.created}"
        response = self.call(self.api, "POST", "/users", json=body)
        assert response.status_code == 201, response.text
        ident = split(response.json()["user_id"])
        self.passwords[(DATABASE, email)] = body["password"]
        self.accounts[(DATABASE, email)] = ident
        return self.add_user(ident, meta)

    @rule(target=users, account=st.sampled_from(SOCIAL_ACCOUNTS))
    def log_in_with_a_social_account(self, account: Account) -> Any:
        before = set(self.identities)
        tokens = self.login(account)
        assert tokens is not None
        sub = claims_of(tokens["id_token"])["sub"]
        return sub if sub not in before else multiple()

    @rule(user=users, key=st.sampled_from(METADATA_KEYS), value=METADATA_VALUES)
    def patch_metadata(self, user: str, key: str, value: Any) -> None:
        before = self.all_users()
        response = self.call(self.api, "PATCH", f"/users/{enc(user)}", json={"user_metadata": {key: value}})
        if user not in self.identities:
            self.refused(response, before, 404)
            return
        assert response.status_code == 200, response.text
        if value is None:
            self.metadata[user].pop(key, None)
        else:
            self.metadata[user][key] = value

    @rule(primary=users, secondary=users)
    def link_by_user_id(self, primary: str, secondary: str) -> None:
        ident = split(secondary)
        expected = self.expected_link(primary, ident)
        event(f"link by user_id: {expected}")
        before = self.all_users()
        response = self.call(self.api, "POST", f"/users/{enc(primary)}/identities",
                             json={"provider": ident[0], "user_id": secondary})
        if expected == 201:
            self.linked(response, primary, ident)
        else:
            self.refused(response, before, expected)

    @rule(user=users)
    def link_to_itself(self, user: str) -> None:
        self.link_by_user_id(user, user)

    @rule(primary=users)
    def link_an_unknown_identity(self, primary: str) -> None:
        self.link_by_user_id(primary, "auth0|" + "f" * 24)

    @precondition(lambda self: any(len(held) > 1 for held in self.identities.values()))
    @rule(data=st.data())
    def link_a_primary_as_secondary(self, data: st.DataObject) -> None:
        holder = data.draw(st.sampled_from(sorted(u for u, held in self.identities.items() if len(held) > 1)))
        other = data.draw(st.sampled_from(sorted(self.identities)))
        self.link_by_user_id(other, holder)

    @rule(primary=st.sampled_from(SOCIAL_ACCOUNTS + [(DATABASE, p["email"]) for p in DEMO_PEOPLE
                                                      if any(a[0] == DATABASE for a in p["accounts"])]),
          secondary=users)
    def link_with_an_id_token(self, primary: Account, secondary: str) -> None:
        """The primary logs in (its access token), then the secondary (its ID token)."""
        own = self.login(primary)
        account = next((a for a, i in self.accounts.items() if full_id(i) == secondary), None)
        second = self.login(account) if account is not None else None
        if own is None or second is None:
            event("link_with: a login refused")
            return
        me = claims_of(own["id_token"])["sub"]
        sub = claims_of(second["id_token"])["sub"]
        expected = 400 if sub == me else self.expected_link(me, split(sub))
        event(f"link_with: {expected}")
        before = self.all_users()
        response = self.call(self.api, "POST", f"/users/{enc(me)}/identities", json={
            "link_with": second["id_token"]}, headers={"Authorization": f"Bearer {own['access_token']}"})
        if expected == 201:
            self.linked(response, me, split(sub))
        else:
            self.refused(response, before, expected)

    @precondition(lambda self: any(len(held) > 1 for held in self.identities.values()))
    @rule(target=users, data=st.data())
    def unlink(self, data: st.DataObject) -> str:
        primary, ident = data.draw(st.sampled_from(sorted(
            (u, i) for u, held in self.identities.items() for i in held[1:])))
        path = f"/users/{enc(primary)}/identities/{ident[0]}/{enc(ident[1])}"
        response = self.call(self.api, "DELETE", path)
        assert response.status_code == 200, response.text
        self.identities[primary].remove(ident)
        assert [(i["provider"], i["user_id"]) for i in response.json()] == self.identities[primary]
        back = self.call(self.api, "GET", f"/users/{enc(full_id(ident))}")
        assert back.status_code == 200, back.text
        # Link + unlink gives back every field but those Auth0 recreates.
        assert profile_of(back.json()) == self.standalone[ident]
        return self.add_user(ident)

    @rule(user=users)
    def unlink_a_main_identity(self, user: str) -> None:
        before = self.all_users()
        provider, short = split(user)
        response = self.call(self.api, "DELETE", f"/users/{enc(user)}/identities/{provider}/{enc(short)}")
        self.refused(response, before, 400 if user in self.identities else 404)

    @rule(user=users)
    def delete(self, user: str) -> None:
        response = self.call(self.api, "DELETE", f"/users/{enc(user)}")
        assert response.status_code == 204
        self.identities.pop(user, None)
        self.metadata.pop(user, None)

    # -- after every step --------------------------------------------------------------------------

    @invariant()
    def the_tenant_is_the_model(self) -> None:
        docs = self.all_users()
        assert {d["user_id"] for d in docs} == set(self.identities)
        held = [(i["provider"], i["user_id"]) for d in docs for i in d["identities"]]
        assert len(held) == len(set(held))  # every identity under exactly one user
        for doc in docs:
            held_now = [(i["provider"], i["user_id"]) for i in doc["identities"]]
            assert held_now == self.identities[doc["user_id"]]
            assert doc.get("user_metadata", {}) == self.metadata[doc["user_id"]]
            if len(doc["identities"]) == 1:
                self.standalone[split(doc["user_id"])] = profile_of(doc)


SandboxMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=12, derandomize=True,
                                            deadline=None, database=None)
TestSandboxMachine = SandboxMachine.TestCase
