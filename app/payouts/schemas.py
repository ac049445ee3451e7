"""What /api/v1 shows of payouts."""

from __future__ import annotations

from marshmallow import fields

from app.payouts.models import PayoutStatus
from app.validation import OneOf, Schema


class PayoutSchema(Schema):
    id = fields.Integer(required=True)
    amount_minor = fields.Integer(required=True, metadata={"description": "Minor units."})
    currency = fields.String(required=True, metadata={"description": "ISO 4217, e.g. USD."})
    status = fields.String(
        required=True, validate=OneOf([s.value for s in PayoutStatus]),
        metadata={"description": "pending, paid, failed or reversed."},
    )  # fmt: skip
    created_at = fields.DateTime(required=True)
    transfer_reference = fields.String(
        allow_none=True, metadata={"description": "The gateway's transfer id, once paid."}
    )
    failure_message = fields.String(
        allow_none=True, metadata={"description": "Why the gateway refused it, if it did."}
    )
