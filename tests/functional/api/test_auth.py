"""Who may call /api/v1: bearer tokens for the API only, cookie sessions with their CSRF token."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.accounts.service import issue_token
from tests.conftest import TEST_PASSWORD
from tests.factories import ArtistFactory, UserFactory

REPO_ROOT = Path(__file__).resolve().parents[3]
AREA_API_MODULES = ["app.api", "app.api.auth", "app.accounts.api", "app.catalog.api", "app.ingest.api"]


def _token_for(session, user) -> str:
    _, secret = issue_token(session, user, "tests")
    session.commit()
    return secret


def _csrf_token(client) -> str:
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


@pytest.fixture
def csrf_app(make_app):
    """An app that checks CSRF tokens, as in production."""
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        yield app


@pytest.fixture
def signed_in(csrf_app):
    """A browser signed in with a cookie session to an account owning the artist ``band``."""
    client = csrf_app.test_client()
    owner = ArtistFactory(slug="band").owner
    token = _csrf_token(client)
    response = client.post("/login", data={"email": owner.email, "password": TEST_PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return client, token


def test_a_bearer_token_authenticates_api_requests(client, session):
    user = UserFactory()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {_token_for(session, user)}"})
    assert me.status_code == 200 and me.json["email"] == user.email


def test_an_html_page_ignores_a_bearer_token(client, session):
    secret = _token_for(session, UserFactory())
    response = client.get("/account", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/api/v1/artists"), ("patch", "/api/v1/artists/band"), ("delete", "/api/v1/artists/band"),
     ("post", "/api/v1/tokens")],
)  # fmt: skip
def test_a_write_without_credentials_is_401_not_a_csrf_error(csrf_app, method, path):
    ArtistFactory(slug="band")
    response = getattr(csrf_app.test_client(), method)(path, json={"bio": "x", "name": "x"})
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"
    assert set(response.json) == {"error", "message", "details"}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer nope", "Basic x", "Bearer", "Bearer ", "bearer mbx_forged", "Token abc"])
def test_a_cookie_session_with_a_bogus_authorization_header_is_refused(signed_in, header):
    client, _ = signed_in
    write = client.patch("/api/v1/artists/band", json={"bio": "Hijacked"}, headers={"Authorization": header})
    assert write.status_code == 401 and write.json["error"] == "unauthorized"
    read = client.get("/api/v1/me", headers={"Authorization": header})
    assert read.status_code == 401
    assert client.get("/api/v1/artists/band").json["bio"] != "Hijacked"


def test_a_cookie_session_write_still_needs_its_csrf_token(signed_in):
    client, token = signed_in
    refused = client.patch("/api/v1/artists/band", json={"bio": "x"})
    assert refused.status_code == 400 and refused.json["error"] == "csrf_failed"
    accepted = client.patch("/api/v1/artists/band", json={"bio": "Loud."}, headers={"X-CSRFToken": token})
    assert accepted.status_code == 200 and accepted.json["bio"] == "Loud."


def test_a_valid_token_wins_over_the_cookie_session(signed_in, session):
    client, _ = signed_in
    other = UserFactory()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {_token_for(session, other)}"})
    assert me.json["email"] == other.email
    # A token request needs no CSRF token, and acts as the token's user, not the cookie's.
    stolen = client.patch("/api/v1/artists/band", json={"bio": "x"},
                          headers={"Authorization": f"Bearer {_token_for(session, other)}"})  # fmt: skip
    assert stolen.status_code == 403


@pytest.mark.parametrize("module", AREA_API_MODULES)
def test_each_api_module_imports_on_its_own(module):
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
