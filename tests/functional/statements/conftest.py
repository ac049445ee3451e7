"""Statement fixtures: an artist's catalogue, and its money moving through a few months.

``Activity`` makes the ledger postings a statement reads the way production makes them:
orders through ``app.commerce.service`` on the sandbox gateway (paid, refunded, disputed,
disputes won), an ad period closed by ``app.pools.service``, and payouts posted by the
payouts' ledger contract (``payout:<id>``, reversed as ``payout:<id>:reversed``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from app.catalog.models import Artist, PricingMode, Release, TrackStatus
from app.commerce import service as commerce
from app.extensions import db
from app.ledger import service as ledger
from app.ledger.money import Money
from app.ledger.models import clearing_code, AccountKind
from app.plays.models import Listener, Play, PlayOutcome
from app.pools.periods import count_landed, ensure_period
from app.pools.service import close_period
from tests.factories import ArtistFactory, ReleaseFactory, TrackFactory, UserFactory

# The statement under test is October's; September makes its opening balance, November comes
# after it (and holds October's late refunds).
OCTOBER = "2026-10"
SEPTEMBER_START = datetime(2026, 9, 1, tzinfo=UTC)
OCTOBER_START = datetime(2026, 10, 1, tzinfo=UTC)
NOVEMBER_START = datetime(2026, 11, 1, tzinfo=UTC)
DECEMBER_START = datetime(2026, 12, 1, tzinfo=UTC)
OCTOBER_LAST_INSTANT = NOVEMBER_START - timedelta(microseconds=1)
AFTER_OCTOBER = datetime(2026, 11, 3, 12, tzinfo=UTC)


@dataclass
class Catalogue:
    artist: Artist
    album: Release  # fixed price, tracks sold on their own too
    pay_what_you_want: Release  # name your price, minimum 300


def make_catalogue(artist: Artist | None = None) -> Catalogue:
    artist = artist or ArtistFactory()
    album = ReleaseFactory(artist=artist, title="Long Player", price_minor=1000,
                           minimum_price_minor=1000, currency="USD")  # fmt: skip
    pwyw = ReleaseFactory(artist=artist, title="Sketches", pricing_mode=PricingMode.NAME_YOUR_PRICE,
                          price_minor=700, minimum_price_minor=300, currency="USD")  # fmt: skip
    for position, title in enumerate(("Opening Song", "Second Song"), start=1):
        TrackFactory(release=album, position=position, title=title, price_minor=150,
                     status=TrackStatus.READY)  # fmt: skip
    TrackFactory(release=pwyw, position=1, title="Demo", price_minor=100, status=TrackStatus.READY)
    db.session.commit()
    return Catalogue(artist, album, pwyw)


@pytest.fixture
def catalogue(app: Any) -> Catalogue:
    return make_catalogue()


class Activity:
    """Money moving for a catalogue's artist; every step commits, like the request it stands for."""

    def __init__(self, app: Any, catalogue: Catalogue) -> None:
        self.app = app
        self.catalogue = catalogue
        self.buyer = UserFactory()
        self.payouts = 0
        db.session.commit()

    def sale(self, at: datetime, *, extra: int = 0, tracks: bool = False, fee: int = 0) -> Any:
        """An order paid at ``at``: the name-your-price release (with ``extra`` above its
        minimum) and the album, or the album's tracks one by one."""
        album = self.catalogue.album
        lines = [commerce.CartLine(self.catalogue.pay_what_you_want.id, amount_minor=300 + extra)]
        if tracks:
            lines += [commerce.CartLine(album.id, track_id=t.id) for t in album.tracks]
        else:
            lines.append(commerce.CartLine(album.id))
        order = commerce.create_order(db.session, self.buyer, lines, gateway="sandbox",
                                      config=self.app.config)  # fmt: skip
        commerce.record_payment(
            db.session,
            commerce.Payment(order_public_id=order.public_id, gateway="sandbox",
                             amount_minor=order.total_minor, currency="USD", fee_minor=fee,
                             paid_at=at),  # fmt: skip
            config=self.app.config,
        )
        db.session.commit()
        return order

    def refund(self, order: Any, total: int, at: datetime) -> None:
        commerce.record_refund(db.session, order, refunded_total_minor=total, at=at)
        db.session.commit()

    def chargeback(self, order: Any, at: datetime, *, won_at: datetime | None = None) -> None:
        dispute = f"dp_{order.id}"
        commerce.record_dispute(db.session, order, dispute_id=dispute, fee_minor=1500, at=at)
        if won_at is not None:
            commerce.record_dispute_closed(db.session, order, dispute_id=dispute, won=True,
                                           fee_minor=1500, at=won_at)  # fmt: skip
        db.session.commit()

    def payout(self, amount: int, at: datetime, *, reversed_at: datetime | None = None) -> None:
        """A payout by the payouts' ledger contract: Dr the payable, Cr the gateway's clearing."""
        self.payouts += 1
        payable = ledger.artist_payable(db.session, self.catalogue.artist.id, "USD")
        code = clearing_code("sandbox", "USD")
        clearing = ledger.account(db.session, code, AccountKind.ASSET, "USD")
        posted = ledger.post(
            db.session, idempotency_key=f"payout:{self.payouts}", kind="payout",
            entries=[(payable, Money(amount, "USD")), (clearing, Money(-amount, "USD"))],
            description=f"Payout {self.payouts}", effective_at=at,
        )  # fmt: skip
        if reversed_at is not None:
            ledger.reverse(db.session, posted, idempotency_key=f"payout:{self.payouts}:reversed",
                           kind="payout_reversal", effective_at=reversed_at)  # fmt: skip
        db.session.commit()

    def ad_period(
        self, key: str, plays: dict[str, int], revenue: int, *, closed_at: datetime,
        early: bool = False,
    ) -> None:
        """Counted plays of the artist's tracks (by title) in period ``key``, then its close
        (before the period's end with ``early``, as the admin may)."""
        period = ensure_period(db.session, self.app.config, key)
        listener = Listener(key=f"c:statement-{key}")
        db.session.add(listener)
        db.session.flush()  # the plays name the listener
        releases = (self.catalogue.album, self.catalogue.pay_what_you_want)
        tracks = {track.title: track for release in releases for track in release.tracks}
        at = period.starts_at + timedelta(days=3)
        for title, count in plays.items():
            if count == 0:
                continue
            db.session.execute(
                insert(Play),
                [{"track_id": tracks[title].id, "listener_id": listener.id, "started_at": at,
                  "threshold_ms": 30_000, "outcome": PlayOutcome.COUNTED, "counted_at": at,
                  "earns": True, "period_id": period.id} for _ in range(count)],
            )  # fmt: skip
        count_landed(db.session, period.id, listener.id, plays=sum(plays.values()))
        db.session.commit()
        close_period(db.session, self.app.config, key, revenue_minor=revenue, now=closed_at,
                     allow_early=early)  # fmt: skip
        db.session.commit()


@pytest.fixture
def activity(app: Any, catalogue: Catalogue) -> Activity:
    return Activity(app, catalogue)


def random_activity(activity: Activity, seed: int, *, sales: int = 12) -> None:
    """Sales (some name-your-price with extras, some track by track, some with fees) spread
    over September to November, a share of them refunded in part or in full, charged back,
    or charged back and won, October's ad period closed, and payouts, one returned."""
    rng = random.Random(seed)
    span = (DECEMBER_START - SEPTEMBER_START).total_seconds()

    def moment() -> datetime:
        return SEPTEMBER_START + timedelta(seconds=rng.randrange(int(span)))

    for _ in range(sales):
        paid_at = moment()
        extra, fee = rng.choice((0, 0, 1, 250, 4999)), rng.choice((0, 31, 59, 77))
        order = activity.sale(paid_at, extra=extra, tracks=rng.random() < 0.3, fee=fee)
        later = paid_at + timedelta(days=rng.randrange(0, 40), seconds=rng.randrange(86_400))
        fate = rng.random()
        if fate < 0.2:
            activity.refund(order, rng.randrange(1, order.total_minor + 1), later)
        elif fate < 0.3:
            activity.refund(order, order.total_minor, later)
        elif fate < 0.4:
            activity.chargeback(order, later)
        elif fate < 0.5:
            activity.chargeback(order, later, won_at=later + timedelta(days=rng.randrange(1, 20)))
    plays = {"Opening Song": rng.randrange(1, 500), "Demo": rng.randrange(0, 50)}
    activity.ad_period(OCTOBER, plays,
                       revenue=rng.randrange(1000, 100_000), closed_at=AFTER_OCTOBER)  # fmt: skip
    activity.payout(rng.randrange(1, 2000), OCTOBER_START + timedelta(days=rng.randrange(0, 30)))
    activity.payout(rng.randrange(1, 500), OCTOBER_START + timedelta(days=9),
                    reversed_at=OCTOBER_START + timedelta(days=rng.randrange(10, 30)))  # fmt: skip
