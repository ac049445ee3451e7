"""Only an artist's owner (or an admin) reads its statements: anyone else gets 404, through
the pages, the downloads, the API and guessed URLs alike."""

from __future__ import annotations

from datetime import UTC, datetime
import io
import json
from typing import Any

import pytest
from pypdf import PdfReader

from app.extensions import db
from tests.factories import UserFactory
from tests.functional.statements.conftest import OCTOBER, Activity, make_catalogue

OWN_URLS = [
    "/studio/statements/{slug}/2026-10/USD",
    "/studio/statements/{slug}/2026-10/USD.csv",
    "/studio/statements/{slug}/2026-10/USD.pdf",
    "/studio/statements/{slug}/2026-10/USD.html",
    "/api/v1/artists/{slug}/statements",
    "/api/v1/artists/{slug}/statements/2026-10",
]


def shows_the_balance(response: Any) -> bool:
    """Whether the response shows the statement's closing balance, 11.70, in its format."""
    if response.mimetype == "application/pdf":
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
        return "$11.70" in text
    if response.mimetype == "application/json":
        return "1170" in json.dumps(response.get_json())
    return b"11.70" in response.data


@pytest.fixture
def statement_of(activity: Activity) -> str:
    activity.sale(datetime(2026, 10, 4, tzinfo=UTC))
    return activity.catalogue.artist.slug


@pytest.mark.parametrize("url", OWN_URLS)
def test_the_owner_reads_their_statement(client: Any, auth: Any, activity: Activity,
                                         statement_of: str, url: str) -> None:  # fmt: skip
    auth.login(activity.catalogue.artist.owner.email)
    response = client.get(url.format(slug=statement_of))
    assert response.status_code == 200 and shows_the_balance(response)


@pytest.mark.parametrize("url", [*OWN_URLS, "/studio/statements/{slug}/2026-10/EUR",
                                 "/studio/statements/{slug}/2026-09/USD.csv",
                                 "/api/v1/artists/nobody/statements"])  # fmt: skip
def test_another_user_gets_not_found(client: Any, auth: Any, statement_of: str, url: str) -> None:
    other = UserFactory()
    db.session.commit()
    auth.login(other.email)

    response = client.get(url.format(slug=statement_of))

    assert response.status_code == 404 and not shows_the_balance(response)


def test_the_list_shows_only_the_users_own_artists(client: Any, auth: Any, activity: Activity,
                                                   statement_of: str) -> None:  # fmt: skip
    other = Activity(activity.app, make_catalogue())
    other.sale(datetime(2026, 10, 5, tzinfo=UTC))
    auth.login(activity.catalogue.artist.owner.email)

    page = client.get("/studio/statements").get_data(as_text=True)

    assert activity.catalogue.artist.name in page and f"/{statement_of}/2026-10/USD" in page
    assert other.catalogue.artist.name not in page


def test_an_admin_reads_any_statement(client: Any, auth: Any, statement_of: str) -> None:
    admin = UserFactory(is_admin=True)
    db.session.commit()
    auth.login(admin.email)
    assert client.get(f"/api/v1/artists/{statement_of}/statements/{OCTOBER}").status_code == 200


def test_anonymous_visitors_are_asked_to_sign_in(client: Any, statement_of: str) -> None:
    assert client.get(f"/api/v1/artists/{statement_of}/statements").status_code == 401
    page = client.get(f"/studio/statements/{statement_of}/{OCTOBER}/USD")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
