"""Payout errors."""

from __future__ import annotations

from app.errors import Conflict, DomainError


class AccountNotConnected(Conflict):
    """The artist has no payout account yet (or it was made with another gateway)."""

    code = "payout_account_not_connected"


class TransferRefused(DomainError):
    """The gateway refused the transfer for good (no money moved): the payout fails.

    ``message`` says why, for the admin's list of failures; it never holds a key.
    """

    code = "transfer_refused"
    status = 502


class PayoutGatewayUnavailable(DomainError):
    """The gateway could not be reached or answered with a server error: whether a transfer
    was made is unknown, so the payout stays pending and the next run asks again under the
    same idempotency key."""

    code = "gateway_unavailable"
    status = 503
