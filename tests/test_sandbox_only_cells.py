"""The tutorials' *Sandbox only* cells cannot hurt: they play the person only when nobody did.

A learner who logged in by hand, or whose login came back from the token cache, and then runs the
cell meant to stand in for them must see one line saying there is nothing to do, not a traceback
ending "That code is invalid or has expired" that reads as if their own login had failed.
"""

from __future__ import annotations

import pytest

from linking_toolkit import Tenant, start_login
from linking_toolkit.errors import AccessDenied
from linking_toolkit.sandbox import Sandbox

GOOGLE = "google-oauth2"


@pytest.fixture
def sandbox_options() -> dict[str, int]:
    return {"device_poll_interval": 1}


def quiet(text: str, url: str | None) -> None:
    """Nothing to show: the test plays every person."""


def test_the_cell_approves_a_login_nobody_approved(sandbox: Sandbox, client_tenant: Tenant,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    pending = start_login(client_tenant, show=quiet)
    line = sandbox.approve_login(pending, connection=GOOGLE, email="alan@example.com")
    assert line == "Approved on the sandbox's pages as alan@example.com (google-oauth2)."
    assert capsys.readouterr().out == line + "\n"
    assert pending.result(timeout=30).profile["email"] == "alan@example.com"


def test_after_a_login_by_hand_the_cell_does_nothing_and_says_so(sandbox: Sandbox,
                                                                 client_tenant: Tenant) -> None:
    pending = start_login(client_tenant, show=quiet)
    assert pending.user_code
    sandbox.approve_device(pending.user_code, connection=GOOGLE, email="alan@example.com")  # the person
    line = sandbox.approve_login(pending, connection=GOOGLE, email="grace@example.com")  # then the cell
    assert line in ("You logged in yourself: nothing for this cell to do.",
                    "Already logged in (by hand or from the token cache): nothing for this cell to do.")
    assert pending.result(timeout=0).profile["email"] == "alan@example.com"  # the person's login stands

    again = sandbox.approve_login(pending, connection=GOOGLE, email="grace@example.com")
    assert again == "Already logged in (by hand or from the token cache): nothing for this cell to do."


def test_a_login_that_ended_otherwise_is_named_not_approved(sandbox: Sandbox, client_tenant: Tenant) -> None:
    pending = start_login(client_tenant, show=quiet)
    assert pending.user_code
    sandbox.approve_device(pending.user_code, connection=GOOGLE, email="alan@example.com", deny=True)
    with pytest.raises(AccessDenied):
        pending.result(timeout=30)
    line = sandbox.approve_login(pending, connection=GOOGLE, email="alan@example.com")
    assert line == "This login already ended (failed): start it again to log in."


def test_a_wrong_code_still_fails_loudly(sandbox: Sandbox, client_tenant: Tenant) -> None:
    pending = start_login(client_tenant, show=quiet)
    try:
        class Forged:
            user_code = "BCDF-GHJK"
            status = "pending"

            def done(self) -> bool:
                return False

            def result(self, timeout: float | None = None) -> object:
                raise TimeoutError

        with pytest.raises(Exception, match="invalid or has expired"):
            sandbox.approve_login(Forged(), connection=GOOGLE, email="alan@example.com")
    finally:
        pending.cancel()
