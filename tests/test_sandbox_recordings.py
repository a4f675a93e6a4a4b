"""Replay Auth0's recorded exchanges (go-auth0's link, unlink and delete tests) on the sandbox.

Each recorded request is sent to the sandbox with the recorded ids swapped for the sandbox's
own (users it created, its connection ids); the answers must have the recorded status codes and
the recorded shapes: the same keys at every level, the same list lengths, the same JSON types.
Error bodies must match word for word.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx2
import pytest
import yaml

from linking_toolkit.sandbox import Sandbox

# Auth0 shows ``blocked`` on a user once it has been set, even to false; the sandbox shows it only
# when true. The one difference the comparison allows.
ALLOWED_EXTRA_KEYS = {"blocked"}


def shape_diff(recorded: Any, ours: Any, where: str = "$") -> list[str]:
    """Differences of shape between two JSON values (keys, lengths, types), as readable paths."""
    if isinstance(recorded, dict) and isinstance(ours, dict):
        problems = []
        missing = set(recorded) - set(ours) - ALLOWED_EXTRA_KEYS
        extra = set(ours) - set(recorded) - ALLOWED_EXTRA_KEYS
        if missing or extra:
            problems.append(f"{where}: missing {sorted(missing)}, extra {sorted(extra)}")
        for key in set(recorded) & set(ours):
            problems += shape_diff(recorded[key], ours[key], f"{where}.{key}")
        return problems
    if isinstance(recorded, list) and isinstance(ours, list):
        if len(recorded) != len(ours):
            return [f"{where}: {len(recorded)} items recorded, {len(ours)} here"]
        return [p for i, (a, b) in enumerate(zip(recorded, ours, strict=True))
                for p in shape_diff(a, b, f"{where}[{i}]")]
    if type(recorded) is not type(ours):
        return [f"{where}: {type(recorded).__name__} recorded, {type(ours).__name__} here"]
    return []


def replay(sandbox: Sandbox, token: str, recording: Path) -> list[tuple[str, int]]:
    """Send the recording's requests; return (what, status) per exchange that was compared."""
    interactions = yaml.safe_load(recording.read_text())["interactions"]
    ids: dict[str, str] = {}  # recorded id -> the sandbox's id
    compared = []
    with httpx2.Client(base_url=sandbox.base_url, headers={"Authorization": f"Bearer {token}"}) as client:
        for interaction in interactions:
            request, response = interaction["request"], interaction["response"]
            path = urlsplit(request["url"]).path
            recorded_body = json.loads(response["body"]) if response["body"] else None
            if path.startswith("/api/v2/connections"):
                # The sandbox serves no connections endpoint: map the recorded ids by name instead.
                for connection in recorded_body["connections"]:
                    ids[connection["id"]] = sandbox.connections[connection["name"]]
                continue
            for recorded_id, our_id in sorted(ids.items(), key=lambda kv: -len(kv[0])):
                path = path.replace(quote(recorded_id, safe=""), quote(our_id, safe=""))
                path = path.replace(recorded_id.split("|")[-1], our_id.split("|")[-1])
            body_text = request["body"].strip() if request["body"] else ""
            for recorded_id, our_id in ids.items():
                body_text = body_text.replace(recorded_id, our_id)
            answer = client.request(request["method"], path,
                                    content=body_text.encode() if body_text and body_text != "null" else None,
                                    headers={"Content-Type": "application/json"} if body_text else {})
            what = f"{request['method']} {unquote(urlsplit(request['url']).path)}"
            assert answer.status_code == response["code"], (what, answer.text)
            compared.append((request["method"], answer.status_code))
            if recorded_body is None:
                assert answer.content == b"", what
                continue
            ours = answer.json()
            assert shape_diff(recorded_body, ours) == [], what
            if answer.status_code >= 400:
                assert ours == recorded_body, what
            if request["method"] == "POST" and path == "/api/v2/users":
                ids[recorded_body["user_id"]] = ours["user_id"]
                # Both sides are Auth0's database users: their own profile attributes come back.
                for key in ("email", "given_name", "family_name", "nickname", "username", "user_metadata",
                            "app_metadata", "email_verified", "name"):
                    assert ours[key] == recorded_body[key], key
    return compared


@pytest.mark.parametrize(("recording", "expected"), [
    ("user-link.yaml", [("POST", 201), ("POST", 201), ("POST", 201), ("DELETE", 204), ("DELETE", 204)]),
    ("user-unlink.yaml", [("POST", 201), ("POST", 201), ("POST", 201), ("DELETE", 200), ("DELETE", 204),
                          ("DELETE", 204)]),
    ("user-delete.yaml", [("POST", 201), ("DELETE", 204), ("GET", 404), ("DELETE", 204)]),
])
def test_recorded_exchanges_replay_on_the_sandbox(sandbox: Sandbox, m2m_token: str, auth0_reference: Path,
                                                  recording: str, expected: list[tuple[str, int]]) -> None:
    assert replay(sandbox, m2m_token, auth0_reference / "recordings" / recording) == expected
