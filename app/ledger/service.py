"""The journal's rules: accounts, posting, reversals and balances.

Functions take the session and never commit; the caller's unit of work does. Nothing here
updates or deletes a ledger row (see ``app.ledger.models`` for the sign convention and the
append-only guard). Uniqueness is the database's: account codes and idempotency keys are
unique keys, written with ``INSERT ... ON CONFLICT DO NOTHING`` so that of two concurrent
writers one inserts and the other finds its row (``app.database.insert_unless_exists``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import BigInteger, Integer, Select, String, bindparam, func, insert, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.database import insert_unless_exists, int_array, lock_row
from app.ledger.allocation import allocate
from app.ledger.errors import (
    AccountMismatch,
    CurrencyMismatch,
    IdempotencyConflict,
    InvalidReversal,
    OverReversal,
    UnbalancedTransaction,
)
from app.ledger.models import (
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    artist_payable_code,
)
from app.ledger.money import Money, exponent
from app.timestamps import utcnow

if TYPE_CHECKING:
    from app.catalog.models import Artist

REVERSAL_KIND = "reversal"

_Signature = tuple[str, int | None, list[tuple[int, str, int]]]


class AccountRef(Protocol):
    """What posting reads of an account: a ``LedgerAccount``, or a row of its columns (a
    close posting to thousands of accounts need not load them as objects)."""

    @property
    def id(self) -> int: ...

    @property
    def code(self) -> str: ...

    @property
    def currency(self) -> str: ...


# Accounts ---------------------------------------------------------------------------------


def account(
    session: Session, code: str, kind: AccountKind, currency: str, artist_id: int | None = None
) -> LedgerAccount:
    """The account called ``code``, created if it does not exist yet, also under a race.

    Raises UnknownCurrency, or AccountMismatch when ``code`` exists with another kind,
    currency or artist.
    """
    exponent(currency)
    found = _account_by_code(session, code)
    if found is None:
        session.execute(
            insert_unless_exists(session, LedgerAccount, ["code"]).values(
                code=code, kind=kind, currency=currency, artist_id=artist_id, created_at=utcnow()
            )
        )
        found = _account_by_code(session, code)
        assert found is not None  # inserted just now, or by the writer that won the race
    if (found.kind, found.currency, found.artist_id) != (kind, currency, artist_id):
        raise AccountMismatch(
            f"Ledger account {code} exists with another kind, currency or artist.",
            {"code": code},
        )
    return found


def artist_payable(session: Session, artist_id: int, currency: str) -> LedgerAccount:
    """What the platform owes an artist in ``currency`` (a liability). Raises UnknownCurrency."""
    return account(
        session,
        artist_payable_code(artist_id, currency),
        AccountKind.LIABILITY,
        currency,
        artist_id,
    )


def _account_by_code(session: Session, code: str) -> LedgerAccount | None:
    return session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))


# Posting ----------------------------------------------------------------------------------


def post(
    session: Session,
    *,
    idempotency_key: str,
    kind: str,
    entries: Sequence[tuple[AccountRef, Money]],
    description: str = "",
    reverses: LedgerTransaction | None = None,
    effective_at: datetime | None = None,
    details: Mapping[str, Any] | None = None,
) -> LedgerTransaction:
    """Post a transaction of ``entries`` (debit positive, credit negative) once per key.

    The entries are checked before anything is written. A second post under the same key
    returns the first transaction and writes nothing, provided it has the same kind, reversed
    transaction and entries (as a multiset of account and amount); its description, times and
    details are not compared, so a redelivered event may carry a later timestamp.

    Raises UnbalancedTransaction (no entries, or a currency whose amounts do not sum to zero),
    CurrencyMismatch (an entry in another currency than its account), IdempotencyConflict (the
    key was used for other entries), and ValueError for a naive ``effective_at``.
    """
    _check_balanced(entries)
    if effective_at is not None and effective_at.tzinfo is None:
        raise ValueError("effective_at must be timezone-aware")
    if any(ledger_account.id is None for ledger_account, _ in entries):
        session.flush()  # a pending account needs its id before entries can name it
    wanted = _signature(kind, reverses.id if reverses else None, entries)
    now = utcnow()
    new_id = session.execute(
        insert_unless_exists(session, LedgerTransaction, ["idempotency_key"])
        .values(
            idempotency_key=idempotency_key,
            kind=kind,
            description=description,
            reverses_id=reverses.id if reverses else None,
            created_at=now,
            effective_at=effective_at or now,
            details=dict(details or {}),
        )
        .returning(LedgerTransaction.id)
    ).scalar_one_or_none()
    if new_id is None:
        return _existing(session, idempotency_key, wanted)
    _insert_entries(session, new_id, entries)
    if reverses is not None:
        session.expire(reverses, ["reversals"])
    return session.get_one(LedgerTransaction, new_id)


def _insert_entries(
    session: Session, transaction_id: int, entries: Sequence[tuple[AccountRef, Money]]
) -> None:
    """The transaction's entries: on PostgreSQL one INSERT ... SELECT over arrays (a period's
    close posts thousands), elsewhere an executemany."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(
            insert(LedgerEntry),
            [
                {"transaction_id": transaction_id, "account_id": ledger_account.id,
                 "amount": money.minor, "currency": money.currency}
                for ledger_account, money in entries
            ],
        )  # fmt: skip
        return
    given = (
        func.unnest(
            int_array("accounts", [ledger_account.id for ledger_account, _ in entries], Integer),
            int_array("amounts", [money.minor for _, money in entries], BigInteger),
            bindparam("currencies", [money.currency for _, money in entries], type_=ARRAY(String)),
        )
        .table_valued("account_id", "amount", "currency")
        .render_derived(name="given")
    )
    rows = select(
        literal(transaction_id, Integer), given.c.account_id, given.c.amount, given.c.currency
    )
    columns = ["transaction_id", "account_id", "amount", "currency"]
    session.execute(insert(LedgerEntry).from_select(columns, rows))


def _check_balanced(entries: Sequence[tuple[AccountRef, Money]]) -> None:
    """Raises UnbalancedTransaction or CurrencyMismatch."""
    totals: defaultdict[str, int] = defaultdict(int)
    for ledger_account, money in entries:
        if money.currency != ledger_account.currency:
            raise CurrencyMismatch(
                f"An entry in {money.currency} cannot go to a {ledger_account.currency} account.",
                {"account": ledger_account.code},
            )
        totals[money.currency] += money.minor
    if not entries:
        raise UnbalancedTransaction("A ledger transaction needs entries.")
    unbalanced = {currency: total for currency, total in totals.items() if total}
    if unbalanced:
        raise UnbalancedTransaction(
            "A ledger transaction's entries must sum to zero in each currency.",
            {"totals": unbalanced},
        )


def _signature(
    kind: str, reverses_id: int | None, entries: Sequence[tuple[AccountRef, Money]]
) -> _Signature:
    lines = sorted((a.id, money.currency, money.minor) for a, money in entries)
    return kind, reverses_id, lines


def _existing(session: Session, idempotency_key: str, wanted: _Signature) -> LedgerTransaction:
    """The transaction already posted under the key. Raises IdempotencyConflict."""
    existing = session.scalars(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == idempotency_key)
    ).one()
    posted = sorted((e.account_id, e.currency, e.amount) for e in existing.entries)
    if (existing.kind, existing.reverses_id, posted) != wanted:
        raise IdempotencyConflict(
            "This idempotency key was already used for a different ledger transaction.",
            {"idempotency_key": idempotency_key, "transaction_id": existing.id},
        )
    return existing


# Reversals --------------------------------------------------------------------------------


def reverse(
    session: Session,
    original: LedgerTransaction,
    *,
    idempotency_key: str,
    fraction: Fraction | None = None,
    amount: Money | None = None,
    kind: str = REVERSAL_KIND,
    description: str = "",
    effective_at: datetime | None = None,
) -> LedgerTransaction:
    """Post a transaction that undoes ``original``, wholly or in part, linked by ``reverses_id``.

    - Neither ``fraction`` nor ``amount``: reverse everything not yet reversed.
    - ``fraction`` (0 < fraction <= 1) of the original: in each currency, the original's debit
      total times the fraction, rounded like ``allocate`` (a half rounds up).
    - ``amount``: that much of the original's debits in the amount's currency (a partial
      refund of 3.00 on a 10.00 sale).

    The reversed amount is spread over each side's accounts in proportion to what is left of
    them (largest remainder, ties to the account the original named first), so partial
    reversals never take an account past its original amount and the last one reverses
    exactly what is left. Reversals of one original are serialised by a lock on it.

    A second call under the same key returns the reversal already posted.

    Raises InvalidReversal (both fraction and amount, a fraction outside (0, 1], an amount
    that is not positive or in a currency the original lacks, an original that is itself a
    reversal, or a part that rounds to nothing), OverReversal (more than is left), and
    IdempotencyConflict (the key was used for something else).
    """
    _check_reversal_request(original, fraction, amount)
    # Two reversals of one original must not both see the same remainder.
    lock_row(session, LedgerTransaction.__table__, original.id)
    original_nets = _nets(session, original, include_reversals=False)
    original_totals = _debit_totals(original_nets)
    requested = _requested_totals(original_totals, fraction, amount)
    existing = session.scalar(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == idempotency_key)
    )
    if existing is not None:
        already = _debit_totals(_nets(session, existing, include_reversals=False), negate=True)
        same_request = requested is None or _nonzero(requested) == _nonzero(already)
        if existing.reverses_id != original.id or not same_request:
            raise IdempotencyConflict(
                "This idempotency key was already used for a different ledger transaction.",
                {"idempotency_key": idempotency_key, "transaction_id": existing.id},
            )
        return existing
    remaining = _remaining(original_nets, _nets(session, original, include_reversals=True))
    left = _debit_totals(remaining)
    targets = requested if requested is not None else left
    if not any(left.values()):
        raise OverReversal("This transaction has been reversed in full already.")
    over = {c: t for c, t in targets.items() if t > left.get(c, 0)}
    if over:
        raise OverReversal(
            "A reversal cannot undo more than is left of the original transaction.",
            {"requested": over, "left": left},
        )
    entries = _reversal_entries(session, remaining, targets)
    if not entries:
        raise InvalidReversal("This reversal rounds to nothing.")
    return post(
        session,
        idempotency_key=idempotency_key,
        kind=kind,
        entries=entries,
        description=description,
        reverses=original,
        effective_at=effective_at,
    )


def _check_reversal_request(
    original: LedgerTransaction, fraction: Fraction | None, amount: Money | None
) -> None:
    """Raises InvalidReversal."""
    if original.reverses_id is not None:
        raise InvalidReversal("A reversal cannot be reversed; post a new transaction instead.")
    if fraction is not None and amount is not None:
        raise InvalidReversal("Reverse either a fraction or an amount, not both.")
    if fraction is not None and not 0 < fraction <= 1:
        raise InvalidReversal("A reversed fraction is more than 0 and at most 1.")
    if amount is not None and amount.minor <= 0:
        raise InvalidReversal("A reversed amount is positive.")


_Nets = dict[tuple[int, str], int]


def _nets(session: Session, transaction: LedgerTransaction, *, include_reversals: bool) -> _Nets:
    """Net amount per (account, currency) of the transaction (and its reversals), in the
    order the transaction first named each account."""
    owner = LedgerEntry.transaction_id == transaction.id
    if include_reversals:
        owner = owner | LedgerEntry.transaction_id.in_(
            select(LedgerTransaction.id).where(LedgerTransaction.reverses_id == transaction.id)
        )
    rows = session.execute(
        select(LedgerEntry.account_id, LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .where(owner)
        .group_by(LedgerEntry.account_id, LedgerEntry.currency)
        .order_by(func.min(LedgerEntry.id))
    )
    return {(account_id, currency): int(net) for account_id, currency, net in rows}


def _debit_totals(nets: _Nets, *, negate: bool = False) -> dict[str, int]:
    """Per currency, the sum of the debit (positive) nets; of the credit ones if ``negate``."""
    totals: defaultdict[str, int] = defaultdict(int)
    for (_, currency), net in nets.items():
        signed = -net if negate else net
        totals[currency] += max(signed, 0)
    return dict(totals)


def _nonzero(totals: Mapping[str, int]) -> dict[str, int]:
    return {currency: total for currency, total in totals.items() if total}


def _requested_totals(
    original_totals: dict[str, int], fraction: Fraction | None, amount: Money | None
) -> dict[str, int] | None:
    """Per currency, how much to reverse; None for "everything left". Raises InvalidReversal."""
    if amount is not None:
        if amount.currency not in original_totals:
            raise InvalidReversal(f"The original transaction has no {amount.currency} entries.")
        return {currency: 0 for currency in original_totals} | {amount.currency: amount.minor}
    if fraction is not None:
        share = Fraction(fraction)
        return {
            currency: allocate(total, [share.numerator, share.denominator - share.numerator])[0]
            for currency, total in original_totals.items()
        }
    return None


def _remaining(original_nets: _Nets, nets_after_reversals: _Nets) -> _Nets:
    """What is left of each of the original's accounts, never past zero or of the other sign."""
    remaining: _Nets = {}
    for key, original in original_nets.items():
        left = nets_after_reversals.get(key, 0)
        same_side = (left > 0) == (original > 0)
        remaining[key] = left if same_side and abs(left) <= abs(original) else 0
    return remaining


def _reversal_entries(
    session: Session, remaining: _Nets, targets: Mapping[str, int]
) -> list[tuple[LedgerAccount, Money]]:
    entries: list[tuple[LedgerAccount, Money]] = []
    for currency, target in targets.items():
        if target == 0:
            continue
        for side in (1, -1):
            keys = [k for k, net in remaining.items() if k[1] == currency and net * side > 0]
            parts = allocate(target, [remaining[k] * side for k in keys])
            for (account_id, _), part in zip(keys, parts, strict=True):
                if part:
                    entries.append(
                        (session.get_one(LedgerAccount, account_id), Money(-side * part, currency))
                    )
    return entries


# Balances ---------------------------------------------------------------------------------


def balance(
    session: Session,
    account_or_artist: LedgerAccount | Artist,
    currency: str | None = None,
    at: datetime | None = None,
) -> dict[str, int]:
    """Signed balance per currency (debit positive) of an account, or of an artist's payables.

    ``at`` counts the transactions effective at or before it. A currency appears once it has
    an entry. Raises ValueError for a naive ``at``.
    """
    if isinstance(account_or_artist, LedgerAccount):
        accounts = {account_or_artist.id: account_or_artist.currency}
    else:
        accounts = _artist_payables(session, account_or_artist.id)
    if currency is not None:
        accounts = {id_: code for id_, code in accounts.items() if code == currency}
    return _sums(session, accounts, at)


def artist_balances(session: Session, artist_id: int, at: datetime | None = None) -> dict[str, int]:
    """What the platform owes the artist per currency, positive when it owes them money.

    Raises ValueError for a naive ``at``.
    """
    sums = _sums(session, _artist_payables(session, artist_id), at)
    # Payables are liabilities: a credit (negative) balance is money owed to the artist.
    return {currency: -total for currency, total in sums.items()}


def _artist_payables(session: Session, artist_id: int) -> dict[int, str]:
    """The artist's payable accounts: id -> currency (one per currency, a tiny query)."""
    rows = session.execute(
        select(LedgerAccount.id, LedgerAccount.currency).where(
            LedgerAccount.artist_id == artist_id, LedgerAccount.kind == AccountKind.LIABILITY
        )
    )
    return {account_id: currency for account_id, currency in rows}


def _sums(session: Session, accounts: Mapping[int, str], at: datetime | None) -> dict[str, int]:
    """Per currency, the sum of the entries on ``accounts`` (id -> currency).

    The accounts are named by id, not joined: the planner then sees exactly which entries it
    sums (a join made PostgreSQL guess an average account's size and pick a slower plan).
    """
    if not accounts:
        if at is not None and at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        return {}
    query = (
        select(LedgerEntry.account_id, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.account_id.in_(list(accounts)))
        .group_by(LedgerEntry.account_id)
    )
    totals: defaultdict[str, int] = defaultdict(int)
    for account_id, total in _run_at(session, query, at).items():
        totals[accounts[account_id]] += total
    return dict(totals)


def _run_at(session: Session, query: Select[Any], at: datetime | None) -> dict[Any, int]:
    """Run a grouped sum over the transactions effective at or before ``at``.

    Raises ValueError for a naive ``at``.
    """
    if at is not None:
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        query = query.join(LedgerTransaction, LedgerEntry.transaction).where(
            LedgerTransaction.effective_at <= at
        )
    # PostgreSQL sums BIGINT as NUMERIC; the totals are whole minor units either way.
    return {key: int(total) for key, total in session.execute(query)}
