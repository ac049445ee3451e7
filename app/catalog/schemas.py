"""Catalogue schemas: the API's JSON in and out, and the artist's HTML forms."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import (
    EXCLUDE,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from app.catalog.models import MAX_TRACK_POSITION, PricingMode, ReleaseType, TrackStatus
from app.catalog.service import max_price_minor, price_problem
from app.ledger.errors import AmountProblem, InvalidAmount
from app.ledger.money import CURRENCY_EXPONENTS, parse_amount
from app.validation import Length, Range, Schema

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
ISRC_PATTERN = r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$"


def _known_currency(value: str) -> None:
    if value not in CURRENCY_EXPONENTS:
        raise ValidationError(
            f"Unknown currency {value!r}. Use an ISO-4217 code such as USD, EUR or GBP."
        )


def check_price_limit(minor: int, currency: str) -> None:
    """The friendly twin of the service's guard: raises ValidationError for a price outside
    0..MEGABOX_MAX_PRICE_MINOR, written in the currency ("at most $100,000.00")."""
    problem = price_problem(minor, currency, max_price_minor(current_app.config))
    if problem:
        raise ValidationError(problem)


def read_typed_price(text: str | None, currency: str) -> int:
    """A price typed into a form, in minor units; blank means zero.

    Raises ValidationError with a message for people (see ``parse_amount`` for the grammar).
    """
    try:
        minor = parse_amount((text or "").strip() or "0", currency)
    except InvalidAmount as exc:
        if exc.problem is AmountProblem.NEGATIVE:
            raise ValidationError("A price cannot be negative.") from None
        raise ValidationError(exc.message) from None
    check_price_limit(minor, currency)
    return minor


def _price(**kwargs: Any) -> fields.Integer:
    # The limit depends on the currency, so ReleaseSchema checks it with both in hand, and the
    # service checks it in every case.
    return fields.Integer(
        strict=True,
        validate=Range(min=0, error="A price cannot be negative."),
        **kwargs,
    )


def _slug() -> fields.String:
    return fields.String(
        required=True,
        validate=validate.Regexp(
            SLUG_PATTERN,
            error="Use 1–64 lower-case letters, digits and inner hyphens, e.g. 'the-band'.",
        ),
    )


def _artist_name() -> fields.String:
    return fields.String(required=True, validate=Length(min=1, max=200))


class ArtistSchema(Schema):
    id = fields.Integer(dump_only=True)
    slug = _slug()
    name = _artist_name()
    bio = fields.String(load_default="", validate=Length(max=10_000))
    avatar_url = fields.Url(allow_none=True, load_default=None, validate=Length(max=500))
    created_at = fields.DateTime(dump_only=True)


class TrackSchema(Schema):
    id = fields.Integer(dump_only=True)
    release_id = fields.Integer(dump_only=True)
    title = fields.String(required=True, validate=Length(min=1, max=200))
    position = fields.Integer(strict=True, validate=Range(min=1, max=MAX_TRACK_POSITION))
    duration_ms = fields.Integer(dump_only=True, allow_none=True)
    isrc = fields.String(
        allow_none=True,
        validate=validate.Regexp(ISRC_PATTERN, error="An ISRC looks like 'USRC17607839'."),
    )
    explicit = fields.Boolean(load_default=False)
    price_minor = _price(load_default=0)
    sold_separately = fields.Boolean(load_default=True)
    status = fields.Enum(TrackStatus, by_value=True, dump_only=True)
    created_at = fields.DateTime(dump_only=True)

    @pre_load
    def _normalise_isrc(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if isinstance(data.get("isrc"), str):
            data = dict(data)
            data["isrc"] = data["isrc"].replace("-", "").strip().upper() or None
        return data


class ReleaseSchema(Schema):
    id = fields.Integer(dump_only=True)
    artist = fields.String(
        required=True, load_only=True, metadata={"description": "The owning artist's slug."}
    )
    artist_slug = fields.Function(lambda r: r.artist.slug, dump_only=True)
    title = fields.String(required=True, validate=Length(min=1, max=200))
    release_type = fields.Enum(ReleaseType, by_value=True, load_default=ReleaseType.ALBUM)
    release_date = fields.Date(allow_none=True, load_default=None)
    description = fields.String(load_default="", validate=Length(max=20_000))
    cover_url = fields.Url(allow_none=True, load_default=None)
    pricing_mode = fields.Enum(PricingMode, by_value=True, load_default=PricingMode.FIXED)
    price_minor = _price(load_default=0)
    minimum_price_minor = _price(load_default=0)
    currency = fields.String(
        load_default=lambda: current_app.config["DEFAULT_CURRENCY"], validate=_known_currency
    )
    published = fields.Boolean(load_default=False)
    published_at = fields.DateTime(dump_only=True, allow_none=True)
    tracks = fields.List(fields.Nested(TrackSchema), dump_only=True)
    created_at = fields.DateTime(dump_only=True)

    @pre_load
    def _upper_currency(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if isinstance(data.get("currency"), str):
            data = dict(data)
            data["currency"] = data["currency"].strip().upper()
        return data

    @validates_schema
    def _prices_within_limit(self, data: dict[str, Any], **kwargs: Any) -> None:
        currency = data.get("currency")
        if currency not in CURRENCY_EXPONENTS:
            return  # a partial update keeps the release's currency; the service checks then
        errors: dict[str, list[str]] = {}
        for field in ("price_minor", "minimum_price_minor"):
            if field in data:
                try:
                    check_price_limit(data[field], currency)
                except ValidationError as exc:
                    errors[field] = exc.messages
        if errors:
            raise ValidationError(errors)


class ReleaseUpdateSchema(ReleaseSchema):
    """PATCH body: every field optional, and a release never changes artist."""

    published = fields.Boolean(
        metadata={
            "description": "Publishing needs a track whose status is ready; without one the "
            "answer is a 422 with the error nothing_to_play."
        }
    )

    class Meta:
        exclude = ("artist",)


# HTML forms: amounts are typed as "7.00" and checkboxes are absent when unticked.


class _FormSchema(Schema):
    checkboxes: tuple[str, ...] = ()

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _flatten(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        getter = data.get
        flat = {key: getter(key) for key in data.keys()}
        for box in self.checkboxes:
            flat[box] = box in flat
        return {k: v for k, v in flat.items() if k != "csrf_token"}


class ArtistForm(_FormSchema):
    slug = _slug()
    name = _artist_name()
    bio = fields.String(load_default="", validate=Length(max=10_000))
    # The picture is uploaded on a form of its own (app.catalog.images).


class ReleaseForm(_FormSchema):
    checkboxes = ("published",)

    title = fields.String(required=True, validate=Length(min=1, max=200))
    release_type = fields.Enum(ReleaseType, by_value=True, load_default=ReleaseType.ALBUM)
    release_date = fields.String(load_default="")
    description = fields.String(load_default="", validate=Length(max=20_000))
    pricing_mode = fields.Enum(PricingMode, by_value=True, load_default=PricingMode.FIXED)
    price = fields.String(load_default="0")
    minimum_price = fields.String(load_default="0")
    currency = fields.String(required=True)
    published = fields.Boolean(load_default=False)

    @post_load
    def _to_model_fields(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        currency = data["currency"].strip().upper()
        if currency not in CURRENCY_EXPONENTS:
            errors["currency"] = [f"Unknown currency {currency!r}."]
        data["currency"] = currency
        for field, target in (("price", "price_minor"), ("minimum_price", "minimum_price_minor")):
            text = data.pop(field)
            if "currency" in errors:
                continue
            try:
                data[target] = read_typed_price(text, currency)
            except ValidationError as exc:
                errors[field] = exc.messages
        date_text = data.pop("release_date").strip()
        try:
            data["release_date"] = fields.Date().deserialize(date_text) if date_text else None
        except ValidationError:
            errors["release_date"] = ["Use a date like 2026-11-22."]
        if errors:
            raise ValidationError(errors)
        return data


class TrackForm(_FormSchema):
    checkboxes = ("explicit", "sold_separately")

    title = fields.String(required=True, validate=Length(min=1, max=200))
    position = fields.Integer(validate=Range(min=1, max=MAX_TRACK_POSITION))
    isrc = fields.String(load_default="")
    explicit = fields.Boolean(load_default=False)
    price = fields.String(load_default="0")
    sold_separately = fields.Boolean(load_default=False)

    @post_load
    def _to_model_fields(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        isrc = data.pop("isrc").replace("-", "").strip().upper()
        data["isrc"] = TrackSchema().fields["isrc"].deserialize(isrc) if isrc else None
        return data


def load_track_form(form: Any, currency: str) -> dict[str, Any]:
    """Load the track form, reading the typed price in the release's currency.

    Raises ValidationError with inline messages.
    """
    errors: dict[str, Any] = {}
    try:
        data = TrackForm().load(form)
    except ValidationError as exc:
        errors = exc.messages_dict
        data = {"price": form.get("price")}
    try:
        data["price_minor"] = read_typed_price(data.pop("price"), currency)
    except ValidationError as exc:
        errors["price"] = exc.messages
    if errors:
        raise ValidationError(errors)
    return data
