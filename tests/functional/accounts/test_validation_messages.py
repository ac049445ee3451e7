"""Validation messages are written for people, in forms and in the API alike (app/validation.py)."""

import importlib
import inspect

import pytest
from marshmallow import Schema as MarshmallowSchema
from marshmallow import fields, validate

from app import validation
from app.accounts.service import issue_token
from tests.conftest import TEST_PASSWORD
from tests.factories import ArtistFactory, ReleaseFactory

SCHEMA_MODULES = [
    f"app.{area}.schemas"
    for area in ("accounts", "ads", "catalog", "commerce", "ingest", "library", "payouts", "plays", "pools",
                 "statements")  # fmt: skip
]
# Every message marshmallow writes by itself when loading, none of which may reach a person
# (an unknown field of an API body may still be called "Unknown field."). "format" is a dump
# error: a value of ours that cannot be written out.
MARSHMALLOW_WORDING = {
    message
    for field_class in vars(fields).values()
    if inspect.isclass(field_class) and issubclass(field_class, fields.Field)
    for key, message in getattr(field_class, "default_error_messages", {}).items()
    if key != "format"
} | {"Invalid input type."}


def _schemas() -> list[type[MarshmallowSchema]]:
    found = []
    for name in SCHEMA_MODULES:
        module = importlib.import_module(name)
        found += [value for value in vars(module).values()
                  if inspect.isclass(value) and issubclass(value, MarshmallowSchema) and value.__module__ == name]  # fmt: skip
    return found


def _fields_within(field: fields.Field):
    yield field
    for name in ("inner", "key_field", "value_field", "field"):
        inner = getattr(field, name, None)
        if isinstance(inner, fields.Field):
            yield from _fields_within(inner)


@pytest.mark.parametrize("schema", _schemas(), ids=lambda schema: f"{schema.__module__}.{schema.__name__}")
def test_every_schema_speaks_plainly(app, schema):
    assert issubclass(schema, validation.Schema)
    for field in schema().fields.values():
        for each in _fields_within(field):
            messages = {message for key, message in each.error_messages.items() if key != "format"}
            leftover = messages & MARSHMALLOW_WORDING
            assert not leftover, f"{each.name}: {leftover}"
            for validator in each.validators:
                if type(validator) in (validate.Length, validate.Range):
                    assert validator.error, f"{each.name}: use app.validation's {type(validator).__name__}"
                default = getattr(type(validator), "default_message", None)
                if default is not None and type(validator).__module__ == validate.__name__:
                    assert validator.error != default, f"{each.name}: {default}"


@pytest.mark.parametrize(
    ("validator", "value", "message"),
    [
        (validation.Length(min=1, max=120), "", "Use 1 to 120 characters."),
        (validation.Length(min=1, max=120), "x" * 121, "Use 1 to 120 characters."),
        (validation.Length(max=500), "x" * 501, "Use at most 500 characters."),
        (validation.Length(max=10_000), "x" * 10_001, "Use at most 10,000 characters."),
        (validation.Length(min=1), "", "Fill in this field."),
        (validation.Length(min=10), "short", "Use at least 10 characters."),
        (validation.Length(equal=3), "USDX", "Use exactly 3 characters."),
        (validation.Length(max=1, unit="item"), [1, 2], "Use at most 1 item."),
        (validation.Range(min=1, max=100), 0, "Enter a number from 1 to 100."),
        (validation.Range(min=0), -1, "Enter a number of at least 0."),
        (validation.Range(max=2**31 - 1), 2**31, "Enter a number of at most 2,147,483,647."),
        (validation.Range(min=0, max=5, min_inclusive=False), 0, "Enter a number above 0 and at most 5."),
        (validation.ID_RANGE, 0, "Use an id from 1 to 2,147,483,647."),
        (validation.OneOf(("pay", "decline")), "steal", "Choose one of: pay, decline."),
    ],
)
def test_validators_say_what_to_do(validator, value, message):
    with pytest.raises(validate.ValidationError) as refused:
        validator(value)
    assert refused.value.messages == [message]


def test_fields_say_what_to_do():
    class Example(validation.Schema):
        needed = fields.String(required=True)
        count = fields.Integer(strict=True)
        when = fields.Date()
        email = fields.Email()
        link = fields.Url()
        flag = fields.Boolean()
        tags = fields.List(fields.String())
        custom = fields.String(required=True, error_messages={"required": "Name the thing."})

    errors = Example().validate(
        {"count": 1.5, "when": "22/11/2026", "email": "nobody", "link": "example", "flag": "perhaps", "tags": [3]}
    )
    assert errors == {
        "needed": ["Fill in this field."],
        "count": ["Enter a whole number."],
        "when": ["Enter a date like 2026-11-22."],
        "email": ["Enter an e-mail address like name@example.com."],
        "link": ["Enter a full web address, like https://example.com/page."],
        "flag": ["Use true or false."],
        "tags": {0: ["Enter text."]},
        "custom": ["Name the thing."],
    }


def test_a_field_used_on_its_own_can_speak_plainly_too():
    with pytest.raises(validate.ValidationError) as refused:
        validation.with_human_messages(fields.Url()).deserialize("not a web address")
    assert refused.value.messages == ["Enter a full web address, like https://example.com/page."]


def test_the_release_form_shows_plain_messages_and_money_limits_as_money(client, auth):
    artist = ArtistFactory()
    auth.login(artist.owner.email, TEST_PASSWORD)
    form = {"title": "", "release_type": "album", "pricing_mode": "fixed", "price": "7.00", "minimum_price": "0",
            "currency": "USD"}  # fmt: skip
    untitled = client.post(f"/studio/artists/{artist.slug}/releases/new", data=form)
    assert untitled.status_code == 422
    assert "Use 1 to 200 characters." in untitled.get_data(as_text=True)
    too_dear = client.post(f"/studio/artists/{artist.slug}/releases/new", data={**form, "title": "Dear", "price": "200000"})
    page = too_dear.get_data(as_text=True)
    assert too_dear.status_code == 422
    assert "A price can be at most $100,000.00." in page
    assert "minor units" not in page


def test_api_errors_are_plain_too(client, session):
    release = ReleaseFactory()
    _, secret = issue_token(session, release.artist.owner, "tests")
    session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    response = client.post(f"/api/v1/releases/{release.id}/tracks", json={"position": 0, "explicit": "maybe"},
                           headers=headers)  # fmt: skip
    assert response.status_code == 422
    assert response.json["details"] == {
        "title": ["Fill in this field."],
        "position": ["Enter a number from 1 to 999."],
        "explicit": ["Use true or false."],
    }
    bad_type = client.post("/api/v1/releases", json={"artist": release.artist.slug, "title": "T",
                                                       "release_type": "mixtape"}, headers=headers)  # fmt: skip
    assert bad_type.json["details"] == {"release_type": ["Choose one of: single, ep, album."]}
