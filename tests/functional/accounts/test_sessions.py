"""Sessions end when they should: sign-out, password change; remember-me cookies with them."""

import re

import pytest
from sqlalchemy import select

from app.accounts.models import User
from tests.conftest import TEST_PASSWORD
from tests.factories import UserFactory

NEW_PASSWORD = "a-brand-new-passphrase"


def _sign_in(app, email, password=TEST_PASSWORD, remember=False):
    client = app.test_client()
    data = {"email": email, "password": password}
    if remember:
        data["remember"] = "on"
    assert client.post("/login", data=data).status_code == 302
    return client


def _browser_with(app, **cookies):
    """A new browser holding copies of the given cookies, and nothing else."""
    client = app.test_client()
    for name, value in cookies.items():
        client.set_cookie(name, value)
    return client


def _signed_in(client) -> bool:
    return client.get("/account").status_code == 200


def test_signing_out_makes_a_copied_session_cookie_useless(app):
    user = UserFactory()
    client = _sign_in(app, user.email)
    copied = client.get_cookie("session").value
    assert _signed_in(_browser_with(app, session=copied))
    client.post("/logout")
    assert not _signed_in(client)
    assert not _signed_in(_browser_with(app, session=copied))


def test_signing_out_revokes_the_remember_me_cookie(app):
    user = UserFactory()
    client = _sign_in(app, user.email, remember=True)
    remembered = client.get_cookie("remember_token").value
    assert _signed_in(_browser_with(app, remember_token=remembered))
    client.post("/logout")
    assert client.get_cookie("remember_token") is None
    assert not _signed_in(_browser_with(app, remember_token=remembered))


def test_the_remember_me_cookie_is_rotated_at_each_sign_in(app):
    user = UserFactory()
    first = _sign_in(app, user.email, remember=True).get_cookie("remember_token").value
    second = _sign_in(app, user.email, remember=True).get_cookie("remember_token").value
    assert first != second
    # Signing in elsewhere leaves the first browser signed in.
    assert _signed_in(_browser_with(app, remember_token=first))


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(app, session):
    user = UserFactory()
    here = _sign_in(app, user.email, remember=True)
    elsewhere = _sign_in(app, user.email, remember=True)
    old_remember = here.get_cookie("remember_token").value
    other_remember = elsewhere.get_cookie("remember_token").value

    response = here.post("/account/password", data={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 302

    assert _signed_in(here)
    new_remember = here.get_cookie("remember_token").value
    assert new_remember != old_remember
    assert _signed_in(_browser_with(app, remember_token=new_remember))
    assert not _signed_in(elsewhere)
    for stale in (old_remember, other_remember):
        assert not _signed_in(_browser_with(app, remember_token=stale))
    assert _sign_in(app, user.email, NEW_PASSWORD)
    assert app.test_client().post("/login", data={"email": user.email, "password": TEST_PASSWORD}).status_code == 401


def test_a_password_change_without_remember_me_sets_no_remember_cookie(app):
    here = _sign_in(app, UserFactory().email)
    here.post("/account/password", data={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD})
    assert _signed_in(here) and here.get_cookie("remember_token") is None


def test_a_password_change_needs_the_current_password(app, session):
    user = UserFactory()
    here = _sign_in(app, user.email)
    elsewhere = _sign_in(app, user.email)
    response = here.post("/account/password", data={"current_password": "not-my-password", "new_password": NEW_PASSWORD})
    assert response.status_code == 422
    assert "That is not your current password." in response.get_data(as_text=True)
    assert _signed_in(here) and _signed_in(elsewhere)
    assert session.scalar(select(User.session_epoch).where(User.id == user.id)) == 0


def test_the_account_page_offers_the_password_change(app):
    page = _sign_in(app, UserFactory().email).get("/account").get_data(as_text=True)
    assert re.search(r'<form method="post" action="/account/password"', page)
    assert 'name="current_password"' in page and 'name="new_password"' in page


def test_an_old_style_session_cookie_naming_no_epoch_is_refused(app):
    user = UserFactory()
    client = _sign_in(app, user.email)
    with client.session_transaction() as cookie_session:
        cookie_session["_user_id"] = str(user.id)
    assert not _signed_in(client)


@pytest.mark.parametrize("env", ["production", "development"])
def test_the_remember_cookie_is_secure_in_production_and_always_http_only(make_app, env):
    overrides = {"ENV": env}
    if env == "production":
        overrides["KEK"] = "unused-by-this-test"
    app = make_app(**overrides)
    with app.app_context():
        email = UserFactory().email
    response = app.test_client().post("/login", data={"email": email, "password": TEST_PASSWORD, "remember": "on"})
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token="))
    assert "HttpOnly" in cookie
    assert ("Secure" in cookie) is (env == "production")
