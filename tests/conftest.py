"""Shared fixtures: every test that talks to a tenant talks HTTP to a running sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from linking_toolkit.sandbox import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A fresh, seeded demo tenant for one test (nothing leaks between tests)."""
    with Sandbox(seed=7) as tenant:
        yield tenant


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[Sandbox]:
    """One demo tenant for a module's read-only tests."""
    with Sandbox(seed=7) as tenant:
        yield tenant
