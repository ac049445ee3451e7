"""Pools' forms: the admin's revenue and model, the close, and the month to open."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, ValidationError, fields, pre_load

from app.errors import InvalidInput
from app.ledger.errors import AmountProblem, InvalidAmount
from app.ledger.money import parse_amount
from app.pools.models import PoolModel
from app.pools.periods import parse_key
from app.validation import OneOf, Schema

MODEL_CHOICES = [model.value for model in PoolModel]
MODEL_LABELS = {
    PoolModel.PRO_RATA: "Pro rata: each track by its share of all plays",
    PoolModel.USER_CENTRIC: "User-centric: each listener's ad revenue over what they played",
}
_MODEL_ERROR = "Choose pro_rata or user_centric."


def read_revenue(text: str | None, currency: str) -> int | None:
    """Revenue typed as money ("1200.50", "7,00"), in minor units; blank is None.

    Raises ValidationError with a message for people (see ``parse_amount`` for the grammar).
    """
    text = (text or "").strip()
    if not text:
        return None
    try:
        return parse_amount(text, currency)
    except InvalidAmount as exc:
        if exc.problem is AmountProblem.NEGATIVE:
            raise ValidationError("Revenue cannot be negative.") from None
        raise ValidationError(exc.message) from None


def _period_key(value: str) -> None:
    try:
        parse_key(value)
    except InvalidInput as exc:
        raise ValidationError(exc.details["period"]) from None


class _Form(Schema):
    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _strip(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        return {key: (value.strip() if isinstance(value, str) else value)
                for key, value in dict(data).items() if key != "csrf_token"}  # fmt: skip


class PeriodSettingsForm(_Form):
    """The revenue (blank: impressions times CPM) and the model of an open period."""

    revenue = fields.String(load_default="")
    model = fields.String(required=True, validate=OneOf(MODEL_CHOICES, error=_MODEL_ERROR))


class CloseForm(_Form):
    model = fields.String(required=True, validate=OneOf(MODEL_CHOICES, error=_MODEL_ERROR))
    early = fields.Boolean(load_default=False)


class MonthForm(_Form):
    period = fields.String(required=True, validate=_period_key)


def load_settings_form(form: Any, currency: str) -> dict[str, Any]:
    """``{"revenue_minor": int | None, "model": PoolModel}``. Raises ValidationError."""
    data = PeriodSettingsForm().load(form.to_dict())
    try:
        revenue = read_revenue(data["revenue"], currency)
    except ValidationError as exc:
        raise ValidationError({"revenue": exc.messages}) from None
    return {"revenue_minor": revenue, "model": PoolModel(data["model"])}


def load_close_form(form: Any) -> dict[str, Any]:
    """``{"model": PoolModel, "allow_early": bool}``. Raises ValidationError."""
    data = CloseForm().load({**form.to_dict(), "early": "early" in form})
    return {"model": PoolModel(data["model"]), "allow_early": data["early"]}
