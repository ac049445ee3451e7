"""``megabox period`` and ``megabox pool``: close a period, preview a pool split."""

from __future__ import annotations

from flask.cli import AppGroup

period_cli = AppGroup("period", help="Ad-revenue periods: close a month and pay its pool.")
pool_cli = AppGroup("pool", help="Ad-revenue pools: preview a split from CSV files.")
