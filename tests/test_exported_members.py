"""The package's public surface is exactly ``__all__``, as in httpx's own test of the same name."""

from __future__ import annotations

import inspect

import linking_toolkit


def test_all_imports_are_exported() -> None:
    public = sorted(
        name for name, value in vars(linking_toolkit).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    )
    assert sorted(linking_toolkit.__all__) == public
    assert len(set(linking_toolkit.__all__)) == len(linking_toolkit.__all__)


def test_every_exported_name_says_why() -> None:
    for name in linking_toolkit.__all__:
        value = getattr(linking_toolkit, name)
        if callable(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_exported_members_belong_to_the_package() -> None:
    for name in linking_toolkit.__all__:
        value = getattr(linking_toolkit, name)
        module = getattr(value, "__module__", "linking_toolkit")
        assert module.startswith("linking_toolkit"), f"{name} comes from {module}"
