"""Money: an integer number of minor units and an ISO-4217 currency. Never a float.

``parse_amount`` reads amounts that people type into forms; see its docstring for the grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.ledger.errors import AmountProblem, InvalidAmount

# ISO-4217 currencies Megabox accepts, with their number of minor-unit digits (the ISO
# exponent): 2 for most, 0 for JPY or ISK, 3 for the dinars of Bahrain, Jordan, Kuwait,
# Tunisia and the Omani rial.
CURRENCY_EXPONENTS: dict[str, int] = {
    "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CZK": 2, "DKK": 2,
    "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "ILS": 2, "INR": 2, "ISK": 0, "JOD": 3,
    "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PLN": 2,
    "SEK": 2, "SGD": 2, "TND": 3, "USD": 2, "ZAR": 2,
}  # fmt: skip

# Typed amounts. The length cap is checked before anything else, so a pasted megabyte costs
# nothing; the longest amount the grammar admits, "999,999,999,999.999", is 19 characters.
MAX_AMOUNT_TEXT_LENGTH = 64
# Digits before the decimals: 999,999,999,999 is far above any price limit.
MAX_AMOUNT_INTEGER_DIGITS = 12
THOUSANDS_GROUP_DIGITS = 3
_SEPARATORS = ".,"
_AMOUNT_TEXT = re.compile(r"[0-9.,]+")
_MINUS_SIGNS = "-\u2212\u2012\u2013\ufe63\uff0d"

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
    """Read an amount a person typed (``"7.00"``, ``"7,00"``, ``"1.200,00"``) as minor units.

    The text is checked against a small grammar before any number is built, so its cost is
    bounded whatever is pasted: at most ``MAX_AMOUNT_TEXT_LENGTH`` characters (checked first),
    surrounding whitespace, optionally the currency's own symbol (``$7`` for USD), then the
    ASCII digits 0-9 with ``.`` or ``,`` as separators. There is no sign, exponent, NaN or
    infinity, and digits of other scripts (``١٢``) are refused rather than guessed at.

    Separators:

    - With both ``.`` and ``,``, the last one is the decimal separator and the other groups
      thousands: ``1,200.00`` and ``1.200,00`` are both 1200.00.
    - One kind used several times groups thousands: ``1,200,000``.
    - One separator used once is a decimal separator (``7,00`` is 7.00, ``1,2`` is 1.20)
      unless exactly three digits follow it and the part before it could be a thousands
      group. ``1,200`` could be 1.2 or 1200, so it is refused, never guessed. Two such
      cases are not ambiguous: in a currency without decimals (JPY) the separator can only group
      thousands, and in a three-decimal currency (BHD) ``1.200`` is 1.200 as
      ``Money.format_plain`` writes it, so every amount Megabox shows can be typed back.

    Thousands groups hold exactly three digits. The whole part has at most
    ``MAX_AMOUNT_INTEGER_DIGITS`` digits and the fraction at most the currency's exponent.

    Raises UnknownCurrency, or InvalidAmount (a ValueError) whose message says how to write it.
    """
    if len(text) > MAX_AMOUNT_TEXT_LENGTH:
        raise InvalidAmount(
            AmountProblem.TOO_LONG,
            f"An amount is at most {MAX_AMOUNT_TEXT_LENGTH} characters long.",
        )
    digits = exponent(currency)
    body = text.strip()
    symbol = CURRENCY_SYMBOLS.get(currency)
    if symbol:
        body = body.removeprefix(symbol).lstrip()
    example = Money(7 * 10**digits, currency).format_plain()
    if not body:
        raise InvalidAmount(AmountProblem.EMPTY, f"Enter an amount, like {example}.")
    if body[0] in _MINUS_SIGNS:
        raise InvalidAmount(AmountProblem.NEGATIVE, "An amount cannot be negative.")
    if body[0] == "+":
        raise InvalidAmount(
            AmountProblem.SIGNED, f"Write the amount without a sign, like {example}."
        )
    if not _AMOUNT_TEXT.fullmatch(body):
        if any(char.isdigit() for char in body if not char.isascii()):
            raise InvalidAmount(
                AmountProblem.NON_ASCII_DIGITS, "Write the amount with the digits 0-9."
            )
        raise InvalidAmount(
            AmountProblem.NOT_AN_AMOUNT,
            f"'{body}' is not an amount. "
            f"Use digits and at most one decimal separator, like {example}.",
        )
    whole, fraction = _split_amount(body, digits)
    if not whole and not fraction:
        raise InvalidAmount(
            AmountProblem.NOT_AN_AMOUNT, f"'{body}' is not an amount. Write it like {example}."
        )
    if len(fraction) > digits:
        if digits == 0:
            message = f"{currency} amounts are whole numbers, without decimals."
        else:
            message = f"{currency} amounts have at most {digits} decimals."
        raise InvalidAmount(AmountProblem.TOO_MANY_DECIMALS, message)
    if len(whole) > MAX_AMOUNT_INTEGER_DIGITS:
        raise InvalidAmount(
            AmountProblem.TOO_LARGE,
            f"An amount has at most {MAX_AMOUNT_INTEGER_DIGITS} digits before the decimals.",
        )
    # Both parts are short runs of ASCII digits now, so int() is cheap and exact.
    return int(whole or "0") * 10**digits + int(fraction.ljust(digits, "0") or "0")


def _split_amount(body: str, digits: int) -> tuple[str, str]:
    """Split grammar-checked text into its whole digits and its decimal digits.

    Raises InvalidAmount for misplaced or ambiguous separators.
    """
    separators = [char for char in body if char in _SEPARATORS]
    if not separators:
        return body, ""
    decimal = separators[-1]
    if len(set(separators)) == 2:
        if separators.count(decimal) != 1:
            raise InvalidAmount(
                AmountProblem.NOT_AN_AMOUNT,
                f"'{body}' mixes separators. "
                "Use one decimal separator, after any thousands separators.",
            )
        head, fraction = body.split(decimal)
        return _ungroup(head, body), fraction
    if len(separators) > 1:
        return _ungroup(body, body), ""
    head, fraction = body.split(decimal)
    if len(fraction) == THOUSANDS_GROUP_DIGITS and _could_lead_a_group(head):
        if digits == 0:
            return head + fraction, ""
        if not (digits == THOUSANDS_GROUP_DIGITS and decimal == "."):
            as_decimal = f"{head}.{fraction}".rstrip("0").rstrip(".")
            raise InvalidAmount(
                AmountProblem.AMBIGUOUS,
                f"'{body}' is ambiguous: it could mean {head}{fraction} or {as_decimal}. "
                f"Write {head}{fraction} or {head}.{fraction[:digits]} instead.",
            )
    return head, fraction


def _could_lead_a_group(part: str) -> bool:
    return 1 <= len(part) <= THOUSANDS_GROUP_DIGITS and part[0] != "0"


def _ungroup(grouped: str, body: str) -> str:
    """The digits of ``1,234,567``. Raises InvalidAmount unless each later group has 3 digits."""
    separator = next(char for char in grouped if char in _SEPARATORS)
    first, *rest = grouped.split(separator)
    misplaced = any(len(group) != THOUSANDS_GROUP_DIGITS for group in rest)
    if misplaced or not _could_lead_a_group(first):
        raise InvalidAmount(
            AmountProblem.BAD_GROUPING,
            f"'{body}' has misplaced thousands separators: "
            "they go every three digits, as in 1,234,567.",
        )
    return first + "".join(rest)
