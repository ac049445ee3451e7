"""Account schemas, for the HTML forms and the API alike."""

from __future__ import annotations

import unicodedata

from typing import Any

from marshmallow import ValidationError, fields, pre_load

from app.accounts.service import PASSWORD_MIN_LENGTH, password_problem  # noqa: F401 (commands.py)
from app.validation import Length, Schema

EMAIL_MAX_LENGTH = 254


def _usable_password(password: str) -> None:
    # The friendly, per-field message; ``service.check_password`` enforces the same rule.
    problem = password_problem(password)
    if problem is not None:
        raise ValidationError(problem)


def _no_control_characters(text: str) -> None:
    # Names are shown on pages and stored as text, which on PostgreSQL cannot hold NUL.
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise ValidationError("Use letters, digits, spaces and punctuation only.")


def _trimmed_email(data: Any) -> Any:
    """The input with spaces around its e-mail address gone (pasted addresses carry them)."""
    if isinstance(data, dict) and isinstance(data.get("email"), str):
        return {**data, "email": data["email"].strip()}
    return data


class SignupSchema(Schema):
    email = fields.Email(required=True, validate=Length(max=EMAIL_MAX_LENGTH))

    @pre_load
    def _trim(self, data: Any, **kwargs: Any) -> Any:
        return _trimmed_email(data)

    display_name = fields.String(
        required=True, validate=[Length(min=1, max=120), _no_control_characters]
    )
    password = fields.String(required=True, load_only=True, validate=_usable_password)


class LoginSchema(Schema):
    email = fields.String(
        required=True, validate=[Length(min=1, max=EMAIL_MAX_LENGTH), _no_control_characters]
    )
    password = fields.String(required=True, load_only=True, validate=Length(min=1))


class PasswordChangeSchema(Schema):
    current_password = fields.String(required=True, load_only=True, validate=Length(min=1))
    new_password = fields.String(required=True, load_only=True, validate=_usable_password)


class EmailChangeSchema(Schema):
    """A new e-mail address, confirmed with the account's password (the HTML form and
    ``PATCH /api/v1/me`` alike)."""

    @pre_load
    def _trim(self, data: Any, **kwargs: Any) -> Any:
        return _trimmed_email(data)

    email = fields.Email(
        required=True,
        validate=Length(max=EMAIL_MAX_LENGTH),
        metadata={"description": "The new address; stored trimmed and in lower case."},
    )
    password = fields.String(
        required=True,
        load_only=True,
        validate=Length(min=1),
        metadata={"description": "The account's current password, to confirm the change."},
    )


class TokenCreateSchema(Schema):
    name = fields.String(required=True, validate=[Length(min=1, max=80), _no_control_characters])


class TokenSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String()
    prefix = fields.String()
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    active = fields.Boolean()


class TokenCreatedSchema(TokenSchema):
    """A token just made: the only time its secret is shown."""

    secret = fields.String(dump_only=True)


class UserSchema(Schema):
    id = fields.Integer()
    email = fields.Email()
    display_name = fields.String()
    roles = fields.List(fields.String())
    artists = fields.Pluck("ArtistSchema", "slug", many=True)
