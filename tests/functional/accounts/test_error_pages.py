"""Error pages carry the site's layout, even when the database is down; /favicon.ico answers."""

import pytest

from app import create_app
from app.extensions import db
from tests.conftest import TEST_PASSWORD, base_config
from tests.factories import UserFactory

LAYOUT_MARKS = ('<header class="site-header">', '<footer class="site-footer">', "Back to the catalogue")


def _has_layout(page: str) -> bool:
    return all(mark in page for mark in LAYOUT_MARKS)


def _failing_app(make_app):
    app = make_app()

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("a bug in a view")

    return app


def test_a_missing_page_is_a_404_in_the_layout(client):
    response = client.get("/no-such-page")
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert _has_layout(page)
    assert "<title>404 · Megabox</title>" in page and "Not found" in page
    assert "Nothing was found at this address. Check it for typos." in page
    assert 'placeholder="Search artists, releases and tracks"' in page


def test_a_wrong_method_is_a_405_in_the_layout(client):
    response = client.get("/logout")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]
    page = response.get_data(as_text=True)
    assert _has_layout(page) and "This address does not take that kind of request." in page


def test_a_missing_api_route_answers_json_in_plain_words(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404 and response.json["error"] == "not_found"
    assert response.json["message"] == "Nothing was found at this address. Check it for typos."


def test_a_bug_in_a_view_is_a_500_in_the_layout_with_a_reference(make_app):
    app = _failing_app(make_app)
    with app.app_context():
        email = UserFactory(display_name="Signed In Sam").email
    client = app.test_client()
    assert client.post("/login", data={"email": email, "password": TEST_PASSWORD}).status_code == 302
    response = client.get("/boom")
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert _has_layout(page) and "Something broke" in page
    assert "Signed In Sam" in page  # the full header, with the user's links
    assert f"<code>{response.headers['X-Request-Id']}</code>" in page
    assert "a bug in a view" not in page and "RuntimeError" not in page


def test_a_bug_in_a_view_answers_json_to_the_api_style(make_app):
    response = _failing_app(make_app).test_client().get("/boom", headers={"Accept": "application/json"})
    assert response.status_code == 500 and response.json["error"] == "internal_error"
    assert response.json["details"]["request_id"] == response.headers["X-Request-Id"]


@pytest.fixture
def database_down(tmp_path):
    """An app whose database cannot be reached (its file's directory does not exist)."""
    app = create_app(base_config(f"sqlite:///{tmp_path / 'missing' / 'megabox.db'}", tmp_path / "instance"))
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def signed_in_cookie(app):
    """A session cookie of a signed-in user (the apps share the test secret key)."""
    client = app.test_client()
    assert client.post("/login", data={"email": UserFactory().email, "password": TEST_PASSWORD}).status_code == 302
    return client.get_cookie("session").value


@pytest.mark.parametrize(("path", "status"), [("/", 500), ("/no-such-page", 404)])
def test_with_the_database_down_a_signed_in_user_gets_the_page_in_the_layout(
    database_down, signed_in_cookie, path, status
):
    client = database_down.test_client()
    client.set_cookie("session", signed_in_cookie)
    response = client.get(path)
    page = response.get_data(as_text=True)
    assert response.status_code == status
    assert _has_layout(page), page
    # The header cannot name the user without the database, so it leaves the user links out.
    assert "Sign out" not in page and "Sign in" not in page


def test_with_the_database_down_a_visitor_gets_the_500_page_in_the_full_layout(database_down):
    response = database_down.test_client().get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert _has_layout(page) and "Something broke" in page and "Sign in" in page


def test_the_favicon_ico_leads_to_the_site_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response.headers["Location"] == "/static/favicon.svg"
    icon = client.get(response.headers["Location"])
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert icon.get_data().startswith(b"<svg")
    icon.close()
