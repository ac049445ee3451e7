"""Schemathesis against the app's own OpenAPI document: no 500s, responses as documented.

The document is read at collection time from an app that needs no database (building it
touches none); each test sends its requests to the test's own app, on the test database.
schemathesis' fixture-based loader (``schemathesis.pytest.from_fixture``) does not run on
pytest 9, hence this split.

Every documented operation is fuzzed twice: anonymously, and with a bearer token whose user
owns an artist, a release and a track, so that generated requests reach the real handlers
(half of the authenticated examples aim at those rows instead of random ids).

The budget is about a minute on SQLite; ``MEGABOX_FUZZ_EXAMPLES`` raises the number of
examples per operation for a longer run.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from app import create_app
from app.accounts.service import issue_token
from tests.conftest import base_config
from tests.factories import TrackFactory

EXAMPLES = int(os.environ.get("MEGABOX_FUZZ_EXAMPLES", "8"))
CHECKS = [not_a_server_error, response_schema_conformance]
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@dataclass(frozen=True)
class World:
    """Rows the token's user owns, for examples that should find something."""

    headers: dict[str, str]
    path_values: dict[str, Any]


@pytest.fixture
def world(app: Flask, session: Any) -> World:
    track = TrackFactory()
    release = track.release
    token, secret = issue_token(session, release.artist.owner, "fuzz")
    session.commit()
    return World(
        headers={"Authorization": f"Bearer {secret}"},
        path_values={"slug": release.artist.slug, "release_id": release.id, "track_id": track.id, "token_id": token.id},
    )


# tus upload chunks (PATCH /uploads/{id}) are raw bytes under tus' own media type.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


def _load_schema() -> Any:
    with tempfile.TemporaryDirectory() as instance:
        spec_app = create_app(base_config("sqlite://", instance))
        return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", spec_app)


schema = _load_schema()


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_anonymously(case: Any, app: Flask, world: World) -> None:
    case.call_and_validate(app=app, checks=CHECKS)


@schema.parametrize()
@schema.given(aim_at_world=st.booleans())
@FUZZ_SETTINGS
def test_api_with_a_bearer_token(case: Any, aim_at_world: bool, app: Flask, world: World) -> None:
    if aim_at_world and case.path_parameters:
        for name in case.path_parameters:
            if name in world.path_values:
                case.path_parameters[name] = world.path_values[name]
    case.call_and_validate(app=app, headers=world.headers, checks=CHECKS)
