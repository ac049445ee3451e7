import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.ledger.money import CURRENCY_EXPONENTS, Money, UnknownCurrency, parse_amount


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [("7", "USD", 700), ("7.5", "USD", 750), ("1,200.05", "USD", 120005), ("$3.10", "USD", 310),
     ("700", "JPY", 700), ("0", "EUR", 0), (" 12.30 ", "SEK", 1230)],
)  # fmt: skip
def test_parse_amount_reads_what_artists_type(text, currency, minor):
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(("text", "currency"), [("7.001", "USD"), ("7.5", "JPY"), ("abc", "USD"), ("nan", "USD"), ("", "USD")])
def test_parse_amount_rejects_what_is_not_an_amount(text, currency):
    with pytest.raises(ValueError):
        parse_amount(text, currency)


def test_unknown_currency_is_refused():
    with pytest.raises(UnknownCurrency):
        Money(100, "XXX")


def test_format_uses_symbols_and_minor_digits():
    assert Money(700, "USD").format() == "$7.00"
    assert Money(123456, "EUR").format() == "€1,234.56"
    assert Money(700, "JPY").format() == "¥700"
    assert Money(-5, "USD").format() == "-$0.05"
    assert Money(1230, "SEK").format() == "12.30 SEK"


def test_money_refuses_floats_and_mixed_currencies():
    with pytest.raises(TypeError):
        Money(7.0, "USD")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Money(1, "USD") + Money(1, "EUR")


@given(st.integers(min_value=0, max_value=10**12 - 1), st.sampled_from(sorted(CURRENCY_EXPONENTS)))
def test_plain_format_parses_back_to_the_same_minor_units(minor, currency):
    assert parse_amount(Money(minor, currency).format_plain(), currency) == minor
