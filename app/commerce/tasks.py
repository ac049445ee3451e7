"""Commerce jobs: a few lines each that call a service; the job runner commits."""

from __future__ import annotations

import time

from flask import current_app

from app.commerce import receipts, sandbox
from app.extensions import db


def send_receipt(order_id: int) -> None:
    """Write (or send) the order's receipt once. An order that has gone is left alone."""
    receipts.send_receipt(db.session, current_app.config, order_id)


def settle_sandbox_payment(order_id: int) -> None:
    """The sandbox's "pay later": after ``SANDBOX_PAYMENT_DELAY_SECONDS``, deliver the signed
    payment event. The wait comes before any query, so no transaction stays open through it;
    a second run finds the order paid and does nothing."""
    time.sleep(float(current_app.config["SANDBOX_PAYMENT_DELAY_SECONDS"]))
    sandbox.settle_delayed_payment(db.session, current_app.config, order_id)
