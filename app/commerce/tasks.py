"""Commerce jobs: a few lines each that call a service; the job runner commits."""

from __future__ import annotations

from flask import current_app

from app.commerce import receipts
from app.extensions import db


def send_receipt(order_id: int) -> None:
    """Write (or send) the order's receipt once. An order that has gone is left alone."""
    receipts.send_receipt(db.session, current_app.config, order_id)
