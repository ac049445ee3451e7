"""Benchmark: an artist's statement of a closed period, and their earnings dashboard.

    MEGABOX_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/megabox_bench_statements \\
        .venv/bin/python bench/statements.py [--sales 100000] [--repeat 5] [--rebuild]
        [--plays 10000000] [--listeners 1000000] [--tracks 50000]

A smoke run: ``--plays 200000 --listeners 20000 --tracks 5000 --sales 5000 --repeat 3``.

The database: ``MEGABOX_DATABASE_URL`` must name a PostgreSQL database that is a benchmark's
alone, as for ``bench/pools.py``, whose loader and marker this reuses (``prepare_database``):
the catalogue, listeners and ``--plays`` counted plays in period ``2026-06``, with the
listeners' period counters and each track's plays per day. Once per load, and remembered in
the same marker table (``statements:*`` rows), this adds in one transaction:

- period ``2026-06`` closed for real (``app.pools.service.close_period``, committed), which
  posts the ad share of every artist;
- ``--sales`` paid orders of one artist (the artist of the period's most played track; their
  second release made name-your-price, minimum 7.00), paid at random times in the period, on
  the sandbox gateway, each with a processor fee of 2.9% plus 0.30. Carts: one of the artist's
  tracks (45%), their fixed-price release (25%), the name-your-price one with an extra or none
  (20%), or their release with another artist's track (10%). 3% are refunded in full and 1%
  in half a few days later, within the period. The orders, items, and their ledger
  transactions and entries (sale, fee, refund) are written with bulk INSERTs, each row as
  ``app.commerce.posting`` and ``app.ledger.service.reverse`` post it: the same keys, kinds,
  descriptions, accounts, split (``ARTIST_SHARE_BPS``, largest remainder) and
  ``FEE_POLICY``;
- then ``VACUUM ANALYZE``.

A different ``--sales`` needs ``--rebuild`` (the ledger is append-only: sales are never
deleted). Each run also gives the artist's tracks counted plays on each of the last
``CHART_DAYS`` days (``track_play_days``; the loaded plays are months old), so the dashboard's
chart has data, and deletes any statement a run stored.

Figures, as ``name = value`` lines, medians of ``--repeat`` runs after one warm-up run:

- ``statement_html_seconds``, ``statement_csv_seconds``, ``statement_pdf_seconds``: the
  statement of the closed period made from the ledger as ``megabox statement`` makes it
  (``get_artist``, ``choose_currency``, ``service.statement``, which builds and freezes it,
  and ``render``), in a transaction rolled back after each run so each one builds and
  freezes afresh. ``statement_<format>_frozen_seconds``: in the same transaction, the same
  again once frozen (read back and rendered; its bytes are checked to be the same).
- ``dashboard_ms``: ``GET /studio/earnings?artist=<slug>`` through the WSGI app (Flask's
  test client, signed in as the artist's owner), the time to the whole body;
  ``dashboard_service_ms``: ``app.earnings.service.dashboard`` alone.
- Goals: a statement in under ``STATEMENT_GOAL_SECONDS`` (each format), the dashboard in
  under ``DASHBOARD_GOAL_MS``; ``goal_* = pass|fail``.

Not a test: it does not run in CI.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import pools  # noqa: E402
from bench.common import postgres_url  # noqa: E402

FORMATS = ("html", "csv", "pdf")
PERIOD = pools.BENCH_PERIOD
CURRENCY = pools.CURRENCY
GATEWAY = "sandbox"
DEFAULT_SALES = 100_000
DEFAULT_REPEAT = 5
SALES_SEED = 11
MARKER_PREFIX = "statements:"
STATEMENT_GOAL_SECONDS = 2.0
DASHBOARD_GOAL_MS = 300.0
# What the sales pay the processor: 2.9% plus 30 cents, capped at the total.
FEE_BPS = 290
FEE_FIXED_MINOR = 30
# The artist's second release becomes name-your-price: at least 7.00, 10.00 suggested.
NYP_MINIMUM_MINOR = 700
NYP_SUGGESTED_MINOR = 1000
NYP_EXTRAS = (0, 0, 0, 100, 300, 500, 1300, 3000)
# Cart shapes, by cumulative share: a track, the fixed release, the NYP release, a pair.
CART_TRACK, CART_RELEASE, CART_NYP = 0.45, 0.70, 0.90
FULL_REFUNDS, HALF_REFUNDS = 0.03, 0.01
REFUND_AFTER = timedelta(days=5)
RECENT_PLAYS_PER_DAY = 40  # per track, give or take: the chart's recent days
INSERT_BATCH = 20_000


def fail(message: str) -> None:
    sys.exit(f"bench/statements.py: {message}")


def report(figures: dict[str, Any]) -> None:
    pools.report(figures)


# The sales --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    release_id: int
    track_id: int | None
    artist_id: int
    title: str
    list_price: int
    minimum: int
    amount: int


@dataclass(frozen=True)
class Offers:
    """What the artist's buyers pick from, and another artist's track for mixed carts."""

    artist_id: int
    artist_name: str
    fixed: tuple[int, str, int]  # release id, title, price
    nyp: tuple[int, str]  # release id, title
    tracks: list[tuple[int, int, str, int]]  # release id, track id, title, price
    other: Item


@dataclass(frozen=True)
class Accounts:
    clearing: int
    commission: int
    contributions: int
    fees: int
    payables: dict[int, int]  # artist id -> payable account id


@dataclass
class Rows:
    """The bulk INSERTs' rows, with ids given here so the keys can name them."""

    next_ids: dict[str, int]
    orders: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def new_id(self, table: str) -> int:
        self.next_ids[table] += 1
        return self.next_ids[table]

    def post(
        self, key: str, kind: str, lines: list[tuple[int, int]], description: str,
        at: datetime, details: dict[str, Any], reverses: int | None = None,
    ) -> int:  # fmt: skip
        """One ledger transaction of ``lines`` (account id, amount), as ``ledger.post``."""
        if sum(amount for _, amount in lines) != 0:
            raise AssertionError(f"{key} does not balance")
        transaction_id = self.new_id("ledger_transactions")
        self.transactions.append(
            {"id": transaction_id, "idempotency_key": key, "kind": kind,
             "description": description, "reverses_id": reverses, "created_at": at,
             "effective_at": at, "metadata": details}  # fmt: skip
        )
        for account_id, amount in lines:
            self.entries.append(
                {"id": self.new_id("ledger_entries"), "transaction_id": transaction_id,
                 "account_id": account_id, "amount": amount, "currency": CURRENCY}  # fmt: skip
            )
        return transaction_id


def processor_fee(total: int) -> int:
    return min(total, (total * FEE_BPS + 5_000) // 10_000 + FEE_FIXED_MINOR)


def cart(rng: random.Random, offers: Offers) -> list[Item]:
    """One of the cart shapes (module docstring)."""
    fixed_id, fixed_title, fixed_price = offers.fixed
    fixed = Item(fixed_id, None, offers.artist_id, fixed_title, fixed_price, fixed_price,
                 fixed_price)  # fmt: skip
    pick = rng.random()
    if pick < CART_TRACK:
        release_id, track_id, title, price = rng.choice(offers.tracks)
        return [Item(release_id, track_id, offers.artist_id, title, price, price, price)]
    if pick < CART_RELEASE:
        return [fixed]
    if pick < CART_NYP:
        nyp_id, nyp_title = offers.nyp
        amount = NYP_MINIMUM_MINOR + rng.choice(NYP_EXTRAS)
        return [Item(nyp_id, None, offers.artist_id, nyp_title, NYP_SUGGESTED_MINOR,
                     NYP_MINIMUM_MINOR, amount)]  # fmt: skip
    return [fixed, offers.other]


def sale_rows(
    rows: Rows, order_id: int, public_id: str, items: list[Item], fee: int, paid_at: datetime,
    accounts: Accounts, config: Any,
) -> tuple[int, list[tuple[int, int]]]:  # fmt: skip
    """The order's items and its sale and fee transactions, as ``record_payment`` posts them
    (``posting.sale_entries`` and ``posting.fee_entries``); returns the sale's id and lines."""
    from app.commerce import posting
    from app.ledger.allocation import allocate, split_bps

    bps = int(config["ARTIST_SHARE_BPS"])
    fees = allocate(fee, [item.amount for item in items]) if fee else [0] * len(items)
    credits: defaultdict[tuple[str, int], int] = defaultdict(int)
    fee_debits: defaultdict[tuple[str, int], int] = defaultdict(int)
    for item, item_fee in zip(items, fees, strict=True):
        artist, platform = split_bps(item.amount, bps)
        extra = item.amount - item.minimum
        rows.items.append(
            {"id": rows.new_id("order_items"), "order_id": order_id, "artist_id": item.artist_id,
             "release_id": item.release_id, "track_id": item.track_id,
             "kind": "track" if item.track_id else "release", "title": item.title,
             "list_price_minor": item.list_price, "minimum_minor": item.minimum,
             "amount_minor": item.amount, "extra_minor": extra, "artist_share_minor": artist,
             "platform_share_minor": platform, "fee_minor": item_fee}  # fmt: skip
        )
        credits[("artist", item.artist_id)] += artist
        # posting._platform_parts: the platform's part split by minimum and extra.
        base, contribution = (
            (platform, 0) if platform == 0 or extra == 0
            else allocate(platform, [item.amount - extra, extra])
        )  # fmt: skip
        credits[(posting.PLATFORM_COMMISSION, 0)] += base
        credits[(posting.CONTRIBUTIONS, 0)] += contribution
        fee_artist, fee_platform = split_bps(item_fee, bps)
        fee_debits[("artist", item.artist_id)] += fee_artist
        fee_debits[(posting.PLATFORM_COMMISSION, 0)] += fee_platform
    total = sum(item.amount for item in items)
    details = {"order_id": order_id, "order": public_id}

    def account(purpose: str, artist_id: int) -> int:
        if purpose == "artist":
            return accounts.payables[artist_id]
        return {posting.PLATFORM_COMMISSION: accounts.commission,
                posting.CONTRIBUTIONS: accounts.contributions}[purpose]  # fmt: skip

    sale_lines = [(accounts.clearing, total)] + [
        (account(purpose, artist_id), -amount)
        for (purpose, artist_id), amount in sorted(credits.items())
        if amount
    ]
    sale_id = rows.post(f"order:{order_id}:sale", posting.SALE, sale_lines,
                        f"Order {public_id}", paid_at, {**details, "gateway": GATEWAY})  # fmt: skip
    if fee:
        policy = config["FEE_POLICY"]
        if policy == posting.DEDUCT_BEFORE_SPLIT:
            fee_lines = [
                (account(purpose, artist_id), amount)
                for (purpose, artist_id), amount in sorted(fee_debits.items())
                if amount
            ]
        else:
            fee_lines = [(accounts.fees, fee)]
        rows.post(f"order:{order_id}:fee", posting.PROCESSING_FEE,
                  [*fee_lines, (accounts.clearing, -fee)], f"Processing fee, order {public_id}",
                  paid_at, {**details, "policy": policy})  # fmt: skip
    return sale_id, sale_lines


def refund_rows(
    rows: Rows, order_id: int, public_id: str, sale: tuple[int, list[tuple[int, int]]],
    refunded: int, at: datetime,
) -> None:  # fmt: skip
    """The first refund of ``refunded`` as ``ledger.reverse`` posts it: the clearing debit
    reversed, and the credits in proportion, in the order the sale named them."""
    from app.commerce import posting
    from app.ledger.allocation import allocate

    sale_id, sale_lines = sale
    lines: list[tuple[int, int]] = []
    for side in (1, -1):
        named = [(account_id, amount) for account_id, amount in sale_lines if amount * side > 0]
        parts = allocate(refunded, [amount * side for _, amount in named])
        lines += [(account_id, -side * part) for (account_id, _), part in zip(named, parts) if part]
    rows.post(f"order:{order_id}:refund:{refunded}", posting.REFUND, lines,
              f"Refund, order {public_id}", at, {}, reverses=sale_id)  # fmt: skip


def make_sales(
    conn: Any, offers: Offers, accounts: Accounts, buyers: list[tuple[int, str]], count: int,
    config: Any,
) -> dict[str, int]:  # fmt: skip
    """Insert ``count`` paid orders of the period (module docstring); returns the counts."""
    from sqlalchemy import text

    from app.commerce.models import Order, OrderItem
    from app.ledger.models import LedgerEntry, LedgerTransaction
    from app.pools.periods import bounds

    tables = {"orders": Order.__table__, "order_items": OrderItem.__table__,
              "ledger_transactions": LedgerTransaction.__table__,
              "ledger_entries": LedgerEntry.__table__}  # fmt: skip
    rows = Rows({name: int(conn.scalar(text(f"SELECT coalesce(max(id), 0) FROM {name}")))
                 for name in tables})  # fmt: skip
    rng = random.Random(SALES_SEED)
    starts, ends = bounds(PERIOD)
    span = (ends - starts).total_seconds()
    times = sorted(starts + timedelta(seconds=rng.random() * span) for _ in range(count))
    refunds = 0
    # Written in chunks: the rows of one chunk are made, inserted and dropped.
    for start in range(0, count, INSERT_BATCH):
        chunk = Rows(dict(rows.next_ids))
        for paid_at in times[start : start + INSERT_BATCH]:
            order_id = chunk.new_id("orders")
            public_id = base64.urlsafe_b64encode(rng.randbytes(12)).decode("ascii")
            items = cart(rng, offers)
            total = sum(item.amount for item in items)
            fee = processor_fee(total)
            sale = sale_rows(chunk, order_id, public_id, items, fee, paid_at, accounts, config)
            luck = rng.random()
            refunded = 0
            if luck < FULL_REFUNDS:
                refunded = total
            elif luck < FULL_REFUNDS + HALF_REFUNDS:
                refunded = total // 2
            status = "paid"
            if refunded:
                last = ends - timedelta(seconds=1)
                refunded_at = min(paid_at + rng.random() * REFUND_AFTER, last)
                refund_rows(chunk, order_id, public_id, sale, refunded, refunded_at)
                status = "refunded" if refunded == total else "partially_refunded"
                refunds += 1
            buyer_id, email = buyers[order_id % len(buyers)]
            chunk.orders.append(
                {"id": order_id, "public_id": public_id, "buyer_id": buyer_id, "email": email,
                 "currency": CURRENCY, "total_minor": total, "fee_minor": fee,
                 "refunded_minor": refunded, "status": status, "gateway": GATEWAY,
                 "checkout_session_id": f"bench_cs_{order_id}", "failure_reason": "",
                 "created_at": paid_at - timedelta(minutes=2), "paid_at": paid_at,
                 "updated_at": paid_at}  # fmt: skip
            )
        for name, made in (("orders", chunk.orders), ("order_items", chunk.items),
                           ("ledger_transactions", chunk.transactions),
                           ("ledger_entries", chunk.entries)):  # fmt: skip
            conn.execute(tables[name].insert(), made)
        rows.next_ids = chunk.next_ids
        pools.progress(f"{min(start + INSERT_BATCH, count)} sales written")
    for name in tables:
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), :top)"),
                     {"top": rows.next_ids[name]})  # fmt: skip
    return {"sales": count, "refunds": refunds}


# Preparing the data -----------------------------------------------------------------------


def prepare(app: Any, sales: int, marker: dict[str, str]) -> dict[str, str]:
    """Close the period and add the artist's sales, once per load (module docstring)."""
    from sqlalchemy import select, text

    from app.catalog.models import Artist
    from app.extensions import db
    from app.pools import service as pools_service
    from app.pools.models import PeriodAllocation

    done = marker.get(f"{MARKER_PREFIX}sales")
    if done is not None:
        if done != str(sales):
            fail(f"the database holds {done} sales, not {sales}: add --rebuild to load afresh")
        return marker
    started = time.perf_counter()
    session = db.session
    period = pools_service.close_period(session, app.config, PERIOD)
    session.commit()
    pools.progress(f"period {PERIOD} closed: {time.perf_counter() - started:.0f} s")
    artist_id = session.scalar(
        select(PeriodAllocation.artist_id)
        .where(PeriodAllocation.period_id == period.id, PeriodAllocation.artist_id.is_not(None))
        .order_by(PeriodAllocation.plays.desc(), PeriodAllocation.track_id)
        .limit(1)
    )
    if artist_id is None:
        fail(f"period {PERIOD} has no plays to pick an artist by")
    artist = session.get_one(Artist, artist_id)
    offers = make_offers(session, artist)
    accounts = make_accounts(session, [artist.id, offers.other.artist_id])
    # Other artists' accounts buy: nobody buys their own music (``create_order`` refuses it).
    buyers = [
        (user_id, email)
        for user_id, email in session.execute(
            text("SELECT id, email FROM users WHERE id NOT IN "
                 "(SELECT owner_id FROM artists WHERE id IN (:artist, :other)) "
                 "ORDER BY id LIMIT 1000"),
            {"artist": artist.id, "other": offers.other.artist_id},
        )
    ]  # fmt: skip
    slug = artist.slug
    session.commit()
    session.close()
    with db.engine.begin() as conn:
        counts = make_sales(conn, offers, accounts, buyers, sales, app.config)
        values = {
            "sales": str(sales), "refunds": str(counts["refunds"]), "artist": slug,
            "seconds": f"{time.perf_counter() - started:.1f}",
            "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }  # fmt: skip
        # In the sales' transaction: the marker says they are there exactly when they are.
        for name, value in values.items():
            conn.execute(
                text(f"INSERT INTO {pools.MARKER_TABLE} (name, value) VALUES (:name, :value) "
                     "ON CONFLICT (name) DO UPDATE SET value = excluded.value"),
                {"name": MARKER_PREFIX + name, "value": value},
            )  # fmt: skip
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("orders", "order_items", "ledger_transactions", "ledger_entries",
                      "ledger_accounts", "releases", "periods", "period_allocations"):  # fmt: skip
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    pools.progress(f"sales written and vacuumed: {time.perf_counter() - started:.0f} s")
    return pools.read_marker() or {}


def make_offers(session: Any, artist: Any) -> Offers:
    """The artist's releases and tracks, the second release made name-your-price, and a
    track of the next artist's."""
    from sqlalchemy import select

    from app.catalog.models import Artist, PricingMode, Release, Track

    releases = session.scalars(
        select(Release).where(Release.artist_id == artist.id).order_by(Release.id)
    ).all()
    if len(releases) < 2:
        fail(f"artist {artist.slug} has {len(releases)} releases, not two")
    fixed, nyp = releases[0], releases[1]
    nyp.pricing_mode = PricingMode.NAME_YOUR_PRICE
    nyp.price_minor = NYP_SUGGESTED_MINOR
    nyp.minimum_price_minor = NYP_MINIMUM_MINOR
    tracks = session.execute(
        select(Track.release_id, Track.id, Track.title, Track.price_minor)
        .where(Track.release_id.in_([fixed.id, nyp.id]))
        .order_by(Track.id)
    ).all()
    other = session.scalar(
        select(Artist).where(Artist.id != artist.id).order_by(Artist.id).limit(1)
    )
    other_track = session.scalar(
        select(Track).join(Release).where(Release.artist_id == other.id).order_by(Track.id)
    )
    # Titles as ``app.commerce.service.Offer.title`` makes them.
    return Offers(
        artist_id=artist.id,
        artist_name=artist.name,
        fixed=(fixed.id, f"{artist.name} – {fixed.title}", fixed.price_minor),
        nyp=(nyp.id, f"{artist.name} – {nyp.title}"),
        tracks=[(release_id, track_id, f"{artist.name} – {title}", price)
                for release_id, track_id, title, price in tracks],  # fmt: skip
        other=Item(other_track.release_id, other_track.id, other.id,
                   f"{other.name} – {other_track.title}", other_track.price_minor,
                   other_track.price_minor, other_track.price_minor),  # fmt: skip
    )


def make_accounts(session: Any, artist_ids: list[int]) -> Accounts:
    """The accounts the sales post to, made through the services (as the first sale would)."""
    from app.commerce import posting
    from app.ledger import service as ledger
    from app.ledger.models import CONTRIBUTIONS, PLATFORM_COMMISSION, PROCESSING_FEES

    return Accounts(
        clearing=posting.clearing_account(session, GATEWAY, CURRENCY).id,
        commission=posting.platform_account(session, PLATFORM_COMMISSION, CURRENCY).id,
        contributions=posting.platform_account(session, CONTRIBUTIONS, CURRENCY).id,
        fees=posting.platform_account(session, PROCESSING_FEES, CURRENCY).id,
        payables={
            artist_id: ledger.artist_payable(session, artist_id, CURRENCY).id
            for artist_id in artist_ids
        },
    )


RECENT_PLAY_DAYS_SQL = """
INSERT INTO track_play_days (track_id, day, plays)
SELECT t.id, CAST(:today AS date) - d, :per_day / 2 + (t.id * 7919 + d * 104729) % :per_day
FROM tracks AS t
JOIN releases AS r ON r.id = t.release_id
CROSS JOIN generate_series(0, :days - 1) AS d
WHERE r.artist_id = :artist_id
ON CONFLICT (track_id, day) DO NOTHING
"""


def prepare_run(app: Any, slug: str) -> None:
    """Recent plays for the dashboard's chart, and no statement stored by an earlier run."""
    from sqlalchemy import delete, select, text

    from app.catalog.service import get_artist
    from app.earnings.service import CHART_DAYS
    from app.extensions import db
    from app.statements.models import Statement
    from app.timestamps import utcnow

    session = db.session
    artist = get_artist(session, slug)
    session.execute(
        text(RECENT_PLAY_DAYS_SQL),
        {"today": utcnow().date(), "per_day": RECENT_PLAYS_PER_DAY, "days": CHART_DAYS,
         "artist_id": artist.id},
    )  # fmt: skip
    session.execute(delete(Statement).where(Statement.artist_id == artist.id))
    session.commit()
    assert session.scalar(select(Statement.id).where(Statement.artist_id == artist.id)) is None


def data_figures(marker: dict[str, str]) -> dict[str, Any]:
    from sqlalchemy import text

    from app.extensions import db

    slug = marker[f"{MARKER_PREFIX}artist"]
    with db.engine.connect() as conn:
        artist_id = conn.scalar(text("SELECT id FROM artists WHERE slug = :s"), {"s": slug})
        entries = conn.scalar(
            text("SELECT count(*) FROM ledger_entries AS e JOIN ledger_accounts AS a "
                 "ON a.id = e.account_id WHERE a.artist_id = :a"),
            {"a": artist_id},
        )  # fmt: skip
        journal = conn.scalar(text("SELECT count(*) FROM ledger_entries"))
    return {
        "data_plays": int(marker["plays"]),
        "data_tracks": int(marker["tracks"]),
        "data_period": PERIOD,
        "data_artist": slug,
        "data_sales": int(marker[f"{MARKER_PREFIX}sales"]),
        "data_refunds": int(marker[f"{MARKER_PREFIX}refunds"]),
        "data_artist_payable_entries": int(entries),
        "data_ledger_entries": int(journal),
        "data_sales_seconds": float(marker[f"{MARKER_PREFIX}seconds"]),
    }


# Timing -----------------------------------------------------------------------------------


def make_statement(slug: str, fmt: str) -> tuple[bytes, bool]:
    """What ``megabox statement SLUG PERIOD --format FMT`` does, short of the commit and the
    file: the body, and whether the statement is final."""
    from app.catalog.service import get_artist
    from app.extensions import db
    from app.statements import service
    from app.statements.render import render

    session = db.session
    artist = get_artist(session, slug)
    currency = service.choose_currency(list(service.currencies(session, artist.id)), None)
    view = service.statement(session, artist, PERIOD, currency)
    return render(view, fmt), not view.provisional


def time_statements(slug: str, repeat: int) -> dict[str, Any]:
    """Per format: built and frozen, then read back frozen, each run rolled back."""
    from app.extensions import db

    figures: dict[str, Any] = {}
    for fmt in FORMATS:
        built: list[float] = []
        frozen: list[float] = []
        size = 0
        for run in range(repeat + 1):
            started = time.perf_counter()
            body, final = make_statement(slug, fmt)
            middle = time.perf_counter()
            again, _ = make_statement(slug, fmt)
            ended = time.perf_counter()
            db.session.rollback()
            if not final or again != body:
                fail(f"the {fmt} statement of {PERIOD} is not final, or not the same read back")
            size = len(body)
            if run:  # the first run warms up
                built.append(middle - started)
                frozen.append(ended - middle)
        figures |= {
            f"statement_{fmt}_bytes": size,
            f"statement_{fmt}_seconds": statistics.median(built),
            f"statement_{fmt}_frozen_seconds": statistics.median(frozen),
        }
        report({name: value for name, value in figures.items() if fmt in name})
    return figures


def time_dashboard_service(slug: str, repeat: int) -> float:
    from app.catalog.service import get_artist
    from app.earnings.service import dashboard
    from app.extensions import db

    session = db.session
    return pools.median_seconds(lambda: dashboard(session, get_artist(session, slug)), repeat)


def time_dashboard(app: Any, slug: str, repeat: int) -> float:
    """``GET /studio/earnings`` through the app, signed in as the artist's owner."""
    from sqlalchemy import select

    from app.accounts.models import User
    from app.catalog.models import Artist
    from app.extensions import db

    with app.app_context():
        owner = db.session.scalar(select(User).join(Artist, Artist.owner_id == User.id)
                                  .where(Artist.slug == slug))  # fmt: skip
        session_id, name = owner.get_id(), db.session.scalar(
            select(Artist.name).where(Artist.slug == slug)
        )
        db.session.remove()
    client = app.test_client()
    # Flask-Login's own session keys: what signing in through /login leaves in the cookie.
    with client.session_transaction() as cookie:
        cookie["_user_id"] = session_id
        cookie["_fresh"] = True
    url = f"/studio/earnings?artist={slug}"
    times = []
    for run in range(repeat + 1):
        started = time.perf_counter()
        response = client.get(url)
        body = response.get_data(as_text=True)
        elapsed = time.perf_counter() - started
        if response.status_code != 200 or name not in body:
            fail(f"the dashboard answered {response.status_code}: {body[:300]}")
        if run:
            times.append(elapsed)
    return statistics.median(times)


def goals(figures: dict[str, Any]) -> dict[str, str]:
    verdicts = {
        f"goal_statement_{fmt}": figures[f"statement_{fmt}_seconds"] < STATEMENT_GOAL_SECONDS
        for fmt in FORMATS
    }
    verdicts["goal_dashboard"] = figures["dashboard_ms"] < DASHBOARD_GOAL_MS
    verdicts["goals"] = all(verdicts.values())
    return {name: "pass" if met else "fail" for name, met in verdicts.items()}


# Running it -------------------------------------------------------------------------------


@contextmanager
def bench_app(url: str, redis_url: str) -> Iterator[Any]:
    """The app on the benchmark's database with a temporary instance; its job queue is
    released at the end."""
    with tempfile.TemporaryDirectory(prefix="megabox-bench-statements-") as folder:
        app = pools.make_app(url, redis_url, Path(folder) / "instance")
        try:
            yield app
        finally:
            queue = app.extensions.get("jobs")
            if queue is not None:
                queue.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sales", type=int, default=DEFAULT_SALES, help="the artist's sales")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                        help="runs; the median counts")  # fmt: skip
    parser.add_argument("--rebuild", action="store_true", help="load the data afresh")
    parser.add_argument("--plays", type=int, default=pools.DEFAULT_PLAYS, help="counted plays")
    parser.add_argument("--listeners", type=int, default=pools.DEFAULT_LISTENERS,
                        help="listeners")  # fmt: skip
    parser.add_argument("--tracks", type=int, default=pools.DEFAULT_TRACKS, help="tracks")
    args = parser.parse_args()
    if min(args.sales, args.repeat, args.plays, args.listeners, args.tracks) < 1:
        parser.error("every count must be at least 1")
    url = postgres_url("bench/statements.py")
    redis_url = os.environ.get("MEGABOX_REDIS_URL", "")
    sizes = pools.Sizes(args.plays, args.listeners, args.tracks)

    from app.extensions import db

    figures: dict[str, Any] = {}
    with bench_app(url, redis_url) as app:
        with app.app_context():
            marker = pools.prepare_database(app, sizes, load=True, rebuild=args.rebuild)
            marker = prepare(app, args.sales, marker)
            slug = marker[f"{MARKER_PREFIX}artist"]
            prepare_run(app, slug)
            report({"repeat": args.repeat, **data_figures(marker)})
            figures |= time_statements(slug, args.repeat)
            service_ms = time_dashboard_service(slug, args.repeat) * 1000
            report({"dashboard_service_ms": service_ms})
            db.session.remove()
        figures["dashboard_ms"] = time_dashboard(app, slug, args.repeat) * 1000
        report({"dashboard_ms": figures["dashboard_ms"]})
        report(goals(figures))


if __name__ == "__main__":
    main()
