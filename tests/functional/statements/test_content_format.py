"""The frozen text of a statement: version 2 writes lines as arrays, version 1 stays readable."""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from app.extensions import db
from app.statements import lines, service
from app.statements.content import CONTENT_VERSION, Line, from_json
from app.statements.models import Statement
from app.statements.render import render
from tests.functional.statements.conftest import OCTOBER, Activity, random_activity

BEFORE_THE_CLOSE = datetime(2026, 10, 30, tzinfo=UTC)  # October is live: nothing is stored


def version_1_text(content: Any) -> bytes:
    """What version 1 wrote: ``dataclasses.asdict`` of the content, as canonical JSON."""
    old = dataclasses.replace(content, version=1)
    return json.dumps(
        dataclasses.asdict(old), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def test_a_frozen_statement_stores_its_lines_as_arrays_of_the_line_fields(
    app: Any, activity: Activity
) -> None:
    random_activity(activity, seed=3)
    view = service.statement(db.session, activity.catalogue.artist, OCTOBER, "USD")
    db.session.commit()

    stored = json.loads(db.session.query(Statement).one().content)
    assert stored["version"] == CONTENT_VERSION == 2
    assert stored["line_fields"] == [field.name for field in dataclasses.fields(Line)]
    assert len(stored["lines"]) == len(view.content.lines) > 5
    first = view.content.lines[0]
    assert stored["lines"][0] == [getattr(first, name) for name in stored["line_fields"]]
    assert len(json.dumps(stored)) < len(version_1_text(view.content))


def test_a_statement_frozen_by_version_1_reads_and_renders_as_before(
    app: Any, activity: Activity
) -> None:
    random_activity(activity, seed=5, sales=8)
    artist = activity.catalogue.artist
    current = service.statement(db.session, artist, OCTOBER, "USD")
    db.session.commit()
    old_text = version_1_text(current.content)
    old_hash = hashlib.sha256(old_text).hexdigest()
    db.session.query(Statement).update({"content": old_text.decode(), "content_hash": old_hash})
    db.session.commit()

    view = service.statement(db.session, artist, OCTOBER, "USD")

    assert view.content_hash == old_hash
    assert view.content == dataclasses.replace(current.content, version=1)
    assert view.content.canonical_json() == old_text
    assert render(view, "csv") == render(current, "csv")


def test_a_version_2_text_reads_back_to_the_same_content_and_text(
    app: Any, activity: Activity
) -> None:
    random_activity(activity, seed=9, sales=6)
    content = service.statement(db.session, activity.catalogue.artist, OCTOBER, "USD").content
    text = content.canonical_json()

    assert from_json(text) == content
    assert from_json(text).canonical_json() == text


def test_orders_read_in_several_batches_give_the_same_lines(
    app: Any, activity: Activity, monkeypatch: pytest.MonkeyPatch
) -> None:
    for day in (3, 5, 8, 13, 21):
        activity.sale(datetime(2026, 10, day, tzinfo=UTC), extra=day)
    artist = activity.catalogue.artist
    whole = service.statement(db.session, artist, OCTOBER, "USD", now=BEFORE_THE_CLOSE)
    db.session.rollback()

    monkeypatch.setattr(lines, "LOOKUP_BATCH", 2)
    batched = service.statement(db.session, artist, OCTOBER, "USD", now=BEFORE_THE_CLOSE)

    assert batched.content == whole.content
    assert len(whole.content.lines) == 10 and all(line.reference for line in whole.content.lines)


@pytest.mark.parametrize("enabled", [True, False])
def test_making_a_statement_leaves_the_garbage_collector_as_it_was(
    app: Any, activity: Activity, enabled: bool
) -> None:
    activity.sale(datetime(2026, 10, 3, tzinfo=UTC))
    (gc.enable if enabled else gc.disable)()
    try:
        service.statement(db.session, activity.catalogue.artist, OCTOBER, "USD")
        assert gc.isenabled() is enabled
    finally:
        gc.enable()
