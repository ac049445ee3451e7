"""The statements' JSON: what /api/v1 answers with (money in signed minor units)."""

from __future__ import annotations

from marshmallow import fields

from app.validation import Schema


class StatementSummarySchema(Schema):
    period = fields.String(required=True, metadata={"example": "2026-11"})
    currency = fields.String(required=True, metadata={"example": "USD"})
    status = fields.String(
        required=True, metadata={"enum": ["final", "provisional"]},
    )
    closing_minor = fields.Integer(required=True)
    url = fields.String(required=True, metadata={"description": "This statement in the API."})


class StatementLineSchema(Schema):
    at = fields.String(required=True, metadata={"description": "ISO 8601, UTC."})
    kind = fields.String(required=True, metadata={"example": "sale"})
    reference = fields.String(required=True)
    item = fields.String(required=True)
    item_type = fields.String(required=True)
    quantity = fields.Integer(required=True, allow_none=True)
    price_paid_minor = fields.Integer(required=True, allow_none=True)
    extra_minor = fields.Integer(required=True, allow_none=True)
    fee_minor = fields.Integer(required=True, allow_none=True)
    amount_minor = fields.Integer(
        required=True, metadata={"description": "What the line adds to the balance."}
    )
    linked_sale = fields.String(required=True)
    transaction_id = fields.Integer(required=True)
    commission_minor = fields.Integer(
        required=True, allow_none=True,
        metadata={"description": "On a sale, the platform's share of the price paid: "
                                 "price_paid_minor - commission_minor - fee_minor = amount_minor."},
    )  # fmt: skip


class AdTrackSchema(Schema):
    title = fields.String(required=True)
    plays = fields.Integer(required=True)
    amount_minor = fields.Integer(required=True)


class AdShareSchema(Schema):
    period = fields.String(required=True)
    model = fields.String(required=True)
    period_plays = fields.Integer(required=True)
    pool_minor = fields.Integer(required=True)
    plays = fields.Integer(required=True)
    amount_minor = fields.Integer(required=True)
    rate_per_1000 = fields.String(
        required=True,
        metadata={"description": "Per 1000 plays, in major units.", "example": "1.2500"},
    )
    tracks = fields.List(fields.Nested(AdTrackSchema), required=True)


class StatementSchema(Schema):
    artist = fields.String(required=True, attribute="artist_slug")
    period = fields.String(required=True)
    currency = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["final", "provisional"]})
    content_hash = fields.String(
        required=True, allow_none=True,
        metadata={"description": "SHA-256 of the frozen content; null while provisional."},
    )  # fmt: skip
    starts_at = fields.String(
        required=True,
        metadata={"description": "The month's start, or just after the previous month's early "
                                 "close."},
    )  # fmt: skip
    ends_at = fields.String(
        required=True,
        metadata={"description": "Exclusive: the next month's start, or just after this "
                                 "month's early close."},
    )  # fmt: skip
    opening_minor = fields.Integer(required=True)
    closing_minor = fields.Integer(required=True)
    totals = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    lines = fields.List(fields.Nested(StatementLineSchema), required=True)
    ads = fields.List(fields.Nested(AdShareSchema), required=True)
