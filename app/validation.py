"""Validation messages written for people, for every schema that reads what people send.

marshmallow's own wording ("Missing data for required field.", "Length must be between 1 and
120.") is written for programmers. A schema that loads input derives from ``Schema`` here,
which gives each of its fields plain defaults for the messages the schema did not choose
itself ("Fill in this field.", "Enter a whole number."), and it uses ``Length``, ``Range`` and
``OneOf`` from here, whose messages say what to do ("Use 1 to 120 characters.").

Money limits are not a ``Range``: a price is checked with its currency in hand and its limit
written as money (see ``app.catalog.service.price_problem``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from marshmallow import Schema as MarshmallowSchema
from marshmallow import fields, validate

from app.api.helpers import SQL_ID_MAX

FieldT = TypeVar("FieldT", bound=fields.Field)

REQUIRED = "Fill in this field."
EMAIL = "Enter an e-mail address like name@example.com."
URL = "Enter a full web address, like https://example.com/page."

# By field class: what to say instead of marshmallow's default for that message key. A field
# gets the entries of every class it derives from, the most specific winning.
FIELD_MESSAGES: dict[type[fields.Field], dict[str, str]] = {
    fields.Field: {
        "required": REQUIRED,
        "null": REQUIRED,
        "validator_failed": "That value is not allowed here.",
    },
    fields.String: {"invalid": "Enter text.", "invalid_utf8": "Enter text."},
    fields.Email: {"invalid": EMAIL},
    fields.Url: {"invalid": URL},
    fields.Number: {
        "invalid": "Enter a number.",
        "too_large": "Enter a smaller number.",
        "special": "Enter a number (not NaN or infinity).",
    },
    fields.Integer: {"invalid": "Enter a whole number."},
    fields.Boolean: {"invalid": "Use true or false."},
    fields.Date: {
        "invalid": "Enter a date like 2026-11-22.",
        "invalid_awareness": "Enter a date like 2026-11-22.",
    },
    fields.DateTime: {
        "invalid": "Enter a date and time like 2026-11-22T18:30:00Z.",
        "invalid_awareness": "Enter a date and time like 2026-11-22T18:30:00Z.",
    },
    fields.List: {"invalid": "Send a list."},
    fields.Tuple: {"invalid": "Send a list."},
    fields.Mapping: {"invalid": "Send an object with named fields."},
    fields.Nested: {"type": "Send an object with named fields."},
    fields.Enum: {"unknown": "Choose one of: {choices}."},
}
# Fields held inside another field: a list's items, a dict's keys and values, an enum's value.
_INNER_FIELD_ATTRIBUTES = ("inner", "key_field", "value_field", "field")


def _number(value: Any) -> str:
    """``2147483647`` as "2,147,483,647"; anything that is not a number as it is."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _merged(field_class: type, table: dict[type, dict[str, str]] | None) -> dict[str, str]:
    """Messages by key over ``field_class``'s ancestors, the most specific last."""
    merged: dict[str, str] = {}
    for ancestor in reversed(field_class.__mro__):
        if table is not None:
            merged.update(table.get(ancestor, {}))
        elif ancestor.__module__ == fields.__name__:
            merged.update(getattr(ancestor, "default_error_messages", {}))
    return merged


def with_human_messages(field: FieldT) -> FieldT:
    """Give ``field`` (and the fields inside it) plain messages where it has marshmallow's.

    A message the field was given, or that a custom field class defines, is kept. Returns
    the field, so a field used on its own reads ``with_human_messages(fields.Url()).deserialize``.
    """
    library_defaults = _merged(type(field), None)
    human = _merged(type(field), FIELD_MESSAGES)
    for key, message in list(field.error_messages.items()):
        if key in human and message == library_defaults.get(key):
            field.error_messages[key] = human[key]
    # Email and Url copy their "invalid" message into a validator when they are made.
    for validator in field.validators:
        if isinstance(validator, validate.Email | validate.URL) and validator.error == validator.default_message:
            validator.error = field.error_messages["invalid"]
    for name in _INNER_FIELD_ATTRIBUTES:
        inner = getattr(field, name, None)
        if isinstance(inner, fields.Field):
            with_human_messages(inner)
    for inner in getattr(field, "tuple_fields", ()):
        with_human_messages(inner)
    return field


class Schema(MarshmallowSchema):
    """A marshmallow schema whose fields speak plainly (see ``FIELD_MESSAGES``)."""

    error_messages = {"type": "Send an object with named fields."}

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        with_human_messages(field_obj)


class Length(validate.Length):
    """``validate.Length`` saying what to type: "Use 1 to 120 characters.".

    ``unit`` names what is counted (singular), "character" unless the value is a list.
    """

    def __init__(
        self,
        min: int | None = None,  # noqa: A002 (marshmallow's names)
        max: int | None = None,  # noqa: A002
        *,
        equal: int | None = None,
        error: str | None = None,
        unit: str = "character",
    ) -> None:
        super().__init__(min, max, equal=equal, error=error)
        self.unit = unit
        self.message_equal = f"Use exactly {self._count(equal)}."
        self.message_max = f"Use at most {self._count(max)}."
        self.message_all = f"Use {_number(min)} to {self._count(max)}."
        self.message_min = REQUIRED if min == 1 else f"Use at least {self._count(min)}."

    def _count(self, amount: int | None) -> str:
        return f"{_number(amount)} {self.unit}{'' if amount == 1 else 's'}"

    def _format_error(self, value: Any, message: str) -> str:
        if self.error is None:
            return message
        return self.error.format(input=value, min=_number(self.min), max=_number(self.max),
                                 equal=_number(self.equal))  # fmt: skip


class Range(validate.Range):
    """``validate.Range`` saying what to enter: "Enter a number from 1 to 100."."""

    def __init__(
        self,
        min: Any = None,  # noqa: A002 (marshmallow's names)
        max: Any = None,  # noqa: A002
        *,
        min_inclusive: bool = True,
        max_inclusive: bool = True,
        error: str | None = None,
    ) -> None:
        super().__init__(min, max, min_inclusive=min_inclusive, max_inclusive=max_inclusive, error=error)
        low = f"of at least {_number(min)}" if min_inclusive else f"above {_number(min)}"
        high = f"of at most {_number(max)}" if max_inclusive else f"below {_number(max)}"
        self.message_min = f"Enter a number {low}."
        self.message_max = f"Enter a number {high}."
        if min_inclusive and max_inclusive:
            self.message_all = f"Enter a number from {_number(min)} to {_number(max)}."
        else:
            self.message_all = f"Enter a number {low} and {high.removeprefix('of ')}."

    def _format_error(self, value: Any, message: str) -> str:
        if self.error is None:
            return message
        return self.error.format(input=value, min=_number(self.min), max=_number(self.max))


class OneOf(validate.OneOf):
    """``validate.OneOf`` saying "Choose one of: album, single, ep."."""

    default_message = "Choose one of: {choices}."


ID_RANGE = Range(min=1, max=SQL_ID_MAX, error="Use an id from 1 to {max}.")
