"""Ad schemas: the slot's JSON in and out, and the admin's campaign form."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import current_app
from marshmallow import EXCLUDE, ValidationError, fields, post_load, pre_load
from werkzeug.datastructures import FileStorage

from app.ads import service
from app.ledger.errors import AmountProblem, InvalidAmount
from app.ledger.money import parse_amount
from app.validation import Length, Schema

# Longer than any play token; a longer text is refused rather than looked up.
PLAY_ID_MAX_LENGTH = 64
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class ImpressionRequestSchema(Schema):
    play_id = fields.String(
        load_default=None,
        allow_none=True,
        validate=Length(max=PLAY_ID_MAX_LENGTH),
        metadata={
            "description": "The play the ad is shown during: its id from POST /plays. An"
            " impression is recorded only for a play of the same listener that started within"
            " the play session's lifetime and has none yet; without one the ad is still shown."
        },
    )


class AdSchema(Schema):
    id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "None for the built-in ad."}
    )
    name = fields.String(required=True)
    image_url = fields.String(required=True, allow_none=True)
    link_url = fields.String(required=True)
    house = fields.Boolean(required=True, metadata={"description": "The platform's own ad."})


class ImpressionSchema(Schema):
    ad = fields.Nested(AdSchema, required=True)
    recorded = fields.Boolean(
        required=True,
        metadata={
            "description": "Whether an impression was recorded: false without a live play of"
            " this listener, when the play has its impression already, or when the listener"
            " (or, anonymously, their IP address) reached the frequency cap."
        },
    )


# The admin's form -----------------------------------------------------------------------------


class CampaignForm(Schema):
    """The campaign form as typed; loads to a ``service.CampaignInput``.

    Loading also applies the service's rules, so every problem is shown at once, under its
    field. Give the chosen file (a ``FileStorage``) as ``image``.
    """

    checkboxes = ("is_house", "active", "remove_image")

    class Meta:
        unknown = EXCLUDE

    name = fields.String(load_default="")
    link_url = fields.String(load_default="")
    weight = fields.String(load_default="1")
    starts_on = fields.String(load_default="")
    ends_on = fields.String(load_default="")
    cpm = fields.String(load_default="")
    is_house = fields.Boolean(load_default=False)
    active = fields.Boolean(load_default=False)
    remove_image = fields.Boolean(load_default=False)
    image = fields.Raw(load_default=None, allow_none=True)

    @pre_load
    def _flatten(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        flat = {key: data.get(key) for key in data.keys() if key != "csrf_token"}
        for box in self.checkboxes:
            flat[box] = box in flat
        return flat

    @post_load
    def _to_input(self, data: dict[str, Any], **kwargs: Any) -> service.CampaignInput:
        config = current_app.config
        errors: dict[str, list[str]] = {}
        parsed: dict[str, Any] = {}
        weight = data["weight"].strip()
        if _WHOLE_NUMBER.fullmatch(weight):
            parsed["weight"] = int(weight)
        else:
            errors["weight"] = ["Write the weight as a whole number, like 1 or 10 (0 pauses it)."]
        for field in ("starts_on", "ends_on"):
            try:
                parsed[field] = _optional_date(data[field])
            except ValueError:
                errors[field] = ["Use a date like 2026-11-22, or leave it empty."]
        try:
            parsed["cpm_minor"] = _typed_amount(data["cpm"], config["DEFAULT_CURRENCY"])
        except ValueError as exc:
            errors["cpm"] = [str(exc)]
        try:
            parsed["image"] = _read_upload(data["image"], int(config["AD_IMAGE_MAX_BYTES"]))
        except OSError:
            errors["image"] = ["The file could not be read. Choose it again."]
        values = service.CampaignInput(
            name=data["name"].strip(),
            link_url=data["link_url"].strip(),
            is_house=data["is_house"],
            active=data["active"],
            remove_image=data["remove_image"],
            **parsed,
        )
        for field, messages in service.campaign_problems(config, values).items():
            errors.setdefault(field, messages)
        if errors:
            raise ValidationError(errors)
        return values


def load_campaign_form(form: Any, files: Any) -> service.CampaignInput:
    """The campaign typed into ``form`` with the image in ``files``. Raises ValidationError."""
    return CampaignForm().load({**form.to_dict(), "image": files.get("image")})


def _optional_date(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(text)
    return date.fromisoformat(text)


def _typed_amount(text: str, currency: str) -> int | None:
    """A CPM typed as money ("7,00" is 700 cents); None when left blank (the service says
    whether that is allowed). Raises ValueError to show."""
    if not text.strip():
        return None
    try:
        return parse_amount(text.strip(), currency)
    except InvalidAmount as exc:
        if exc.problem is AmountProblem.NEGATIVE:
            raise ValueError("The CPM cannot be negative.") from None
        raise ValueError(exc.message) from None


def _read_upload(upload: FileStorage | None, limit: int) -> bytes | None:
    """The chosen file's bytes (at most ``limit`` + 1 of them), or None if none was chosen."""
    if upload is None or not upload.filename:
        return None
    return upload.stream.read(limit + 1)
