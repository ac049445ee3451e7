"""Artists' statements: who may read them, which exist, and freezing a closed period's.

There is one statement per artist, period (a pools period, a UTC month ``YYYY-MM``) and
currency the artist has a payable account in, for every month from the artist's first ledger
entry to the current one, and the next one too once the current month is closed early: a
month's statement begins where the previous one's ends (``app.statements.lines``). A statement
of a closed period is frozen the first time it is asked for (``app.statements.models``), also
by the list of statements, and read from that row ever after; an open period's (or a month no
period was made for, where nothing was played) is computed live and provisional.

Only the artist's owner and admins read an artist's statements; anyone else is told there is
no such statement (404), exactly as for an artist or period that does not exist.
Functions take the session and never commit; freezing inserts a row, which the caller's unit
of work commits.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.catalog.models import Artist
from app.catalog.service import can_edit
from app.database import insert_unless_exists
from app.ledger import service as ledger
from app.ledger.models import AccountKind, LedgerAccount
from app.ledger.money import Money
from app.pools.models import Period, PeriodStatus
from app.pools.periods import next_key, period_key
from app.statements.content import StatementView, from_json, hash_of
from app.statements.errors import CurrencyRequired, StatementNotFound
from app.statements.lines import (
    build_content,
    early_cuts,
    first_activity,
    last_instant,
    month_range,
    statement_range,
)
from app.statements.models import Statement
from app.timestamps import utcnow

NOT_FOUND_MESSAGE = "No such statement."


@dataclass(frozen=True, slots=True)
class StatementSummary:
    """One row of an artist's list of statements."""

    period: str
    currency: str
    closed: bool
    closing_minor: int

    def money(self, minor: int) -> Money:
        return Money(minor, self.currency)


def readable_artist(session: Session, slug: str, user: User | None) -> Artist:
    """The artist called ``slug`` if ``user`` may read its statements (its owner, an admin).

    Raises StatementNotFound otherwise, also for an unknown slug: the same answer either way.
    """
    artist = session.scalar(select(Artist).where(Artist.slug == slug))
    if artist is None or not can_edit(user, artist):
        raise StatementNotFound(NOT_FOUND_MESSAGE, {"artist": slug})
    return artist


def currencies(session: Session, artist_id: int) -> dict[str, int]:
    """The currencies the artist has a payable account in, sorted: currency -> account id."""
    rows = session.execute(
        select(LedgerAccount.currency, LedgerAccount.id)
        .where(LedgerAccount.artist_id == artist_id, LedgerAccount.kind == AccountKind.LIABILITY)
        .order_by(LedgerAccount.currency)
    )
    return {currency: account_id for currency, account_id in rows}


def choose_currency(available: Sequence[str], requested: str | None) -> str:
    """The currency asked for, or the artist's only one.

    Raises StatementNotFound (not one of theirs, or none at all) and CurrencyRequired (several,
    and none asked for).
    """
    if requested is not None:
        if requested.upper() not in available:
            raise StatementNotFound(NOT_FOUND_MESSAGE, {"currency": requested})
        return requested.upper()
    if not available:
        raise StatementNotFound("This artist has no statements yet.")
    if len(available) > 1:
        raise CurrencyRequired(
            f"This artist has statements in {', '.join(available)}: choose one.",
            {"currency": list(available)},
        )
    return available[0]


def statement(
    session: Session, artist: Artist, key: str, currency: str, *, now: datetime | None = None
) -> StatementView:
    """The artist's statement for period ``key`` in ``currency``: frozen for a closed
    period (stored now if it was not yet), live and provisional for any other.

    Raises InvalidInput (a key that is not ``YYYY-MM``), StatementNotFound (a statement that
    has not begun, or a currency the artist has no account in) and StatementOutOfBalance.
    """
    span = statement_range(session, key)
    if (now or utcnow()) < span[0]:
        raise StatementNotFound(NOT_FOUND_MESSAGE, {"period": key})
    account_id = currencies(session, artist.id).get(currency)
    if account_id is None:
        raise StatementNotFound(NOT_FOUND_MESSAGE, {"currency": currency})
    period = session.scalar(select(Period).where(Period.key == key))
    with _collector_paused():
        if period is None or period.status is not PeriodStatus.CLOSED:
            live = build_content(session, artist, key, span, currency, account_id, closed=False)
            return StatementView(live)
        return _frozen(session, artist, period, span, currency, account_id)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for a while, then resumed as it was.

    A statement of a hundred thousand lines makes a few hundred thousand objects that live
    until it is shown, none of them in a reference cycle; each time their number grows by a
    quarter the collector walks all of them again, which took 40% of the time. Whatever
    cycles turn up meanwhile are collected once it runs again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _frozen(
    session: Session,
    artist: Artist,
    period: Period,
    span: tuple[datetime, datetime],
    currency: str,
    account_id: int,
) -> StatementView:
    """The stored statement, written first if this is its first reading (also under a race:
    of two first readers one inserts, and both read its row).

    The reader that stores it shows the content it stored: ``from_json`` of the stored text
    gives that same content back, so reading the row again would only cost time.
    """
    row = _stored(session, artist.id, period.id, currency)
    if row is None:
        content = build_content(
            session, artist, period.key, span, currency, account_id, closed=True
        )
        canonical = content.canonical_json()
        content_hash = hash_of(canonical)
        inserted = session.execute(
            insert_unless_exists(session, Statement, ["artist_id", "period_id", "currency"])
            .values(
                artist_id=artist.id,
                period_id=period.id,
                currency=currency,
                content=canonical.decode("utf-8"),
                content_hash=content_hash,
                created_at=utcnow(),
            )
            .returning(Statement.id)
        ).scalar_one_or_none()
        if inserted is not None:
            return StatementView(content, content_hash)
        row = _stored(session, artist.id, period.id, currency)
        assert row is not None  # inserted by the reader that won the race
    if hash_of(row.content.encode("utf-8")) != row.content_hash:
        raise RuntimeError(f"frozen statement {row.id} does not match its content hash")
    return StatementView(from_json(row.content), row.content_hash)


def _stored(session: Session, artist_id: int, period_id: int, currency: str) -> Statement | None:
    return session.scalar(
        select(Statement).where(
            Statement.artist_id == artist_id,
            Statement.period_id == period_id,
            Statement.currency == currency,
        )
    )


def artist_statements(
    session: Session, artist: Artist, *, now: datetime | None = None
) -> list[StatementSummary]:
    """Every statement of the artist that has begun, newest period first (currencies in
    order). A closed period's closing balance is its frozen statement's, frozen now if this is
    its first reading (the caller commits); an open one's is the ledger's at its end, live.

    Raises StatementOutOfBalance (freezing a statement).
    """
    now = now or utcnow()
    accounts = currencies(session, artist.id)
    first = first_activity(session, list(accounts.values()))
    if first is None:
        return []
    closed = {
        period.key: period
        for period in session.scalars(select(Period).where(Period.status == PeriodStatus.CLOSED))
    }
    cuts = early_cuts(session)
    # The month after this one, too, once this one is closed early.
    keys = _months(period_key(first), next_key(period_key(now)))
    summaries: list[StatementSummary] = []
    for key in reversed(keys):
        span = month_range(key, cuts)
        if now < span[0]:
            continue
        period = closed.get(key)
        if period is None:
            owed = ledger.artist_balances(session, artist.id, at=last_instant(span[1]))
            summaries += [
                StatementSummary(key, currency, False, owed.get(currency, 0))
                for currency in accounts
            ]
            continue
        summaries += [
            StatementSummary(
                key, currency, True,
                _frozen_closing(session, artist, period, span, currency, account_id),
            )  # fmt: skip
            for currency, account_id in accounts.items()
        ]
    return summaries


def _frozen_closing(
    session: Session,
    artist: Artist,
    period: Period,
    span: tuple[datetime, datetime],
    currency: str,
    account_id: int,
) -> int:
    """The closing balance of a closed period's statement, as frozen (frozen now if not yet)."""
    row = _stored(session, artist.id, period.id, currency)
    if row is None:
        with _collector_paused():
            view = _frozen(session, artist, period, span, currency, account_id)
        return view.content.closing_minor
    return int(json.loads(row.content)["closing_minor"])


def _months(first: str, last: str) -> list[str]:
    """The keys from ``first`` to ``last``, inclusive (none if ``last`` is earlier)."""
    keys: list[str] = []
    key = first
    while key <= last:
        keys.append(key)
        key = next_key(key)
    return keys
