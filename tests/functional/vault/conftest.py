"""Vault tests run on apps with small segments, so a few hundred bytes span several of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from app.extensions import db
from tests.unit.vault.s3_server import moto_s3

SEGMENT_LOG2 = 8


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    built = make_app(VAULT_SEGMENT_SIZE_LOG2=SEGMENT_LOG2)
    with built.app_context():
        yield built
        db.session.rollback()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url
