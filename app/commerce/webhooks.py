"""Payment webhooks: ``POST /webhooks/stripe``.

Stripe signs each delivery (``Stripe-Signature``) with the endpoint's secret,
``STRIPE_WEBHOOK_SECRET``. A delivery whose signature does not verify, or was made more than
``STRIPE_WEBHOOK_TOLERANCE_SECONDS`` ago (a replay), gets 400 and records nothing. A verified
event is applied by ``app.commerce.stripe_gateway.handle_event`` in one unit of work, which
commits before the 200.

Responses are JSON whatever the client accepts: ``{"received": true}``, plus ``"ignored":
<reason>`` when the event was not applied (an event type we do not handle, an order that is
not ours, a dispute that moved no money, a payment that does not match its order). Stripe
redelivers anything but a 2xx for days, so:

- a payment that does not match its order (``PaymentMismatch``: another amount, currency or
  gateway) is logged as an error and answered 200 with ``"ignored": "payment_mismatch"``.
  Redelivering it would never make it match; it needs a person, and the log names the order.
- Stripe unreachable (503) or a refund or dispute of an order that Stripe does not show paid
  yet (409) are answered with an error, so that Stripe delivers the event again later.

Deliveries of one order's events may run at once in several workers. The service locks the
order's row for each change, and the ledger's keys are unique; a transaction that still loses
a race in the database (a unique key, a deadlock) is rolled back and run again, once; a
second loss is answered 503, and Stripe delivers the event again later.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError, OperationalError

from app.commerce.errors import InvalidSignature, PaymentMismatch
from app.commerce.stripe_gateway import StripeGateway, handle_event
from app.errors import INTERNAL_MESSAGE, DomainError, current_request_id
from app.extensions import db

logger = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

SIGNATURE_HEADER = "Stripe-Signature"
IGNORED_PAYMENT_MISMATCH = "payment_mismatch"


@bp.post("/stripe")
def stripe_webhook() -> Response:
    """Verify a Stripe event, apply it, commit, and acknowledge it."""
    gateway = StripeGateway(current_app.config)
    try:
        event = gateway.verify_event(request.get_data(), request.headers.get(SIGNATURE_HEADER))
    except InvalidSignature as exc:
        logger.warning("stripe webhook refused: %s %s", exc.message, exc.details)
        return _json_error(exc.code, exc.message, 400)
    try:
        ignored = _apply(gateway, event)
    except PaymentMismatch as exc:
        db.session.rollback()
        logger.error(
            "stripe event %s (%s) ignored: payment mismatch: %s",
            event.get("id"), event.get("type"), exc.details,
        )  # fmt: skip
        ignored = IGNORED_PAYMENT_MISMATCH
    body: dict[str, Any] = {"received": True}
    if ignored is not None:
        if ignored != IGNORED_PAYMENT_MISMATCH:
            logger.info(
                "stripe event %s (%s) ignored: %s", event.get("id"), event.get("type"), ignored
            )
        body["ignored"] = ignored
    return jsonify(body)


def _apply(gateway: StripeGateway, event: dict[str, Any]) -> str | None:
    """Apply the event and commit, once more after losing a database race. Returns why it
    was ignored, if it was."""
    try:
        return _apply_once(gateway, event)
    except (IntegrityError, OperationalError) as exc:
        db.session.rollback()
        logger.warning(
            "stripe event %s (%s): lost a database race, applying it again: %s",
            event.get("id"), event.get("type"), exc.orig,
        )  # fmt: skip
    return _apply_once(gateway, event)


def _apply_once(gateway: StripeGateway, event: dict[str, Any]) -> str | None:
    ignored = handle_event(db.session, gateway, event, config=current_app.config)
    db.session.commit()
    return ignored


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> Response:
    # Stripe does not ask for JSON, so the app's handler would answer with a page or a
    # redirect; a webhook's caller is a program, and it gets the API's error shape.
    db.session.rollback()
    if exc.status >= 500:
        logger.error(
            "request %s: stripe webhook failed: %s: %s %s",
            current_request_id(), type(exc).__name__, exc.message, exc.details,
        )  # fmt: skip
        details = {"request_id": current_request_id()}
        return _json_error(exc.code, INTERNAL_MESSAGE, exc.status, details)
    logger.warning("stripe webhook not applied yet: %s: %s %s", exc.code, exc.message, exc.details)
    return _json_error(exc.code, exc.message, exc.status, exc.details)


@bp.errorhandler(IntegrityError)
@bp.errorhandler(OperationalError)
def _database_race(exc: IntegrityError | OperationalError) -> Response:
    # Lost twice in a row: ask Stripe for a later delivery rather than record half of it.
    db.session.rollback()
    logger.error(
        "request %s: stripe webhook lost a database race twice: %s", current_request_id(), exc.orig
    )
    return _json_error(
        "service_unavailable", INTERNAL_MESSAGE, 503, {"request_id": current_request_id()}
    )


def _json_error(
    code: str, message: str, status: int, details: dict[str, Any] | None = None
) -> Response:
    response = jsonify({"error": code, "message": message, "details": details or {}})
    response.status_code = status
    return response
