"""Payout fixtures: artists owed money through real paid orders, and connected accounts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import current_app

from app.catalog.models import Artist, TrackStatus
from app.commerce import service as commerce
from app.extensions import db
from app.ledger.verify import verify
from app.payouts.models import AccountStatus, PayoutAccount
from app.timestamps import utcnow
from tests.factories import ArtistFactory, ReleaseFactory, TrackFactory, UserFactory

# A sale of 10 000 minor units credits the artist 9 000 (ARTIST_SHARE_BPS 9000).
MINIMUMS = "USD:2500,EUR:5000"


def owe(artist: Artist, price_minor: int, currency: str = "USD") -> None:
    """Make the platform owe ``artist`` 90% of ``price_minor``: a paid sandbox order of one of
    their releases, posted by the commerce service as checkout would. Commits."""
    release = ReleaseFactory(
        artist=artist, price_minor=price_minor, minimum_price_minor=price_minor, currency=currency
    )
    TrackFactory(release=release, position=1, status=TrackStatus.READY)
    order = commerce.create_order(
        db.session, UserFactory(), [commerce.CartLine(release.id)], gateway="sandbox",
        config=current_app.config,
    )  # fmt: skip
    commerce.record_payment(
        db.session,
        commerce.Payment(
            order_public_id=order.public_id, gateway="sandbox", amount_minor=order.total_minor,
            currency=currency, fee_minor=0, paid_at=utcnow(),
        ),  # fmt: skip
        config=current_app.config,
    )
    db.session.commit()


def connected(gateway: str = "sandbox", external_id: str | None = None, **artist: Any) -> Artist:
    """An artist whose payout account with ``gateway`` is active. Commits."""
    made = ArtistFactory(**artist)
    db.session.add(
        PayoutAccount(
            artist_id=made.id, gateway=gateway, external_id=external_id or f"sbxacct_{made.id}",
            status=AccountStatus.ACTIVE, activated_at=utcnow(),
        )  # fmt: skip
    )
    db.session.commit()
    return made


def assert_ledger_verifies() -> None:
    db.session.expire_all()
    assert verify(db.session) == []


@pytest.fixture
def app(make_app: Any) -> Any:
    built = make_app(PAYOUT_MINIMUMS=MINIMUMS)
    with built.app_context():
        yield built
        db.session.rollback()


@pytest.fixture
def run(runner: Any) -> Callable[..., Any]:
    """``megabox payouts run`` with these arguments; asserts it succeeded."""

    def invoke(*args: str) -> Any:
        result = runner.invoke(args=["payouts", "run", *args])
        assert result.exit_code == 0, result.output
        return result

    return invoke
