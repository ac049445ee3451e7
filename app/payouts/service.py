"""The rules of payouts: connecting an account, what a run pays, and each payout's outcome.

Functions take the session and never commit; ``app.payouts.runner`` is the unit of work of a
run, and views commit for pages.

A payout of an artist's balance in one currency goes like this:

1. ``claim_payout`` locks the artist's payable account (``app.database.lock_row``), reads its
   balance, and when it is at least the currency's minimum (``PAYOUT_MINIMUMS``) writes a
   pending ``Payout`` of the whole balance with its ledger posting: kind ``payout``, key
   ``payout:<id>``, Dr ``artist_payable:<artist>:<CUR>``, Cr ``clearing:<gateway>:<CUR>``. The
   balance is then zero, so a second run that waited for the lock finds nothing to pay; and
   the partial unique index ``uq_payouts_one_pending`` holds at most one pending payout per
   artist and currency whatever the code does.
2. The runner commits, then asks the gateway for the transfer under the idempotency key
   ``payout:<id>``.
3. ``record_transfer`` marks it paid; ``record_refusal`` marks it failed and reverses the
   posting (kind ``payout_reversal``, key ``payout:<id>:reversed``), so the balance returns.
   When the gateway's answer is unknown (network, 5xx) the payout stays pending, and the next
   run asks again under the same key, which makes no second transfer.
4. Later, a ``transfer.reversed`` event (``reverse_payout``) marks a paid payout reversed and
   reverses its posting the same way.

Every status change is a compare-and-set UPDATE from the state it expects, so of two runs (or a
run and a webhook) finishing one payout, one does and the other changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.catalog.errors import ArtistNotFound
from app.catalog.models import Artist
from app.catalog.service import can_edit
from app.database import insert_unless_exists, lock_row
from app.ledger import service as ledger
from app.ledger.models import (
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    clearing_code,
)
from app.ledger.money import Money, exponent
from app.payouts.gateways import PayoutGateway
from app.payouts.models import (
    AccountStatus,
    Payout,
    PayoutAccount,
    PayoutRun,
    PayoutStatus,
    payout_key,
    reversal_key,
)
from app.timestamps import utcnow

PAYOUT = "payout"
PAYOUT_REVERSAL = "payout_reversal"
# The smallest balance paid out, per currency: "USD:2500,EUR:2500". A currency not named is
# not paid out (its minimum is unknown, and a transfer costs the platform a fee).
PAYOUT_MINIMUMS_SETTING = "PAYOUT_MINIMUMS"
DEFAULT_PAYOUT_MINIMUMS = "USD:2500,EUR:2500,GBP:2500"
# Payouts whose transfer was made: what a run paid, even if one was reversed later.
TRANSFERRED = (PayoutStatus.PAID, PayoutStatus.REVERSED)

PayoutStatusName = Literal["pending", "paid", "failed", "reversed"]


@dataclass(frozen=True, slots=True)
class PayoutView:
    """One payout as pages, the API and statements show it."""

    id: int
    artist_id: int
    amount_minor: int
    currency: str
    status: PayoutStatusName
    created_at: datetime
    transfer_reference: str | None
    failure_message: str | None


@dataclass(frozen=True, slots=True)
class RunView:
    """One payout run, with what it transferred per currency.

    ``dry_run`` is False for every stored run: a dry run writes nothing.
    """

    id: int
    started_at: datetime
    finished_at: datetime | None
    dry_run: bool
    paid_count: int
    failed_count: int
    total_minor: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlannedPayout:
    """A balance that a run would pay now."""

    artist_id: int
    artist_slug: str
    artist_name: str
    currency: str
    amount_minor: int

    @property
    def money(self) -> Money:
        return Money(self.amount_minor, self.currency)


# Settings -----------------------------------------------------------------------------------


def payout_minimums(config: Mapping[str, Any]) -> dict[str, int]:
    """``PAYOUT_MINIMUMS`` as {currency: minor units}. Raises ValueError for a malformed one."""
    raw = str(config.get(PAYOUT_MINIMUMS_SETTING, DEFAULT_PAYOUT_MINIMUMS))
    minimums: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        currency, _, amount = part.partition(":")
        currency = currency.strip().upper()
        exponent(currency)
        if not amount.strip().isdigit():
            raise ValueError(f"{PAYOUT_MINIMUMS_SETTING}: write CUR:minor_units, not {part!r}")
        minimums[currency] = int(amount)
    return minimums


# Accounts -----------------------------------------------------------------------------------


def owned_artist(session: Session, slug: str, user: User | None) -> Artist:
    """The artist, if ``user`` owns it or is an admin. Raises ArtistNotFound otherwise too, with
    the message of a slug that does not exist, so a guessed URL tells nothing."""
    artist = session.scalar(select(Artist).where(Artist.slug == slug))
    if artist is None or not can_edit(user, artist):
        raise ArtistNotFound(f"No artist called {slug!r}.")
    return artist


def payout_account(session: Session, artist_id: int) -> PayoutAccount | None:
    return session.scalar(select(PayoutAccount).where(PayoutAccount.artist_id == artist_id))


def connect_account(
    session: Session, gateway: PayoutGateway, artist: Artist, email: str | None
) -> PayoutAccount:
    """The artist's payout account with ``gateway``, made (onboarding) if they have none.

    An account made with another gateway is replaced: it cannot be paid by this one. Raises
    PayoutGatewayUnavailable.
    """
    found = payout_account(session, artist.id)
    if found is not None and found.gateway == gateway.name:
        return found
    external_id = gateway.create_account(artist.id, email)
    if found is not None:
        found.gateway, found.external_id = gateway.name, external_id
        found.status, found.activated_at = AccountStatus.ONBOARDING, None
        return found
    # Two clicks at once: one row wins, and Stripe made one account (keyed by the artist).
    session.execute(
        insert_unless_exists(session, PayoutAccount, ["artist_id"]).values(
            artist_id=artist.id, gateway=gateway.name, external_id=external_id,
            status=AccountStatus.ONBOARDING, created_at=utcnow(),
        )
    )  # fmt: skip
    account = payout_account(session, artist.id)
    assert account is not None  # inserted just now, or by the request that won the race
    return account


def finish_onboarding(
    session: Session, gateway: PayoutGateway, account: PayoutAccount, now: datetime
) -> bool:
    """Mark the account active if the gateway says it can receive transfers; whether it is.

    Raises PayoutGatewayUnavailable.
    """
    if account.status is AccountStatus.ACTIVE:
        return True
    if account.gateway != gateway.name or not gateway.account_ready(account.external_id):
        return False
    account.status, account.activated_at = AccountStatus.ACTIVE, now
    return True


# Planning -----------------------------------------------------------------------------------


def plan_payouts(
    session: Session, config: Mapping[str, Any], gateway_name: str
) -> list[PlannedPayout]:
    """What a run would pay now: each balance of an artist with an active account of this
    gateway that is at least its currency's minimum and has no payout pending. Writes nothing.

    Raises ValueError for a malformed ``PAYOUT_MINIMUMS``.
    """
    minimums = payout_minimums(config)
    if not minimums:
        return []
    pending = (
        select(Payout.id)
        .where(
            Payout.artist_id == LedgerAccount.artist_id,
            Payout.currency == LedgerAccount.currency,
            Payout.status == PayoutStatus.PENDING,
        )
        .exists()
    )
    owed = -func.sum(LedgerEntry.amount)
    rows = session.execute(
        select(Artist.id, Artist.slug, Artist.name, LedgerAccount.currency, owed)
        .join(PayoutAccount, PayoutAccount.artist_id == Artist.id)
        .join(LedgerAccount, LedgerAccount.artist_id == Artist.id)
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(
            PayoutAccount.status == AccountStatus.ACTIVE,
            PayoutAccount.gateway == gateway_name,
            LedgerAccount.kind == AccountKind.LIABILITY,
            LedgerAccount.currency.in_(list(minimums)),
            ~pending,
        )
        .group_by(Artist.id, Artist.slug, Artist.name, LedgerAccount.id, LedgerAccount.currency)
        .order_by(Artist.id, LedgerAccount.currency)
    )
    return [
        PlannedPayout(artist_id, slug, name, currency, int(amount))
        for artist_id, slug, name, currency, amount in rows
        if int(amount) > 0 and int(amount) >= minimums[currency]
    ]


# A run's steps ------------------------------------------------------------------------------


def start_run(session: Session, now: datetime) -> PayoutRun:
    run = PayoutRun(started_at=now)
    session.add(run)
    session.flush()  # the run's id names its payouts
    return run


def pending_payout_ids(session: Session, gateway_name: str) -> list[int]:
    """Payouts whose transfer's outcome is not known yet (an earlier run was cut off, or the
    gateway did not answer), oldest first."""
    return list(
        session.scalars(
            select(Payout.id)
            .where(Payout.status == PayoutStatus.PENDING, Payout.gateway == gateway_name)
            .order_by(Payout.id)
        )
    )


def claim_payout(
    session: Session,
    config: Mapping[str, Any],
    run: PayoutRun,
    planned: PlannedPayout,
    gateway_name: str,
    now: datetime,
) -> Payout | None:
    """Write the pending payout of the artist's whole balance in the currency, and its ledger
    posting, if the balance (read under the payable account's lock) still reaches the minimum
    and no payout of it is pending. None otherwise.

    Raises IntegrityError if another transaction wrote a pending payout of this balance first.
    """
    minimum = payout_minimums(config).get(planned.currency)
    account = payout_account(session, planned.artist_id)
    if minimum is None or account is None or account.status is not AccountStatus.ACTIVE:
        return None
    payable = ledger.artist_payable(session, planned.artist_id, planned.currency)
    # Two runs at once: the second reads the balance after the first has paid it out.
    lock_row(session, LedgerAccount.__table__, payable.id)
    owed = -ledger.balance(session, payable).get(planned.currency, 0)
    if owed <= 0 or owed < minimum or _has_pending(session, planned.artist_id, planned.currency):
        return None
    payout = Payout(
        run_id=run.id, artist_id=planned.artist_id, account_id=account.id, gateway=gateway_name,
        currency=planned.currency, amount_minor=owed, status=PayoutStatus.PENDING, created_at=now,
    )  # fmt: skip
    session.add(payout)
    session.flush()  # the payout's id is its ledger key; a racing pending payout fails here
    clearing = ledger.account(
        session, clearing_code(gateway_name, planned.currency), AccountKind.ASSET, planned.currency
    )
    posted = ledger.post(
        session,
        idempotency_key=payout_key(payout.id),
        kind=PAYOUT,
        entries=[(payable, Money(owed, planned.currency)), (clearing, Money(-owed, planned.currency))],
        description=f"Payout {payout.id} to {planned.artist_name}",
        effective_at=now,
        details={"payout_id": payout.id, "artist_id": planned.artist_id, "run_id": run.id},
    )
    payout.ledger_transaction_id = posted.id
    return payout


def _has_pending(session: Session, artist_id: int, currency: str) -> bool:
    found = session.scalar(
        select(Payout.id).where(
            Payout.artist_id == artist_id,
            Payout.currency == currency,
            Payout.status == PayoutStatus.PENDING,
        )
    )
    return found is not None


def transfer_destination(session: Session, payout: Payout) -> str:
    """The external account a payout goes to."""
    return session.get_one(PayoutAccount, payout.account_id).external_id


def record_transfer(
    session: Session, payout_id: int, reference: str, run: PayoutRun, now: datetime
) -> bool:
    """Mark a pending payout paid by the transfer ``reference``; whether this call did."""
    result = session.execute(
        update(Payout)
        .where(Payout.id == payout_id, Payout.status == PayoutStatus.PENDING)
        .values(status=PayoutStatus.PAID, transfer_reference=reference, settled_at=now,
                run_id=run.id, failure_message=None)  # fmt: skip
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def record_refusal(
    session: Session, payout_id: int, message: str, run: PayoutRun, now: datetime
) -> bool:
    """Mark a pending payout failed (the gateway refused it) and reverse its posting, so the
    balance returns; whether this call did."""
    result = session.execute(
        update(Payout)
        .where(Payout.id == payout_id, Payout.status == PayoutStatus.PENDING)
        .values(status=PayoutStatus.FAILED, failure_message=message, settled_at=now,
                run_id=run.id)  # fmt: skip
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:
        return False
    _reverse_posting(session, session.get_one(Payout, payout_id), now, "failed")
    return True


def reverse_payout(session: Session, payout: Payout, reference: str, at: datetime) -> bool:
    """The transfer ``reference`` of a payout was reversed: mark it reversed and reverse its
    posting, so the balance returns; whether this call did. A payout still pending (its run
    has not recorded the transfer yet) is reversed too: the transfer was made."""
    result = session.execute(
        update(Payout)
        .where(
            Payout.id == payout.id,
            Payout.status.in_([PayoutStatus.PENDING, PayoutStatus.PAID]),
        )
        .values(status=PayoutStatus.REVERSED, transfer_reference=reference,
                settled_at=func.coalesce(Payout.settled_at, at))  # fmt: skip
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:
        return False
    session.refresh(payout)
    _reverse_posting(session, payout, at, "reversed")
    return True


def _reverse_posting(session: Session, payout: Payout, at: datetime, why: str) -> None:
    assert payout.ledger_transaction_id is not None  # written with its posting
    original = session.get_one(LedgerTransaction, payout.ledger_transaction_id)
    ledger.reverse(
        session,
        original,
        idempotency_key=reversal_key(payout.id),
        kind=PAYOUT_REVERSAL,
        description=f"Payout {payout.id} {why}",
        effective_at=at,
    )


def finish_run(session: Session, run: PayoutRun, now: datetime) -> PayoutRun:
    """Count what the run transferred and what failed, and close it."""
    counts = dict(
        session.execute(
            select(Payout.status, func.count())
            .where(Payout.run_id == run.id)
            .group_by(Payout.status)
        ).all()
    )
    run.paid_count = sum(counts.get(status, 0) for status in TRANSFERRED)
    run.failed_count = counts.get(PayoutStatus.FAILED, 0)
    run.finished_at = now
    return run


def payout_for_transfer(session: Session, payout_id: Any, reference: str) -> Payout | None:
    """The payout a gateway's transfer names (by its metadata, or by its reference)."""
    if str(payout_id or "").isdigit():
        found = session.get(Payout, int(payout_id))
        if found is not None:
            return found
    return session.scalar(select(Payout).where(Payout.transfer_reference == reference))


# Reading ------------------------------------------------------------------------------------


def artist_payouts(session: Session, artist_id: int, limit: int = 50) -> list[PayoutView]:
    """The artist's payouts, newest first."""
    rows = session.scalars(
        select(Payout)
        .where(Payout.artist_id == artist_id)
        .order_by(Payout.created_at.desc(), Payout.id.desc())
        .limit(limit)
    )
    return [_payout_view(payout) for payout in rows]


def _payout_view(payout: Payout) -> PayoutView:
    return PayoutView(
        id=payout.id,
        artist_id=payout.artist_id,
        amount_minor=payout.amount_minor,
        currency=payout.currency,
        status=payout.status.value,  # type: ignore[arg-type]
        created_at=payout.created_at,
        transfer_reference=payout.transfer_reference,
        failure_message=payout.failure_message,
    )


def recent_runs(session: Session, limit: int = 20) -> list[RunView]:
    """The latest payout runs, newest first."""
    runs = list(
        session.scalars(select(PayoutRun).order_by(PayoutRun.id.desc()).limit(limit))
    )
    totals: defaultdict[int, dict[str, int]] = defaultdict(dict)
    if runs:
        rows = session.execute(
            select(Payout.run_id, Payout.currency, func.sum(Payout.amount_minor))
            .where(Payout.run_id.in_([run.id for run in runs]), Payout.status.in_(TRANSFERRED))
            .group_by(Payout.run_id, Payout.currency)
        )
        for run_id, currency, total in rows:
            totals[run_id][currency] = int(total)
    return [
        RunView(
            id=run.id,
            started_at=run.started_at,
            finished_at=run.finished_at,
            dry_run=False,
            paid_count=run.paid_count,
            failed_count=run.failed_count,
            total_minor=totals.get(run.id, {}),
        )
        for run in runs
    ]


def failed_payouts(session: Session, limit: int = 50) -> list[tuple[PayoutView, str]]:
    """Payouts that failed or were reversed, newest first, with their artist's name."""
    rows = session.execute(
        select(Payout, Artist.name)
        .join(Artist, Artist.id == Payout.artist_id)
        .where(Payout.status.in_([PayoutStatus.FAILED, PayoutStatus.REVERSED]))
        .order_by(Payout.id.desc())
        .limit(limit)
    )
    return [(_payout_view(payout), name) for payout, name in rows]
