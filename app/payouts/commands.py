"""``megabox payouts``."""

from __future__ import annotations

from flask.cli import AppGroup

payouts_cli = AppGroup("payouts", help="Pay artists their balances.")
