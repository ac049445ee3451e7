"""Account schemas, for the HTML forms and the API alike."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

PASSWORD_MIN_LENGTH = 10


class SignupSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    display_name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(
            min=PASSWORD_MIN_LENGTH,
            max=1024,
            error=f"Use {PASSWORD_MIN_LENGTH} to 1024 characters.",
        ),
    )


class LoginSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1))


class TokenCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=80))


class TokenSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String()
    prefix = fields.String()
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    active = fields.Boolean()


class UserSchema(Schema):
    id = fields.Integer()
    email = fields.Email()
    display_name = fields.String()
    roles = fields.List(fields.String())
    artists = fields.Pluck("ArtistSchema", "slug", many=True)
