"""Money: an integer number of minor units and an ISO-4217 currency. Never a float."""

from __future__ import annotations

from dataclasses import dataclass

# ISO-4217 currencies Megabox accepts, with their number of minor-unit digits.
CURRENCY_EXPONENTS: dict[str, int] = {
    "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2,
    "HKD": 2, "HUF": 2, "ILS": 2, "INR": 2, "JPY": 0, "KRW": 0, "MXN": 2, "NOK": 2,
    "NZD": 2, "PLN": 2, "SEK": 2, "SGD": 2, "USD": 2, "ZAR": 2,
}  # fmt: skip

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$"}


class UnknownCurrency(ValueError):
    pass


def exponent(currency: str) -> int:
    """Minor-unit digits of a currency. Raises UnknownCurrency."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise UnknownCurrency(f"unknown currency {currency!r}") from None


@dataclass(frozen=True, slots=True)
class Money:
    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise TypeError("Money.minor must be an int")
        exponent(self.currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def _same_currency(self, other: Money) -> None:
        if self.currency != other.currency:
            raise ValueError(f"cannot mix {self.currency} and {other.currency}")

    def format_plain(self, grouping: bool = False) -> str:
        """The bare amount in major units: ``7.00``, ``700`` (JPY), ``-0.05``."""
        digits = exponent(self.currency)
        sign = "-" if self.minor < 0 else ""
        whole, frac = divmod(abs(self.minor), 10**digits)
        number = f"{whole:,}" if grouping else str(whole)
        return sign + number + (f".{frac:0{digits}d}" if digits else "")

    def format(self) -> str:
        """Human form, e.g. ``$7.00``, ``¥700``, ``12.50 SEK``."""
        plain = Money(abs(self.minor), self.currency).format_plain(grouping=True)
        sign = "-" if self.minor < 0 else ""
        symbol = CURRENCY_SYMBOLS.get(self.currency)
        return f"{sign}{symbol}{plain}" if symbol else f"{sign}{plain} {self.currency}"


def parse_amount(text: str, currency: str) -> int:
    """Parse a typed amount such as ``"7"``, ``"7.5"`` or ``"1,200.00"`` into minor units.

    Raises ValueError with a readable message for anything else, including too many decimals.
    """
    from decimal import Decimal, InvalidOperation

    digits = exponent(currency)
    cleaned = text.strip().replace(",", "")
    for symbol in CURRENCY_SYMBOLS.values():
        cleaned = cleaned.removeprefix(symbol)
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not an amount")
    minor = value.scaleb(digits)
    if minor != minor.to_integral_value():
        raise ValueError(f"{currency} amounts have at most {digits} decimals")
    return int(minor)
