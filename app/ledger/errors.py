"""Ledger errors: amounts that people typed and that are not amounts."""

from __future__ import annotations

import enum

from app.errors import InvalidInput


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
