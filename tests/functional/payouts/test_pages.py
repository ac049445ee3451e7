"""The studio's and the admin's payout pages, the sandbox onboarding, and the API; and that
nobody but an artist's owner (or an admin) sees its payouts, whichever way they ask."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.extensions import db
from app.payouts import service
from app.payouts.models import AccountStatus, Payout
from tests.factories import ArtistFactory, UserFactory
from tests.functional.payouts.conftest import connected, owe


@pytest.fixture
def paid_artist(app: Flask, run: Any) -> Any:
    artist = connected(slug="band", name="The Band")
    owe(artist, 10_000)
    run()
    return artist


def test_the_artist_connects_a_sandbox_account_on_its_page(app: Flask, client: Any, auth: Any) -> None:
    artist = ArtistFactory(slug="solo")
    auth.login(artist.owner.email)

    started = client.post("/studio/payouts/solo/connect")
    assert started.headers["Location"].endswith("/studio/payouts/solo/sandbox")
    page = client.get("/studio/payouts/solo/sandbox")
    assert page.status_code == 200 and "Connect the sandbox account" in page.text
    done = client.post("/studio/payouts/solo/sandbox", follow_redirects=True)

    db.session.expire_all()
    assert service.payout_account(db.session, artist.id).status is AccountStatus.ACTIVE
    assert "payout account is connected" in done.text
    assert "Payout account connected" in done.text


def test_the_studio_page_shows_the_owners_payouts_only(
    app: Flask, client: Any, auth: Any, paid_artist: Any
) -> None:
    other = connected(slug="other", name="Someone Else")
    owe(other, 20_000)
    auth.login(paid_artist.owner.email)

    page = client.get("/studio/payouts")

    assert page.status_code == 200
    assert "The Band" in page.text and "$90.00" in page.text and "paid" in page.text
    assert "Someone Else" not in page.text and "$180.00" not in page.text


def test_the_api_lists_the_owners_payouts(app: Flask, client: Any, auth: Any, paid_artist: Any) -> None:
    auth.login(paid_artist.owner.email)

    answer = client.get("/api/v1/artists/band/payouts")

    assert answer.status_code == 200
    [payout] = answer.json
    assert (payout["amount_minor"], payout["currency"], payout["status"]) == (9_000, "USD", "paid")
    assert payout["transfer_reference"].startswith("sbxtr_")


@pytest.mark.parametrize(
    "path",
    ["/api/v1/artists/band/payouts", "/studio/payouts/band/sandbox", "/studio/payouts/band/return",
     "/studio/payouts/band/onboarding", "/api/v1/artists/nobody/payouts"],
)  # fmt: skip
def test_another_user_gets_404_as_for_an_artist_that_does_not_exist(
    app: Flask, client: Any, auth: Any, paid_artist: Any, path: str
) -> None:
    auth.login(UserFactory().email)

    answer = client.get(path)

    assert answer.status_code == 404
    assert "9,000" not in answer.text and "90.00" not in answer.text


def test_another_user_cannot_connect_someone_elses_account(
    app: Flask, client: Any, auth: Any, paid_artist: Any
) -> None:
    auth.login(UserFactory().email)
    before = service.payout_account(db.session, paid_artist.id).external_id

    assert client.post("/studio/payouts/band/connect").status_code == 404
    db.session.expire_all()
    assert service.payout_account(db.session, paid_artist.id).external_id == before


def test_anonymous_callers_are_asked_to_sign_in(app: Flask, client: Any, paid_artist: Any) -> None:
    assert client.get("/api/v1/artists/band/payouts").status_code == 401
    assert client.get("/studio/payouts").status_code == 302
    assert client.get("/admin/payouts").status_code == 302


def test_an_admin_sees_runs_failures_and_a_dry_run_preview_that_writes_nothing(
    app: Flask, client: Any, auth: Any, paid_artist: Any
) -> None:
    owe(paid_artist, 5_000)
    auth.login(UserFactory(is_admin=True).email)
    payouts_before = db.session.scalar(select(func.count()).select_from(Payout))

    runs = client.get("/admin/payouts")
    preview = client.get("/admin/payouts/preview")

    assert runs.status_code == 200 and "#1" in runs.text and "$90.00" in runs.text
    assert preview.status_code == 200 and "The Band" in preview.text and "$45.00" in preview.text
    assert db.session.scalar(select(func.count()).select_from(Payout)) == payouts_before
    assert client.get("/api/v1/artists/band/payouts").status_code == 200


def test_a_non_admin_cannot_open_the_admin_page(app: Flask, client: Any, auth: Any) -> None:
    auth.login(UserFactory().email)

    assert client.get("/admin/payouts").status_code == 403
    assert client.get("/admin/payouts/preview").status_code == 403
