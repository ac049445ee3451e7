"""Commerce schemas: the orders API's JSON, the buying forms, the cart and the studio's sales.

The sandbox's event format has its schema beside it, in ``app.commerce.sandbox``.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for
from marshmallow import EXCLUDE, ValidationError, fields, pre_load

from app.catalog.service import max_price_minor, price_problem
from app.commerce.models import ItemKind, OrderStatus
from app.ledger.errors import InvalidAmount
from app.ledger.money import Money, parse_amount
from app.validation import ID_RANGE, Length, OneOf, Range, Schema

# Longest page number a person types; anything longer is refused before int() sees it.
MAX_PAGE = 1_000_000


def _id(**kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=ID_RANGE, **kwargs)


# The orders API -----------------------------------------------------------------------------


class OrderLineSchema(Schema):
    release_id = _id(
        required=True,
        metadata={"description": "The release bought, or the one the track is on."},
    )
    track_id = _id(
        allow_none=True,
        load_default=None,
        metadata={"description": "A track sold separately; omit to buy the whole release."},
    )
    amount_minor = fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=Range(min=0, error="An amount cannot be negative."),
        metadata={
            "description": "What you pay, in minor units: name-your-price items take any amount "
            "from their minimum; omit for the listed price."
        },
    )


class OrderCreateSchema(Schema):
    items = fields.List(
        fields.Nested(OrderLineSchema),
        required=True,
        validate=Length(min=1, error="Name at least one item."),
    )


class OrderItemSchema(Schema):
    release_id = fields.Integer()
    track_id = fields.Integer(allow_none=True)
    kind = fields.Enum(ItemKind, by_value=True)
    title = fields.String()
    list_price_minor = fields.Integer(
        metadata={"description": "The price shown: fixed, or suggested."}
    )
    minimum_minor = fields.Integer()
    amount_minor = fields.Integer(metadata={"description": "What the buyer pays for the item."})
    extra_minor = fields.Integer(metadata={"description": "Paid above the minimum."})


class OrderSchema(Schema):
    id = fields.String(attribute="public_id")
    status = fields.Enum(OrderStatus, by_value=True)
    currency = fields.String()
    total_minor = fields.Integer()
    refunded_minor = fields.Integer()
    gateway = fields.String(metadata={"description": '"sandbox", "stripe", or "free".'})
    created_at = fields.DateTime()
    paid_at = fields.DateTime(allow_none=True)
    items = fields.List(fields.Nested(OrderItemSchema))
    url = fields.Function(
        lambda order: url_for("commerce.order_page", public_id=order.public_id, _external=True),
        metadata={"description": "The order's page on the site."},
    )


class OrderCreatedSchema(OrderSchema):
    checkout_url = fields.String(
        allow_none=True,
        metadata={"description": "Where the buyer pays; null when the order cost nothing."},
    )


# HTML forms ---------------------------------------------------------------------------------


class _FormSchema(Schema):
    """A posted form: blank fields are absent, and the CSRF token is not data."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _drop_blanks(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        return {
            key: value
            for key in data.keys()
            if key != "csrf_token" and (value := data.get(key, "").strip())
        }


class CartItemForm(_FormSchema):
    """Which item: a release, or a track of it."""

    release_id = fields.Integer(required=True, validate=ID_RANGE)
    track_id = fields.Integer(load_default=None, validate=ID_RANGE)


class CartAddForm(CartItemForm):
    amount = fields.String(
        load_default=None, validate=Length(max=64, error="That amount is too long.")
    )


class SandboxActionForm(_FormSchema):
    action = fields.String(required=True, validate=OneOf(("pay", "decline", "later")))


class PageArgs(_FormSchema):
    page = fields.Integer(load_default=1, validate=Range(min=1, max=MAX_PAGE))


def read_offered_amount(text: str, currency: str, minimum_minor: int) -> int:
    """An amount a buyer typed for a name-your-price item, in minor units.

    The friendly twin of the service's rule (which checks again when the order is made):
    raises ValidationError with a message for people, for text that is not an amount, an
    amount over ``MAX_PRICE_MINOR``, or one below ``minimum_minor``.
    """
    try:
        minor = parse_amount(text, currency)
    except InvalidAmount as exc:
        raise ValidationError(exc.message) from None
    problem = price_problem(minor, currency, max_price_minor(current_app.config), "An amount")
    if problem:
        raise ValidationError(problem)
    if minor < minimum_minor:
        raise ValidationError(f"Pay at least {Money(minimum_minor, currency).format()} for this.")
    return minor


# The cart, as kept in the Flask session -----------------------------------------------------


class CartLineSchema(Schema):
    """One line of the session's cart: ``{"release_id", "track_id", "amount_minor"}``."""

    class Meta:
        unknown = EXCLUDE

    release_id = _id(required=True)
    track_id = _id(allow_none=True, load_default=None)
    amount_minor = fields.Integer(strict=True, allow_none=True, load_default=None,
                                  validate=Range(min=0))  # fmt: skip
    currency = fields.String(allow_none=True, load_default=None, validate=Length(equal=3))


# The studio's sales feed --------------------------------------------------------------------


SALE_DATE_FORMAT = "%Y-%m-%d %H:%M UTC"
SALE_STATUS_LABELS = {
    OrderStatus.PAID: "Paid",
    OrderStatus.PARTIALLY_REFUNDED: "Partly refunded",
    OrderStatus.REFUNDED: "Refunded",
    OrderStatus.DISPUTED: "Disputed",
}


def _money(attribute: str) -> fields.Function:
    return fields.Function(
        lambda item: Money(getattr(item, attribute), item.order.currency).format()
    )


class SaleSchema(Schema):
    """An artist's sold item as the studio shows it (amounts formatted for people).

    Dumps ``service.artist_sales`` rows: items of orders that were paid, so ``paid_at`` is set.
    """

    id = fields.Integer()
    title = fields.String()
    kind = fields.Enum(ItemKind, by_value=True)
    amount = _money("amount_minor")
    artist_share = _money("artist_share_minor")
    currency = fields.Function(lambda item: item.order.currency)
    amount_minor = fields.Integer()
    artist_share_minor = fields.Integer()
    paid_at = fields.Function(lambda item: item.order.paid_at.isoformat())
    date = fields.Function(lambda item: item.order.paid_at.strftime(SALE_DATE_FORMAT))
    status = fields.Function(lambda item: item.order.status.value)
    status_label = fields.Function(lambda item: SALE_STATUS_LABELS[item.order.status])
