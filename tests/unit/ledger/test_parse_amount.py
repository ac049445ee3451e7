"""parse_amount: the one reader of amounts people type, checked by a bounded grammar."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.ledger.errors import AmountProblem, InvalidAmount
from app.ledger.money import (
    CURRENCY_EXPONENTS,
    MAX_AMOUNT_INTEGER_DIGITS,
    MAX_AMOUNT_TEXT_LENGTH,
    Money,
    parse_amount,
)

# One currency for each exponent Megabox knows.
CURRENCY_FOR_EXPONENT = {0: "JPY", 2: "USD", 3: "BHD"}


def _written(minor: int, digits: int, thousands: str, decimal: str) -> str:
    """``minor`` written as a person would: the given thousands and decimal separators."""
    whole, fraction = divmod(minor, 10**digits)
    grouped = f"{whole:,}".replace(",", thousands)
    return grouped + (f"{decimal}{fraction:0{digits}d}" if digits else "")


STYLES = {  # name -> (thousands separator, decimal separator)
    "1234.56": ("", "."),
    "1,234.56": (",", "."),
    "1.234,56": (".", ","),
    "1234,56": ("", ","),
}


def test_every_exponent_has_a_sample_currency():
    assert set(CURRENCY_FOR_EXPONENT) == set(CURRENCY_EXPONENTS.values())
    assert all(CURRENCY_EXPONENTS[code] == digits for digits, code in CURRENCY_FOR_EXPONENT.items())


@given(
    digits=st.sampled_from(sorted(CURRENCY_FOR_EXPONENT)),
    whole=st.integers(min_value=0, max_value=10**MAX_AMOUNT_INTEGER_DIGITS - 1),
    fraction=st.integers(min_value=0, max_value=999),
    style=st.sampled_from(sorted(STYLES)),
)
def test_amounts_written_in_any_style_read_back_to_the_same_minor_units(digits, whole, fraction, style):
    currency = CURRENCY_FOR_EXPONENT[digits]
    minor = whole * 10**digits + fraction % 10**digits
    thousands, decimal = STYLES[style]
    text = _written(minor, digits, thousands, decimal)
    # One family of texts is honestly ambiguous: in a three-decimal currency, "1,567" could be
    # 1.567 or 1567. Those are refused as ambiguous, never read as a different number.
    ambiguous = digits == 3 and decimal == "," and 1 <= whole <= 999
    if ambiguous:
        with pytest.raises(InvalidAmount) as refused:
            parse_amount(text, currency)
        assert refused.value.problem is AmountProblem.AMBIGUOUS
    else:
        assert parse_amount(text, currency) == minor


@given(
    whole=st.integers(min_value=0, max_value=10**MAX_AMOUNT_INTEGER_DIGITS - 1),
    fraction=st.integers(min_value=0, max_value=999),
    currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)),
)
def test_every_amount_megabox_shows_reads_back(whole, fraction, currency):
    digits = CURRENCY_EXPONENTS[currency]
    minor = whole * 10**digits + fraction % 10**digits
    assert parse_amount(Money(minor, currency).format_plain(), currency) == minor
    assert parse_amount(Money(minor, currency).format_plain(grouping=True), currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [("7,00", "USD", 700), ("1,200.00", "USD", 120000), ("1.200,00", "USD", 120000),
     ("1,2", "USD", 120), ("1,200", "JPY", 1200), ("1.200.000", "JPY", 1200000),
     ("1.200", "BHD", 1200), ("0,500", "BHD", 500), ("1234,567", "BHD", 1234567),
     ("  7.5\t", "EUR", 750), (".5", "USD", 50), ("7.", "USD", 700), ("¥1,200", "JPY", 1200),
     ("999,999,999,999.99", "USD", 99_999_999_999_999)],
)  # fmt: skip
def test_separators_are_read_the_way_people_mean_them(text, currency, minor):
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "problem"),
    [
        ("1e999999999", "USD", AmountProblem.NOT_AN_AMOUNT),
        ("1E5", "USD", AmountProblem.NOT_AN_AMOUNT),
        ("NaN", "USD", AmountProblem.NOT_AN_AMOUNT),
        ("Infinity", "USD", AmountProblem.NOT_AN_AMOUNT),
        ("0x10", "USD", AmountProblem.NOT_AN_AMOUNT),
        ("1_000", "USD", AmountProblem.NOT_AN_AMOUNT),
        ("1 200", "USD", AmountProblem.NOT_AN_AMOUNT),
        ("€5", "USD", AmountProblem.NOT_AN_AMOUNT),
        ("-5", "USD", AmountProblem.NEGATIVE),
        ("\u22125", "USD", AmountProblem.NEGATIVE),
        ("+5", "USD", AmountProblem.SIGNED),
        ("١٢", "USD", AmountProblem.NON_ASCII_DIGITS),
        ("１２", "USD", AmountProblem.NON_ASCII_DIGITS),
        ("7.001", "USD", AmountProblem.AMBIGUOUS),
        ("1,200", "USD", AmountProblem.AMBIGUOUS),
        ("1.200", "EUR", AmountProblem.AMBIGUOUS),
        ("1,200", "BHD", AmountProblem.AMBIGUOUS),
        ("0.001", "USD", AmountProblem.TOO_MANY_DECIMALS),
        ("7,5", "JPY", AmountProblem.TOO_MANY_DECIMALS),
        ("1,234.5678", "BHD", AmountProblem.TOO_MANY_DECIMALS),
        ("1,20,000", "USD", AmountProblem.BAD_GROUPING),
        ("1,200,00", "USD", AmountProblem.BAD_GROUPING),
        ("0,200,000", "USD", AmountProblem.BAD_GROUPING),
        ("1.2,3.4", "USD", AmountProblem.NOT_AN_AMOUNT),
        ("1" * (MAX_AMOUNT_INTEGER_DIGITS + 1), "USD", AmountProblem.TOO_LARGE),
        ("", "USD", AmountProblem.EMPTY),
        ("   ", "USD", AmountProblem.EMPTY),
        (".", "USD", AmountProblem.NOT_AN_AMOUNT),
    ],
)
def test_what_is_not_plainly_an_amount_is_refused_with_a_reason(text, currency, problem):
    with pytest.raises(InvalidAmount) as refused:
        parse_amount(text, currency)
    assert refused.value.problem is problem
    assert refused.value.message.endswith(".")  # a sentence for people, shown under the field


@pytest.mark.parametrize("text", ["9" * 100_000, " " * 100_000 + "7", "1" + "0" * (MAX_AMOUNT_TEXT_LENGTH)])
def test_long_input_is_refused_before_it_is_read(text):
    with pytest.raises(InvalidAmount) as refused:
        parse_amount(text, "USD")
    assert refused.value.problem is AmountProblem.TOO_LONG


def test_an_ambiguous_amount_says_how_to_write_it():
    with pytest.raises(InvalidAmount) as refused:
        parse_amount("1,200", "USD")
    assert refused.value.message == "'1,200' is ambiguous: it could mean 1200 or 1.2. Write 1200 or 1.20 instead."


def test_invalid_amount_is_a_value_error_and_a_422_domain_error():
    with pytest.raises(ValueError):
        parse_amount("abc", "USD")
    error = InvalidAmount(AmountProblem.EMPTY, "Enter an amount.")
    assert (error.status, error.code, str(error)) == (422, "invalid_amount", "Enter an amount.")
