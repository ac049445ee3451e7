"""The demo seed: generated art, and a history of sales, plays and a closed month that the
ledger, the library, the pools and the statements all agree on."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from io import BytesIO
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.ads.models import Impression
from app.catalog import demo, demo_art
from app.catalog.images import AVATAR_SIZES
from app.catalog.models import Artist, ArtistAvatar, PricingMode, Release
from app.commerce.models import Order, OrderItem, OrderStatus
from app.commerce.posting import SALE
from app.ingest.models import ReleaseCover
from app.ingest.service import COVER_SIZES
from app.ledger.models import LedgerEntry, LedgerTransaction
from app.ledger.money import Money
from app.ledger.verify import verify
from app.library.service import library_entries
from app.plays.models import Play, TrackPlayDay
from app.pools.models import Period, PeriodAllocation, PeriodListener, PeriodStatus
from app.pools.periods import bounds, period_key
from app.statements.content import AD_SHARE
from app.statements.service import statement
from app.timestamps import utcnow

# Short tracks keep the audio fast; the history does not depend on their length.
TRACK_SECONDS = 2


def history_end() -> datetime:
    """Mid-month of the month before this one, so every demo time is in the past and both
    demo months (the closed one and the one under way) are whole periods."""
    last_month_start = bounds(period_key(utcnow()))[0] - timedelta(days=1)
    return bounds(period_key(last_month_start))[0] + timedelta(days=15, hours=12)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    image.load()
    return image


def counts(session: Any) -> dict[str, int]:
    tables = {"orders": Order, "plays": Play, "transactions": LedgerTransaction,
              "covers": ReleaseCover, "avatars": ArtistAvatar, "releases": Release}  # fmt: skip
    return {name: session.scalar(select(func.count()).select_from(model)) for name, model in tables.items()}


def test_art_is_a_stable_picture_of_each_seed() -> None:
    first = demo_art.cover_art("Northern Static", size=240)
    assert first == demo_art.cover_art("Northern Static", size=240)
    assert first != demo_art.cover_art("Tidal Memory", size=240)
    for composition in demo_art.COMPOSITIONS:
        image = decoded(demo_art.cover_art("x", composition=composition, size=240))
        assert image.format == "JPEG" and image.size == (240, 240)
        # Drawn, not a flat placeholder: many distinct colours.
        assert len(image.convert("RGB").getcolors(maxcolors=240 * 240) or []) > 500
    avatar = decoded(demo_art.avatar_art("Aurora Lines", size=120))
    assert avatar.size == (120, 120) and avatar.format == "JPEG"
    with pytest.raises(ValueError):
        demo_art.cover_art("x", composition="plaid")


def test_without_audio_the_catalogue_has_covers_and_avatars_and_no_history(
    app: Any, client: Any, session: Any
) -> None:
    lines: list[str] = []
    assert demo.seed_demo_catalogue(session, app.config, audio=False, report=lines.append)
    releases = session.scalars(select(Release).order_by(Release.id)).all()
    assert [r.title for r in releases] == ["Northern Static", "Tidal Memory", "Kitchen Sessions", "Free Tea"]
    for release in releases:
        sizes = session.scalars(select(ReleaseCover.size).where(ReleaseCover.release_id == release.id))
        assert sorted(sizes) == sorted(COVER_SIZES)
        served = client.get(release.cover_url)
        assert served.status_code == 200 and decoded(served.data).size == (600, 600)
        biggest = client.get(f"/releases/{release.id}/cover/{max(COVER_SIZES)}.jpg")
        assert decoded(biggest.data).size == (max(COVER_SIZES),) * 2
    for artist in session.scalars(select(Artist)):
        sizes = session.scalars(select(ArtistAvatar.size).where(ArtistAvatar.artist_id == artist.id))
        assert sorted(sizes) == sorted(AVATAR_SIZES)
        assert decoded(client.get(artist.avatar_url).data).format == "JPEG"
    assert session.scalar(select(func.count()).select_from(Order)) == 0
    assert any("no sales, no plays" in line for line in lines)

    before = counts(session)
    assert demo.seed_demo_catalogue(session, app.config, audio=False) is False
    assert counts(session) == before


def test_the_demo_history_balances_fills_the_library_and_closes_last_month(
    app: Any, client: Any, auth: Any, session: Any
) -> None:
    end = history_end()
    closed_key = period_key(bounds(period_key(end))[0] - timedelta(days=1))
    lines: list[str] = []
    assert demo.seed_demo_catalogue(
        session, app.config, report=lines.append, track_seconds=TRACK_SECONDS, now=end
    )
    assert any(line.startswith(f"Closed {closed_key}") for line in lines)

    # Every order was paid, by the sandbox or as a free acquisition, before the history's end.
    orders = session.scalars(select(Order)).all()
    assert len(orders) == len(demo.DEMO_SALES)
    assert {order.status for order in orders} == {OrderStatus.PAID}
    assert {order.gateway for order in orders} == {"sandbox", "free"}
    assert all(order.created_at < order.paid_at < end for order in orders)
    name_your_price = session.scalars(
        select(OrderItem).join(Release).where(Release.pricing_mode == PricingMode.NAME_YOUR_PRICE)
    ).all()
    assert any(item.amount_minor > item.list_price_minor > item.minimum_minor for item in name_your_price)

    # The ledger: every transaction sums to zero in each currency, and every check passes.
    sums: dict[tuple[int, str], int] = defaultdict(int)
    for entry in session.scalars(select(LedgerEntry)):
        sums[(entry.transaction_id, entry.currency)] += entry.amount
    assert sums and set(sums.values()) == {0}
    assert verify(session) == []
    sales = session.scalar(select(func.count()).where(LedgerTransaction.kind == SALE))
    assert sales == sum(1 for order in orders if order.gateway == "sandbox")

    # The listener's library holds what they bought and acquired.
    listener = next(o.buyer for o in orders if o.buyer.email == demo.DEMO_LOGINS["listener"][0])
    owned = {entry.track.title if entry.track else entry.release.title
             for entry in library_entries(session, listener, limit=50)}  # fmt: skip
    assert owned == {"Northern Static", "Tidal Memory", "Steam", "Pour", "Free Tea"}

    # Plays were counted in both months, each with its impression, and the counters agree.
    played = session.scalars(select(Play).where(Play.counted_at.is_not(None))).all()
    assert {period_key(play.counted_at) for play in played} == {closed_key, period_key(end)}
    assert session.scalar(select(func.count()).select_from(Impression)) == len(played)
    assert session.scalar(select(func.sum(TrackPlayDay.plays))) == len(played)
    assert len({play.listener_id for play in played}) == 6

    # Last month is closed with the revenue the admin entered, split in full.
    period = session.scalars(select(Period).where(Period.key == closed_key)).one()
    assert period.status is PeriodStatus.CLOSED and period.closed_revenue_minor == demo.DEMO_AD_REVENUE_MINOR
    allocated = session.scalar(
        select(func.sum(PeriodAllocation.amount_minor)).where(PeriodAllocation.period_id == period.id)
    )
    assert allocated == period.pool_minor > 0
    assert period.pool_minor + period.platform_minor == demo.DEMO_AD_REVENUE_MINOR
    earning = [p for p in played if p.earns and p.period_id == period.id]
    assert period.earning_plays == len(earning) > 0
    counters = session.scalar(
        select(func.sum(PeriodListener.earning_plays)).where(PeriodListener.period_id == period.id)
    )
    assert counters == len(earning)

    # The artist's statement of that month has sales and an ad share, and renders.
    artist = session.scalars(select(Artist).where(Artist.slug == "aurora-lines")).one()
    content = statement(session, artist, closed_key, "USD").content
    kinds = {line.kind for line in content.lines}
    assert content.opening_minor == 0 and content.closing_minor > 0
    assert {SALE, AD_SHARE} <= kinds, kinds
    session.commit()  # the statement was frozen on first reading
    auth.login(*demo.DEMO_LOGINS["artist"])
    page = client.get(f"/studio/statements/aurora-lines/{closed_key}/USD")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Final" in text
    assert Money(content.closing_minor, "USD").format() in text
    dashboard = client.get("/studio/earnings").get_data(as_text=True)
    assert f"Ads in {closed_key}" in dashboard

    # Seeding again changes nothing.
    before = counts(session)
    assert demo.seed_demo_catalogue(session, app.config, track_seconds=TRACK_SECONDS, now=end) is False
    assert counts(session) == before
