"""Commerce fixtures: a catalogue with things for sale, and payments the way gateways report them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.catalog.models import PricingMode, Release, TrackStatus
from app.commerce import service
from app.commerce.models import Order
from app.timestamps import utcnow
from tests.factories import ReleaseFactory, TrackFactory, UserFactory


@pytest.fixture
def make_release() -> Callable[..., Release]:
    """A published release with ``tracks`` ready tracks, priced as asked."""

    def make(
        *,
        price: int = 700,
        minimum: int | None = None,
        mode: PricingMode = PricingMode.FIXED,
        currency: str = "USD",
        tracks: int = 2,
        track_price: int = 100,
        artist: Any = None,
    ) -> Release:
        extra = {"artist": artist} if artist is not None else {}
        release = ReleaseFactory(
            pricing_mode=mode,
            price_minor=price,
            minimum_price_minor=price if minimum is None else minimum,
            currency=currency,
            **extra,
        )
        for position in range(1, tracks + 1):
            TrackFactory(
                release=release,
                position=position,
                price_minor=track_price,
                status=TrackStatus.READY,
            )
        return release

    return make


@pytest.fixture
def buyer() -> Any:
    return UserFactory()


@pytest.fixture
def pay() -> Callable[..., Order]:
    """Report an order paid as a gateway would, and commit."""

    def report(session: Any, order: Order, fee: int = 0, config: Any = None) -> Order:
        from flask import current_app

        paid = service.record_payment(
            session,
            service.Payment(
                order_public_id=order.public_id,
                gateway=order.gateway,
                amount_minor=order.total_minor,
                currency=order.currency,
                fee_minor=fee,
                paid_at=utcnow(),
            ),
            config=config or current_app.config,
        )
        session.commit()
        return paid

    return report
