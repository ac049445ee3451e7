"""Ledger tests: an app with the ``megabox ledger`` commands, and a sale's accounts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

import app.ledger.models  # noqa: F401 - the ledger's tables, so the suite empties them too
from app.extensions import db
from app.ledger import service
from app.ledger.commands import ledger_cli
from app.ledger.models import (
    PLATFORM_COMMISSION,
    AccountKind,
    LedgerAccount,
    clearing_code,
    platform_code,
)
from tests.factories import ArtistFactory


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    built = make_app()
    built.cli.add_command(ledger_cli)  # app.cli registers it too once the lead wires it
    with built.app_context():
        yield built
        db.session.rollback()


@dataclass
class SaleAccounts:
    artist_id: int
    artist_slug: str
    clearing: LedgerAccount
    payable: LedgerAccount
    commission: LedgerAccount


@pytest.fixture
def usd(app: Flask) -> SaleAccounts:
    """The accounts a USD sale posts to, committed."""
    artist = ArtistFactory()
    accounts = SaleAccounts(
        artist_id=artist.id,
        artist_slug=artist.slug,
        clearing=service.account(
            db.session, clearing_code("sandbox", "USD"), AccountKind.ASSET, "USD"
        ),
        payable=service.artist_payable(db.session, artist.id, "USD"),
        commission=service.account(
            db.session, platform_code(PLATFORM_COMMISSION, "USD"), AccountKind.REVENUE, "USD"
        ),
    )
    db.session.commit()
    return accounts
