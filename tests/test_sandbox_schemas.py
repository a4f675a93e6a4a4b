"""The sandbox's Management API answers validate against Auth0's own OpenAPI document.

Each exchange is checked against the operation it belongs to: the status code must be one the
OAS documents for that operation, and a body the OAS describes must validate against its schema
(``$ref``s resolved in the document, Draft 2020-12 as OpenAPI 3.1 uses).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from test_sandbox_management import enc

from linking_toolkit.sandbox import Sandbox

OAS_URI = "urn:auth0:management-api-v2"


class Oas:
    """The linking subset of the Management API's OpenAPI document, as a response checker."""

    def __init__(self, path: Path) -> None:
        self.document = json.loads(path.read_text())
        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(OAS_URI, resource)

    def operation(self, method: str, template: str) -> dict[str, Any]:
        return self.document["paths"][template][method.lower()]

    def check(self, response: httpx2.Response, template: str) -> Any:
        """Assert the status is documented for the operation and the body fits its schema."""
        method = response.request.method
        documented = self.operation(method, template)["responses"]
        status = str(response.status_code)
        assert status in documented, f"{method} {template} answered {status}, not in {sorted(documented)}"
        content = documented[status].get("content", {})
        if "application/json" not in content:
            return None
        body = response.json()
        pointer = "/".join(p.replace("~", "~0").replace("/", "~1") for p in
                           ("paths", template, method.lower(), "responses", status, "content",
                            "application/json", "schema"))
        validator = Draft202012Validator({"$ref": f"{OAS_URI}#/{pointer}"}, registry=self.registry,
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
        return body

    def insufficient_scope_message(self, method: str, template: str) -> str:
        """The 403 text the OAS gives for the operation's missing scope."""
        forbidden = self.operation(method, template)["responses"]["403"]
        texts = [forbidden["description"]]
        texts += [v for k, v in forbidden.items() if k.startswith("x-description-")]
        return next(t for t in texts if t.startswith("Insufficient scope"))


@pytest.fixture(scope="session")
def oas(auth0_reference: Path) -> Oas:
    return Oas(auth0_reference / "management-api-v2.linking-subset.oas.json")


def test_every_success_validates(sandbox: Sandbox, api: httpx2.Client, oas: Oas) -> None:
    users = oas.check(api.get("/users"), "/users")
    assert len(users) == 10
    oas.check(api.get("/users", params={"include_totals": "true", "per_page": 2, "page": 1}), "/users")
    oas.check(api.get("/users", params={"q": 'identities.connection:"github"', "fields": "user_id"}),
              "/users")
    created = oas.check(api.post("/users", json={
        "connection": "Username-Password-Authentication", "email": "schema@example.com",
        "password": "a long enough password", "user_metadata": {"k": "v"}, "app_metadata": {"a": [1]},
        "given_name": "Sche", "family_name": "Ma", "nickname": "sm", "username": "schema1",
        "picture": "https://example.com/p.png", "blocked": True, "email_verified": True}), "/users")
    new_id = created["user_id"]
    ada = next(u for u in users if u["email"] == "ada@example.com" and u["user_id"].startswith("auth0|"))
    ada_google = next(u for u in users if u["email"] == "ada@example.com" and u is not ada)
    linked = oas.check(api.post(f"/users/{enc(ada['user_id'])}/identities",
                                json={"provider": "google-oauth2", "user_id": ada_google["user_id"]}),
                       "/users/{id}/identities")
    assert len(linked) == 2
    oas.check(api.post(f"/users/{enc(ada['user_id'])}/identities",
                       json={"provider": "auth0", "user_id": new_id}), "/users/{id}/identities")
    one = oas.check(api.get(f"/users/{enc(ada['user_id'])}"), "/users/{id}")
    assert len(one["identities"]) == 3
    oas.check(api.get("/users-by-email", params={"email": "ada@example.com"}), "/users-by-email")
    oas.check(api.patch(f"/users/{enc(ada['user_id'])}", json={"user_metadata": {"x": None, "y": {"z": 1}},
                                                               "name": "Ada"}), "/users/{id}")
    remaining = oas.check(api.delete(f"/users/{enc(ada['user_id'])}/identities/auth0/{new_id.split('|')[1]}"),
                          "/users/{id}/identities/{provider}/{user_id}")
    assert len(remaining) == 2
    oas.check(api.delete(f"/users/{enc(new_id)}"), "/users/{id}")

    job = oas.check(api.post("/jobs/users-exports", json={"format": "json"}), "/jobs/users-exports")
    oas.check(api.post("/jobs/users-exports", json={
        "format": "csv", "connection_id": sandbox.connections["github"], "limit": 5,
        "fields": [{"name": "email", "export_as": "Email"}, {"name": "user_id"}]}), "/jobs/users-exports")
    for _ in range(200):
        status = oas.check(api.get(f"/jobs/{job['id']}"), "/jobs/{id}")
        if status["status"] == "completed":
            break
        time.sleep(0.05)
    assert status["status"] == "completed" and status["location"].startswith(sandbox.base_url)


def test_documented_errors_use_documented_codes(sandbox: Sandbox, api: httpx2.Client, oas: Oas) -> None:
    ada = enc(sandbox.demo_user("ada@example.com")["user_id"])
    oas.check(api.get("/users", params={"page": 10, "per_page": 100}), "/users")
    oas.check(api.get("/users/auth0%7Cnobody"), "/users/{id}")
    oas.check(api.patch("/users/auth0%7Cnobody", json={"name": "x"}), "/users/{id}")
    oas.check(api.post(f"/users/{ada}/identities", json={"provider": "twitter", "user_id": "1"}),
              "/users/{id}/identities")
    oas.check(api.delete(f"/users/{ada}/identities/auth0/{ada.split('%7C')[1]}"),
              "/users/{id}/identities/{provider}/{user_id}")
    oas.check(api.post("/jobs/users-exports", json={"connection_id": "con_0000000000000000"}),
              "/jobs/users-exports")
    oas.check(api.get("/jobs/job_0000000000000000"), "/jobs/{id}")
    oas.check(api.post("/users", json={"connection": "nope", "email": "a@b.c", "password": "x"}), "/users")
    unauthenticated = httpx2.get(sandbox.base_url + "/api/v2/users")
    oas.check(unauthenticated, "/users")


@pytest.mark.parametrize(("method", "template", "path"), [
    ("GET", "/users", "/users"),
    ("POST", "/users", "/users"),
    ("GET", "/users/{id}", "/users/auth0%7Cx"),
    ("PATCH", "/users/{id}", "/users/auth0%7Cx"),
    ("DELETE", "/users/{id}", "/users/auth0%7Cx"),
    ("POST", "/users/{id}/identities", "/users/auth0%7Cx/identities"),
    ("DELETE", "/users/{id}/identities/{provider}/{user_id}", "/users/auth0%7Cx/identities/github/1"),
    ("GET", "/users-by-email", "/users-by-email?email=a@b.c"),
    ("POST", "/jobs/users-exports", "/jobs/users-exports"),
    ("GET", "/jobs/{id}", "/jobs/job_x"),
])
def test_insufficient_scope_says_what_the_oas_says(sandbox: Sandbox, mint, oas: Oas, method: str,
                                                    template: str, path: str) -> None:
    token = mint("openid profile")
    response = httpx2.request(method, sandbox.base_url + "/api/v2" + path,
                              json={} if method != "GET" else None,
                              headers={"Authorization": f"Bearer {token}"})
    oas.check(response, template)
    body = response.json()
    assert body == {"statusCode": 403, "error": "Forbidden", "errorCode": "insufficient_scope",
                    "message": oas.insufficient_scope_message(method, template)}
