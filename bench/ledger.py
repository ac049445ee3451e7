"""Benchmark: the ledger on PostgreSQL: sales through the service, balances, signed webhooks.

    MEGABOX_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/megabox_bench \\
    MEGABOX_REDIS_URL=redis://127.0.0.1:6379/10 \\
        .venv/bin/python bench/ledger.py [--sales 100000] [--entries 1000000] [--deliveries 2000]

The database: ``MEGABOX_DATABASE_URL`` must name a PostgreSQL database that is this
benchmark's alone; anything else is refused with one line. The benchmark builds its schema
with Alembic ``upgrade head`` in an empty database and leaves a marker table
(``megabox_bench_ledger``) there. On a later run it drops and rebuilds the ``public`` schema,
but only if it finds that marker: a database holding tables and no marker is refused, so it
never wipes anything it did not create. The rows it writes stay until the next run.

Jobs: each payment queues a receipt. With ``MEGABOX_REDIS_URL`` they go to an RQ queue of the
benchmark's own (``megabox-bench-ledger``), which no worker drains and which is deleted at the
end; without it they run on the in-process queue, as in embedded mode, into a temporary outbox.

Figures, as ``name = value`` lines:

- ``sales_per_second`` and ``sale_ms``: ``--sales`` sales through the service layer, each one
  database transaction: ``service.create_order`` and ``service.record_payment`` (with a
  processor fee), then commit. Carts vary: one release, a release and another artist's track,
  name-your-price with an extra. ``sale_floor_ms`` is the least the database takes for the
  same rows (the order, its items, the sale and fee transactions and their entries) written
  with plain INSERTs in one transaction each, through the same connection pool, for
  ``--floor-sales`` sales; ``sale_ratio`` is ``sale_ms`` over it.
- ``balance_ratio``: ``app.ledger.service.artist_balances`` for an artist whose payable holds
  ``--entries`` entries, over a bare ``SELECT SUM(amount) FROM ledger_entries WHERE account_id
  IN (...)`` of the same rows (the artist's payable entries), medians of ``--repeat`` runs
  each, after one warm-up run each. The journal is filled with SQL (``INSERT ... SELECT`` over
  ``generate_series``), not through the service: balanced three-entry sale transactions, one
  in eleven of them another artist's, so the artist's rows are spread over a larger table
  (1.1M transactions and 3.3M entries for the default 1M).
  Then ``VACUUM ANALYZE``, as autovacuum would have done on a live database. The goal is
  ``balance_ratio <= 1.5``. ``balance_at_ratio`` is the same with ``at=`` (a statement's
  closing balance), against a bare SUM joined to the transactions' ``effective_at``.
- ``webhooks_per_second``: ``--deliveries`` signed sandbox events
  (``POST /checkout/sandbox/events``), each paying a distinct buyer's order, through the WSGI app
  (Flask's test client). ``webhook_ratio`` is the time per delivery over that of the same
  request to an unsigned no-op route added to the same app.

Not a test: it does not run in CI.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import postgres_url  # noqa: E402

MARKER_TABLE = "megabox_bench_ledger"
BENCH_QUEUE = "megabox-bench-ledger"
CURRENCY = "USD"
GATEWAY = "sandbox"
# What the sales pay: the fee is a processor's 2.9% plus 30 cents, capped at the total.
FEE_BPS = 290
FEE_FIXED_MINOR = 30
OTHER_ARTIST_EVERY = 11
DEFAULT_SALES = 100_000
DEFAULT_FLOOR_SALES = 10_000
DEFAULT_ENTRIES = 1_000_000
DEFAULT_DELIVERIES = 2_000
DEFAULT_REPEAT = 7
# Signed events expire after five minutes; sign them in batches just before delivery.
SIGN_BATCH = 500
PROGRESS_EVERY = 10_000


def fail(message: str) -> None:
    sys.exit(f"bench/ledger.py: {message}")


def database_url() -> str:
    return postgres_url("bench/ledger.py")


def make_app(url: str, redis_url: str, instance: Path) -> Any:
    from app import create_app

    return create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "JOB_QUEUE_NAME": BENCH_QUEUE,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": "bench-ledger",
            "STORAGE_URL": "",
        }
    )


def rebuild_schema(app: Any) -> None:
    """An empty database, or one holding this benchmark's marker: build the schema afresh.

    Exits with one line for a database holding tables without the marker.
    """
    from flask_migrate import upgrade
    from sqlalchemy import inspect, text

    from app.extensions import db

    tables = set(inspect(db.engine).get_table_names(schema="public"))
    if tables and MARKER_TABLE not in tables:
        fail(
            f"{db.engine.url.database} holds {len(tables)} tables this benchmark did not create; "
            "give it an empty database of its own"
        )
    with db.engine.begin() as conn:
        if tables:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        conn.execute(text(f"CREATE TABLE {MARKER_TABLE} (created_at timestamptz NOT NULL)"))
        conn.execute(text(f"INSERT INTO {MARKER_TABLE} VALUES (now())"))
    upgrade()


# The catalogue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """What the carts draw from: an artist's fixed-price release, its track, and an NYP release."""

    artist_id: int
    fixed_id: int
    fixed_price: int
    track_id: int
    track_price: int
    nyp_id: int


@dataclass(frozen=True)
class Catalogue:
    buyer_id: int
    offers: list[Offer]


def make_catalogue(session: Any, artists: int = 5) -> Catalogue:
    """A buyer, and per artist a fixed-price release with a track and a name-your-price one."""
    from app.accounts.models import User
    from app.catalog.models import Artist, PricingMode, Release, ReleaseType, Track, TrackStatus
    from app.timestamps import utcnow

    # Made directly: hashing a password (argon2) is no part of what is measured.
    buyer = User(email="buyer@bench.invalid", display_name="Buyer", password_hash="!")
    session.add(buyer)
    made = []
    for n in range(artists):
        owner = User(email=f"artist{n}@bench.invalid", display_name="Artist", password_hash="!")
        artist = Artist(owner=owner, slug=f"bench-{n}", name=f"Bench {n}")
        fixed = Release(
            artist=artist, title=f"Fixed {n}", release_type=ReleaseType.ALBUM,
            pricing_mode=PricingMode.FIXED, price_minor=700 + 101 * n,
            minimum_price_minor=700 + 101 * n, currency=CURRENCY, published=True,
            published_at=utcnow(),
        )  # fmt: skip
        nyp = Release(
            artist=artist, title=f"NYP {n}", release_type=ReleaseType.ALBUM,
            pricing_mode=PricingMode.NAME_YOUR_PRICE, price_minor=1000, minimum_price_minor=500,
            currency=CURRENCY, published=True, published_at=utcnow(),
        )  # fmt: skip
        track = Track(
            release=fixed, title="One", position=1, price_minor=129 + n, status=TrackStatus.READY
        )
        Track(release=nyp, title="One", position=1, price_minor=129, status=TrackStatus.READY)
        session.add_all([fixed, nyp])
        made.append((artist, fixed, track, nyp))
    session.commit()
    offers = [
        Offer(artist.id, fixed.id, fixed.price_minor, track.id, track.price_minor, nyp.id)
        for artist, fixed, track, nyp in made
    ]
    return Catalogue(buyer.id, offers)


def cart_lines(rng: random.Random, offers: Sequence[Offer]) -> list[Any]:
    """One of three cart shapes: a release; a release and another artist's track; an NYP extra."""
    from app.commerce.service import CartLine

    first = rng.randrange(len(offers))
    offer = offers[first]
    shape = rng.randrange(3)
    if shape == 0:
        return [CartLine(offer.fixed_id)]
    if shape == 1:
        other = offers[(first + 1) % len(offers)]
        return [CartLine(offer.fixed_id), CartLine(other.fixed_id, other.track_id)]
    return [CartLine(offer.nyp_id, amount_minor=500 + rng.randrange(0, 5000))]


def processor_fee(total: int) -> int:
    return min(total, (total * FEE_BPS + 5_000) // 10_000 + FEE_FIXED_MINOR)


# sales_per_second --------------------------------------------------------------------------


def time_sales(app: Any, catalogue: Catalogue, count: int) -> float:
    """Seconds for ``count`` sales through the service, one transaction each."""
    from app.accounts.models import User
    from app.commerce import service
    from app.extensions import db
    from app.timestamps import utcnow

    session = db.session
    rng = random.Random(8)
    buyer = session.get_one(User, catalogue.buyer_id)
    started = time.perf_counter()
    for n in range(1, count + 1):
        order = service.create_order(
            session, buyer, cart_lines(rng, catalogue.offers), gateway=GATEWAY, config=app.config
        )
        payment = service.Payment(
            order_public_id=order.public_id,
            gateway=GATEWAY,
            amount_minor=order.total_minor,
            currency=CURRENCY,
            fee_minor=processor_fee(order.total_minor),
            paid_at=utcnow(),
        )
        service.record_payment(session, payment, config=app.config)
        session.commit()
        if n % PROGRESS_EVERY == 0:
            rate = n / (time.perf_counter() - started)
            print(f"# {n} sales, {rate:.0f}/s", file=sys.stderr, flush=True)
    return time.perf_counter() - started


def time_sale_floor(app: Any, catalogue: Catalogue, count: int) -> float:
    """Seconds to write the rows of ``count`` two-item sales with plain INSERTs, one
    transaction each: an order, its two items, a sale transaction of four entries and a fee
    transaction of two, as ``record_payment`` writes them."""
    from app.commerce.models import Order, OrderItem
    from app.extensions import db
    from app.ledger.models import LedgerEntry, LedgerTransaction
    from app.timestamps import utcnow

    first, second = catalogue.offers[:2]
    accounts = floor_accounts(db.session, first.artist_id, second.artist_id)
    amounts = (first.fixed_price, second.track_price)
    shares = [(amount * 9000 + 5000) // 10000 for amount in amounts]
    total = sum(amounts)
    fee = processor_fee(total)
    sale_lines = [
        (accounts["clearing"], total),
        (accounts["first"], -shares[0]),
        (accounts["second"], -shares[1]),
        (accounts["commission"], sum(shares) - total),
    ]
    fee_lines = [(accounts["fees"], fee), (accounts["clearing"], -fee)]
    orders, items = Order.__table__, OrderItem.__table__
    transactions, entries = LedgerTransaction.__table__, LedgerEntry.__table__
    started = time.perf_counter()
    for n in range(count):
        now = utcnow()
        with db.engine.begin() as connection:
            order_id = connection.execute(
                orders.insert()
                .values(
                    public_id=f"floor-{n}", buyer_id=catalogue.buyer_id, email="f@bench.invalid",
                    currency=CURRENCY, total_minor=total, fee_minor=fee, refunded_minor=0,
                    status="paid", gateway=GATEWAY, failure_reason="", created_at=now,
                    paid_at=now, updated_at=now,
                )
                .returning(orders.c.id)
            ).scalar_one()  # fmt: skip
            connection.execute(
                items.insert(),
                [
                    floor_item(order_id, first, None, amounts[0], shares[0], fee // 2),
                    floor_item(
                        order_id, second, second.track_id, amounts[1], shares[1], fee - fee // 2
                    ),
                ],
            )
            for key, kind, lines in (
                (f"order:{order_id}:sale", "sale", sale_lines),
                (f"order:{order_id}:fee", "processing_fee", fee_lines),
            ):
                transaction_id = connection.execute(
                    transactions.insert()
                    .values(
                        idempotency_key=key, kind=kind, description="", created_at=now,
                        effective_at=now, metadata={},
                    )
                    .returning(transactions.c.id)
                ).scalar_one()  # fmt: skip
                connection.execute(
                    entries.insert(),
                    [
                        {"transaction_id": transaction_id, "account_id": account_id,
                         "amount": amount, "currency": CURRENCY}
                        for account_id, amount in lines
                    ],
                )  # fmt: skip
    return time.perf_counter() - started


def floor_accounts(session: Any, first_artist: int, second_artist: int) -> dict[str, int]:
    """The ids of the accounts a two-item sale posts to (created through the service)."""
    from app.commerce import posting
    from app.ledger import service as ledger
    from app.ledger.models import PLATFORM_COMMISSION, PROCESSING_FEES

    ids = {
        "clearing": posting.clearing_account(session, GATEWAY, CURRENCY).id,
        "first": ledger.artist_payable(session, first_artist, CURRENCY).id,
        "second": ledger.artist_payable(session, second_artist, CURRENCY).id,
        "commission": posting.platform_account(session, PLATFORM_COMMISSION, CURRENCY).id,
        "fees": posting.platform_account(session, PROCESSING_FEES, CURRENCY).id,
    }
    session.commit()
    return ids


def floor_item(
    order_id: int, offer: Offer, track_id: int | None, amount: int, share: int, fee: int
) -> dict[str, Any]:
    return {
        "order_id": order_id, "artist_id": offer.artist_id, "release_id": offer.fixed_id,
        "track_id": track_id, "kind": "track" if track_id else "release", "title": "Floor",
        "list_price_minor": amount, "minimum_minor": amount, "amount_minor": amount,
        "extra_minor": 0, "artist_share_minor": share, "platform_share_minor": amount - share,
        "fee_minor": fee,
    }  # fmt: skip


# balance_ratio -----------------------------------------------------------------------------


FILL_JOURNAL = """
WITH sales AS (
    INSERT INTO ledger_transactions
        (idempotency_key, kind, description, created_at, effective_at, metadata)
    SELECT 'bench:sale:' || g, 'sale', '', now(),
           CAST(:start AS timestamptz) + g * interval '1 second', '{}'
    FROM generate_series(1, :count) AS g
    RETURNING id, CAST(split_part(idempotency_key, ':', 3) AS integer) AS g
), priced AS (
    SELECT id,
           100 + (CAST(g AS bigint) * 7919) % 2000 AS price,
           CASE WHEN g % :every = 0
                THEN others[1 + (g / :every) % cardinality(others)]
                ELSE :payable END AS payable
    FROM sales, (SELECT CAST(:others AS integer[]) AS others) AS other_payables
)
INSERT INTO ledger_entries (transaction_id, account_id, amount, currency)
SELECT p.id, line.account_id, line.amount, :currency
FROM priced AS p
CROSS JOIN LATERAL (VALUES
    (1, :clearing, p.price),
    (2, p.payable, -((p.price * 9000 + 5000) / 10000)),
    (3, :commission, (p.price * 9000 + 5000) / 10000 - p.price)
) AS line(position, account_id, amount)
ORDER BY p.id, line.position
"""
JOURNAL_START = datetime(2024, 1, 1, tzinfo=UTC)


def fill_journal(app: Any, catalogue: Catalogue, entries: int) -> dict[str, Any]:
    """Give a new artist's payable ``entries`` entries, in balanced sale transactions written
    with one INSERT ... SELECT; one transaction in OTHER_ARTIST_EVERY credits another artist.
    Returns the artist's id, its payable account ids, and the fill's seconds."""
    from sqlalchemy import text

    from app.accounts.models import User
    from app.catalog.models import Artist
    from app.commerce import posting
    from app.extensions import db
    from app.ledger import service as ledger
    from app.ledger.models import PLATFORM_COMMISSION

    session = db.session
    owner = User(email="big@bench.invalid", display_name="Big", password_hash="!")
    artist = Artist(owner=owner, slug="bench-big", name="Bench Big")
    session.add(artist)
    session.flush()  # the artist's id names its payable account
    payable = ledger.artist_payable(session, artist.id, CURRENCY).id
    others = [
        ledger.artist_payable(session, offer.artist_id, CURRENCY).id for offer in catalogue.offers
    ]
    clearing = posting.clearing_account(session, GATEWAY, CURRENCY).id
    commission = posting.platform_account(session, PLATFORM_COMMISSION, CURRENCY).id
    session.commit()
    # Transactions g = 1..count; those with g % every == 0 are the other artists'.
    count = entries + entries // (OTHER_ARTIST_EVERY - 1)
    started = time.perf_counter()
    session.execute(
        text(FILL_JOURNAL),
        {
            "start": JOURNAL_START, "count": count, "every": OTHER_ARTIST_EVERY,
            "others": others, "payable": payable, "clearing": clearing,
            "commission": commission, "currency": CURRENCY,
        },
    )  # fmt: skip
    session.commit()
    filled = time.perf_counter() - started
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE ledger_entries"))
        connection.execute(text("VACUUM ANALYZE ledger_transactions"))
        connection.execute(text("VACUUM ANALYZE ledger_accounts"))
    account_ids = [payable]
    rows = session.scalar(
        text("SELECT count(*) FROM ledger_entries WHERE account_id = :id"), {"id": payable}
    )
    session.commit()
    return {
        "artist_id": artist.id,
        "account_ids": account_ids,
        "rows": int(rows),
        "fill_seconds": filled,
        "journal_transactions": count,
        "middle": JOURNAL_START + timedelta(seconds=count // 2),
    }


def median_seconds(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The median of ``repeat`` timed runs after one untimed warm-up, and the last result."""
    from app.extensions import db

    result = run()
    db.session.rollback()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
        db.session.rollback()  # end the read's transaction, as a request would
    return statistics.median(times), result


def time_balances(journal: dict[str, Any], repeat: int) -> dict[str, float]:
    from sqlalchemy import text

    from app.extensions import db
    from app.ledger import service as ledger

    session = db.session
    ids = ", ".join(str(int(account_id)) for account_id in journal["account_ids"])
    bare_sum = text(f"SELECT SUM(amount) FROM ledger_entries WHERE account_id IN ({ids})")
    bare_sum_at = text(
        "SELECT SUM(e.amount) FROM ledger_entries AS e "
        "JOIN ledger_transactions AS t ON t.id = e.transaction_id "
        f"WHERE e.account_id IN ({ids}) AND t.effective_at <= :at"
    )
    artist_id, middle = journal["artist_id"], journal["middle"]
    ours, balances = median_seconds(lambda: ledger.artist_balances(session, artist_id), repeat)
    bare, total = median_seconds(lambda: session.scalar(bare_sum), repeat)
    if balances != {CURRENCY: -int(total)}:
        fail(f"artist_balances gave {balances}, the bare SUM {total}")
    ours_at, balances_at = median_seconds(
        lambda: ledger.artist_balances(session, artist_id, at=middle), repeat
    )
    bare_at, total_at = median_seconds(
        lambda: session.scalar(bare_sum_at, {"at": middle}), repeat
    )
    if balances_at != {CURRENCY: -int(total_at)}:
        fail(f"artist_balances(at=) gave {balances_at}, the bare SUM {total_at}")
    return {
        "balance_ms": ours * 1000,
        "bare_sum_ms": bare * 1000,
        "balance_ratio": ours / bare,
        "balance_at_ms": ours_at * 1000,
        "bare_sum_at_ms": bare_at * 1000,
        "balance_at_ratio": ours_at / bare_at,
    }


# webhooks_per_second -------------------------------------------------------------------------


NOOP_PATH = "/bench/noop"


def add_noop_route(app: Any) -> None:
    """An unsigned POST route that reads the body and answers a small JSON, CSRF-exempt like
    the event endpoint: what any request through this app costs at the least."""
    from flask import jsonify, request

    from app.extensions import csrf

    def noop() -> Any:
        return jsonify({"received": len(request.get_data())})

    app.add_url_rule(NOOP_PATH, "bench_noop", noop, methods=["POST"])
    csrf.exempt(noop)


def open_checkouts(app: Any, catalogue: Catalogue, count: int) -> list[int]:
    """``count`` orders awaiting payment on sandbox checkout sessions, each by a buyer of its
    own (a buyer has one open checkout at a time), committed; their ids."""
    from app.accounts.models import User
    from app.commerce import service
    from app.commerce.sandbox import SandboxGateway
    from app.extensions import db

    session = db.session
    gateway = SandboxGateway(app.config)
    rng = random.Random(13)
    ids = []
    with app.test_request_context():
        for n in range(count):
            buyer = User(email=f"buyer{n}@bench.invalid", display_name="Buyer", password_hash="!")
            session.add(buyer)
            order, _ = service.start_checkout(
                session, gateway, buyer, cart_lines(rng, catalogue.offers), config=app.config,
                success_url=lambda o: "/done", cancel_url=lambda o: "/cart",
            )  # fmt: skip
            ids.append(order.id)
            if n % SIGN_BATCH == SIGN_BATCH - 1:
                session.commit()
        session.commit()
    return ids


def signed_payments(app: Any, order_ids: Sequence[int]) -> list[tuple[bytes, str]]:
    """The signed ``payment.succeeded`` event of each order, as the sandbox would send it."""
    from app.commerce import sandbox
    from app.commerce.models import Order
    from app.extensions import db

    with app.app_context():
        signed = []
        for order_id in order_ids:
            order = db.session.get_one(Order, order_id)
            event = sandbox.payment_event(order, sandbox.PAYMENT_SUCCEEDED, config=app.config)
            signed.append(sandbox.signed_event(event, app.config))
        db.session.rollback()
    return signed


def time_webhooks(app: Any, order_ids: Sequence[int]) -> dict[str, float]:
    """Deliver each order's signed payment through the WSGI app, and the same bodies to the
    no-op route; each request gets its own app context and session, as in production."""
    from app.commerce import sandbox

    client = app.test_client()
    ours = noop = 0.0
    for start in range(0, len(order_ids), SIGN_BATCH):
        batch = signed_payments(app, order_ids[start : start + SIGN_BATCH])
        for payload, signature in batch:
            headers = {sandbox.SIGNATURE_HEADER: signature, "Content-Type": "application/json"}
            started = time.perf_counter()
            response = client.post("/checkout/sandbox/events", data=payload, headers=headers)
            ours += time.perf_counter() - started
            if response.status_code != 200 or response.json["status"] != "paid":
                body = response.get_data(as_text=True)
                fail(f"a signed delivery got {response.status_code}: {body}")
            started = time.perf_counter()
            response = client.post(NOOP_PATH, data=payload, headers=headers)
            noop += time.perf_counter() - started
            if response.status_code != 200:
                fail(f"the no-op route got {response.status_code}")
    count = len(order_ids)
    return {
        "webhooks_per_second": count / ours,
        "webhook_ms": ours / count * 1000,
        "noop_request_ms": noop / count * 1000,
        "webhook_ratio": ours / noop,
    }


def paid_count(order_ids: Sequence[int]) -> int:
    from sqlalchemy import func, select

    from app.commerce.models import Order, OrderStatus
    from app.extensions import db

    return int(
        db.session.scalar(
            select(func.count())
            .select_from(Order)
            .where(Order.id.in_(order_ids), Order.status == OrderStatus.PAID)
        )
        or 0
    )


# Running it ------------------------------------------------------------------------------------


@contextmanager
def bench_app(url: str, redis_url: str) -> Iterator[Any]:
    """The app on the benchmark's database, its job queue released (and its RQ queue deleted)
    at the end."""
    with tempfile.TemporaryDirectory(prefix="megabox-bench-ledger-") as folder:
        app = make_app(url, redis_url, Path(folder))
        add_noop_route(app)
        try:
            yield app
        finally:
            queue = app.extensions.get("jobs")
            if queue is not None:
                rq_queue = getattr(queue, "rq_queue", None)
                if rq_queue is not None:
                    rq_queue.delete(delete_jobs=True)
                queue.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sales", type=int, default=DEFAULT_SALES, help="sales to post")
    parser.add_argument(
        "--floor-sales", type=int, default=DEFAULT_FLOOR_SALES, help="plain-INSERT sales"
    )
    parser.add_argument(
        "--entries", type=int, default=DEFAULT_ENTRIES, help="the artist's payable entries"
    )
    parser.add_argument(
        "--deliveries", type=int, default=DEFAULT_DELIVERIES, help="signed webhook deliveries"
    )
    parser.add_argument(
        "--repeat", type=int, default=DEFAULT_REPEAT, help="runs; the median counts"
    )
    args = parser.parse_args()
    if min(args.sales, args.floor_sales, args.entries, args.deliveries, args.repeat) < 1:
        parser.error("every count must be at least 1")
    url = database_url()
    redis_url = os.environ.get("MEGABOX_REDIS_URL", "")

    from app.extensions import db

    with bench_app(url, redis_url) as app:
        with app.app_context():
            rebuild_schema(app)
            catalogue = make_catalogue(db.session)
            jobs = "rq" if redis_url else "inprocess"
            report({"jobs": jobs, "fee_policy": app.config["FEE_POLICY"]})
            seconds = time_sales(app, catalogue, args.sales)
            floor = time_sale_floor(app, catalogue, args.floor_sales)
            report(
                {
                    "sales": args.sales,
                    "sales_seconds": seconds,
                    "sales_per_second": args.sales / seconds,
                    "sale_ms": seconds / args.sales * 1000,
                    "sale_floor_ms": floor / args.floor_sales * 1000,
                    "sale_ratio": (seconds / args.sales) / (floor / args.floor_sales),
                }
            )
            order_ids = open_checkouts(app, catalogue, args.deliveries)
        webhooks = time_webhooks(app, order_ids)
        with app.app_context():
            if paid_count(order_ids) != len(order_ids):
                fail("not every delivered order was recorded paid")
        report({"deliveries": len(order_ids), **webhooks})
        with app.app_context():
            journal = fill_journal(app, catalogue, args.entries)
            report(
                {
                    "balance_rows": journal["rows"],
                    "journal_transactions": journal["journal_transactions"],
                    "journal_fill_seconds": journal["fill_seconds"],
                    **time_balances(journal, args.repeat),
                }
            )


def report(figures: dict[str, Any]) -> None:
    """Print figures as soon as they are measured, so a long run's early ones are not lost."""
    for name, value in figures.items():
        print(f"{name} = {value:.3f}" if isinstance(value, float) else f"{name} = {value}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
