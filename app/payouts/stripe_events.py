"""Stripe's events about transfers, applied to payouts.

``transfer.reversed``: the platform took a transfer back (from the Dashboard or the API). Once
the whole transfer is reversed, its payout is marked reversed and its ledger posting reversed
(``payout:<id>:reversed``), so the artist's balance returns. A partial reversal is logged and
left to a person: a payout is paid or not, and the ledger's one reversal key per payout says so.

Events may come twice, late, or before the run has recorded the transfer: the service's
compare-and-set updates make a second delivery change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from app.payouts import service
from app.payouts.gateways import STRIPE

logger = logging.getLogger(__name__)

TRANSFER_REVERSED = "transfer.reversed"
IGNORED_EVENT_TYPE = "unhandled_event_type"
IGNORED_NOT_OURS = "not_our_payout"
IGNORED_PARTIAL = "partial_reversal"
IGNORED_MISMATCH = "transfer_mismatch"


def apply_event(session: Session, event: Mapping[str, Any]) -> str | None:
    """Apply one verified Stripe event; None when applied (or already), else why it was
    ignored. Does not commit."""
    if event.get("type") != TRANSFER_REVERSED:
        return IGNORED_EVENT_TYPE
    transfer = event["data"]["object"]
    payout = service.payout_for_transfer(
        session, (transfer.get("metadata") or {}).get("payout_id"), str(transfer["id"])
    )
    known = payout.transfer_reference if payout is not None else None
    if payout is None or payout.gateway != STRIPE or known not in (None, str(transfer["id"])):
        return IGNORED_NOT_OURS
    if (int(transfer["amount"]), str(transfer["currency"]).upper()) != (
        payout.amount_minor, payout.currency,
    ):  # fmt: skip
        logger.error("stripe transfer %s does not match payout %s", transfer["id"], payout.id)
        return IGNORED_MISMATCH
    if not transfer.get("reversed"):
        logger.warning(
            "stripe transfer %s of payout %s partly reversed (%s): needs a person",
            transfer["id"], payout.id, transfer.get("amount_reversed"),
        )  # fmt: skip
        return IGNORED_PARTIAL
    at = datetime.fromtimestamp(int(event["created"]), tz=UTC)
    service.reverse_payout(session, payout, str(transfer["id"]), at)
    return None
