"""Ledger errors: amounts that people typed and that are not amounts, and postings refused."""

from __future__ import annotations

import enum

from app.errors import DomainError, InvalidInput


class AmountProblem(enum.StrEnum):
    """Why a typed amount was refused; tests and callers may branch on it."""

    EMPTY = "empty"
    TOO_LONG = "too_long"
    NOT_AN_AMOUNT = "not_an_amount"
    NON_ASCII_DIGITS = "non_ascii_digits"
    NEGATIVE = "negative"
    SIGNED = "signed"
    BAD_GROUPING = "bad_grouping"
    AMBIGUOUS = "ambiguous"
    TOO_MANY_DECIMALS = "too_many_decimals"
    TOO_LARGE = "too_large"


class InvalidAmount(InvalidInput, ValueError):
    """A typed amount that cannot be read safely. ``message`` is written for the person typing.

    It is a ValueError too, so code that parses numbers can catch it the usual way.
    """

    code = "invalid_amount"

    def __init__(self, problem: AmountProblem, message: str) -> None:
        super().__init__(message, {"problem": problem.value})
        self.problem = problem


class LedgerError(DomainError):
    """A posting that would break a rule of the journal. Nothing has been written."""

    code = "ledger_error"
    status = 409


class UnbalancedTransaction(LedgerError):
    """A transaction with no entries, or whose entries do not sum to zero in each currency."""

    code = "unbalanced_transaction"
    status = 422


class CurrencyMismatch(LedgerError):
    """An entry in another currency than its account's."""

    code = "currency_mismatch"
    status = 422


class IdempotencyConflict(LedgerError):
    """The idempotency key was already used by a transaction with other entries."""

    code = "idempotency_conflict"


class OverReversal(LedgerError):
    """A reversal would undo more than is left of the original transaction."""

    code = "over_reversal"


class InvalidReversal(LedgerError):
    """A reversal asked for in a way that cannot be posted (see ``service.reverse``)."""

    code = "invalid_reversal"
    status = 422


class AccountMismatch(LedgerError):
    """An account code already exists with another kind, currency or artist."""

    code = "account_mismatch"


class AppendOnlyViolation(LedgerError):
    """Something tried to change or delete a posted ledger row; corrections are reversals."""

    code = "ledger_append_only"
