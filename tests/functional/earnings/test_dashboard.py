"""The artist's earnings dashboard: its numbers are the ledger's, its charts cover 90 days."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

from flask import Flask

from app.commerce.service import CartLine
from app.earnings import service
from app.extensions import db
from app.ledger import service as ledger
from app.ledger.models import LedgerTransaction
from app.ledger.money import Money
from app.pools import service as pools
from app.pools.periods import bounds, period_key
from app.timestamps import utcnow
from tests.factories import ArtistFactory, ReleaseFactory, TrackFactory, UserFactory
from tests.functional.earnings.conftest import NOW, Shop, days_ago, play
from tests.functional.pools.conftest import Listening

SVG = "{http://www.w3.org/2000/svg}"
JUNE_START = bounds("2026-06")[0]


def charts(page: str) -> list[ET.Element]:
    return [ET.fromstring(svg) for svg in re.findall(r"<svg.*?</svg>", page, re.S)]


def test_balances_and_this_months_sales_equal_the_ledger(
    app: Flask, session: Any, album: Any, shop: Any
) -> None:
    dawn = album.tracks[0]
    first = shop.sell(CartLine(album.id), at=days_ago(10), fee=50)  # June: 6.30 to the artist
    shop.sell(CartLine(album.id, track_id=dawn.id), at=days_ago(2))  # June: 0.90
    shop.sell(CartLine(album.id), at=JUNE_START - timedelta(seconds=1))  # May: 6.30
    shop.sell(CartLine(album.id), at=days_ago(120))  # February: 6.30
    shop.refund(first, 350, at=days_ago(1))  # half of the June album back: -3.15

    shown = service.dashboard(session, album.artist, now=NOW)

    assert shown.month == "2026-06"
    assert shown.balances == ledger.artist_balances(session, album.artist_id) == {"USD": 1665}
    at_month_start = ledger.artist_balances(
        session, album.artist_id, at=JUNE_START - timedelta(microseconds=1)
    )
    owed_now = ledger.artist_balances(session, album.artist_id, at=NOW)
    assert shown.month_sales == {"USD": owed_now["USD"] - at_month_start["USD"]} == {"USD": 405}
    assert shown.month_fees == {}  # the platform absorbs the processor's fee by default


def test_processor_fees_charged_to_the_artist_are_shown_apart(
    make_app: Any, album: Any
) -> None:
    fee_app = make_app(FEE_POLICY="deduct_before_split")
    with fee_app.app_context():
        Shop(fee_app).sell(CartLine(album.id), at=days_ago(3), fee=100)
        shown = service.dashboard(db.session, album.artist, now=NOW)
        assert shown.month_sales == {"USD": 630}
        assert shown.month_fees == {"USD": 90}
        assert shown.balances == ledger.artist_balances(db.session, album.artist_id)
        assert shown.balances == {"USD": 540}


def test_charts_cover_the_last_ninety_days_by_day(
    app: Flask, session: Any, album: Any, shop: Any
) -> None:
    dawn, dusk, _ = album.tracks
    play(dawn.id, days_ago(0, hour=1), 2)
    play(dusk.id, days_ago(0, hour=23), 1)
    play(dusk.id, days_ago(89, hour=0), 4)
    play(dusk.id, days_ago(90, hour=23), 7)  # one day too old
    shop.sell(CartLine(album.id), at=days_ago(5))

    shown = service.dashboard(session, album.artist, now=NOW)

    assert len(shown.days) == 90
    assert shown.days[0] == "2026-03-18" and shown.days[-1] == "2026-06-15"
    plays = dict(shown.plays_by_day)
    assert plays["2026-06-15"] == 3 and plays["2026-03-18"] == 4
    assert sum(plays.values()) == 7
    sales = dict(shown.sales_by_day["USD"])
    assert sales["2026-06-10"] == 630 and sum(sales.values()) == 630


def test_the_page_shows_the_ledger_numbers_and_ninety_day_charts(
    client: Any, session: Any, album: Any, shop: Any
) -> None:
    now = utcnow()
    this_month = max(now - timedelta(minutes=5), bounds(period_key(now))[0])
    shop.sell(CartLine(album.id), at=this_month)
    shop.sell(CartLine(album.id), at=bounds(period_key(now))[0] - timedelta(days=1))
    play(album.tracks[1].id, now - timedelta(minutes=1), 3)

    response = client.get("/studio/earnings")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    owed = ledger.artist_balances(session, album.artist_id)["USD"]
    assert owed == 1260
    assert f'<p class="stat-value balance">{Money(owed, "USD").format()}</p>' in page
    assert '<p class="stat-value month-sales">$6.30</p>' in page
    plays_chart, sales_chart = charts(page)
    today = now.date()
    for chart in (plays_chart, sales_chart):
        assert chart.get("role") == "img"
        keys = [bar.get("data-key") for bar in chart.iter(f"{SVG}rect")]
        assert keys == [str(today - timedelta(days=back)) for back in range(89, -1, -1)]
    assert [b.get("data-value") for b in plays_chart.iter(f"{SVG}rect")][-1] == "3"


def test_top_tracks_are_ordered_by_plays_and_by_revenue(
    app: Flask, session: Any, album: Any, shop: Any
) -> None:
    dawn, dusk, noon = album.tracks
    play(dawn.id, days_ago(1), 1)
    play(dusk.id, days_ago(2), 5)
    play(noon.id, days_ago(3), 3)
    for _ in range(3):
        shop.sell(CartLine(album.id, track_id=noon.id), at=days_ago(4))
    shop.sell(CartLine(album.id), at=days_ago(4))
    shop.sell(CartLine(album.id, track_id=dusk.id), at=days_ago(4))

    shown = service.dashboard(session, album.artist, now=NOW)

    assert [(row.title, row.plays) for row in shown.top_by_plays] == [
        ("Dusk", 5), ("Noon", 3), ("Dawn", 1),
    ]  # fmt: skip
    assert [(row.kind, row.sold, row.artist_share_minor) for row in shown.top_by_revenue] == [
        ("release", 1, 630), ("track", 3, 270), ("track", 1, 90),
    ]  # fmt: skip
    assert shown.top_by_revenue[1].title.endswith("Noon")
    assert [item.order.paid_at for item in shown.recent_sales] == sorted(
        (item.order.paid_at for item in shown.recent_sales), reverse=True
    )
    assert len(shown.recent_sales) == 5


def test_the_ad_share_is_the_last_closed_periods_as_posted(
    app: Flask, session: Any, album: Any
) -> None:
    listening = Listening(app)
    stranger = TrackFactory(release=ReleaseFactory())
    listening.plays("U1", album.tracks[0], 3, key="2026-05", at=days_ago(30))
    listening.plays("U2", stranger, 1, key="2026-05", at=days_ago(30))
    pools.close_period(session, app.config, "2026-05", revenue_minor=1000, now=NOW)
    session.commit()

    share = service.dashboard(session, album.artist, now=NOW).last_ad_share

    assert share is not None and share.period_key == "2026-05" and share.plays == 3
    pool_transaction = session.get(
        LedgerTransaction, pools.find_period(session, "2026-05").ledger_transaction_id
    )
    payable = ledger.artist_payable(session, album.artist_id, "USD")
    posted = sum(e.amount for e in pool_transaction.entries if e.account_id == payable.id)
    assert share.amount_minor == -posted == 675  # 3/4 of the 9.00 pool


def test_another_artists_dashboard_is_not_found(client: Any, owner: Any, album: Any) -> None:
    someone_else = ArtistFactory(owner=UserFactory(), slug="someone-else")
    assert client.get(f"/studio/earnings?artist={someone_else.slug}").status_code == 404
    assert client.get("/studio/earnings?artist=no-such-artist").status_code == 404
    page = client.get("/studio/earnings?artist=night-owls").get_data(as_text=True)
    assert "Night Owls" in page and "someone-else" not in page


def test_anonymous_visitors_are_sent_to_sign_in(client: Any) -> None:
    response = client.get("/studio/earnings")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_a_user_without_an_artist_profile_is_offered_one(client: Any, owner: Any) -> None:
    response = client.get("/studio/earnings")
    assert response.status_code == 200
    assert "/studio/artists/new" in response.get_data(as_text=True)


def test_an_owner_of_two_profiles_switches_between_them(
    client: Any, owner: Any, artist: Any
) -> None:
    second = ArtistFactory(owner=owner, name="Day Larks", slug="day-larks")
    first_page = client.get("/studio/earnings").get_data(as_text=True)
    assert "<h1>Night Owls</h1>" in first_page and "?artist=day-larks" in first_page
    second_page = client.get(f"/studio/earnings?artist={second.slug}").get_data(as_text=True)
    assert "<h1>Day Larks</h1>" in second_page


def test_an_administrator_may_open_any_artists_dashboard(client: Any, auth: Any) -> None:
    artist = ArtistFactory(owner=UserFactory(), name="Night Shift", slug="night-shift")
    auth.login(UserFactory(is_admin=True).email)
    page = client.get(f"/studio/earnings?artist={artist.slug}")
    assert page.status_code == 200 and "Night Shift" in page.get_data(as_text=True)
    assert client.get("/studio/earnings?artist=no-such-artist").status_code == 404
