"""The sandbox gateway: the embedded default, a local checkout page in test mode.

``SandboxGateway.start_checkout`` opens a checkout session ``sbx_<random>`` whose page
(``commerce.sandbox_checkout``) shows the order with three buttons. Whatever the buyer presses,
the server reports it the way a processor would: it builds an event, signs it, and hands the
signed bytes to ``receive_event``, the one function that applies sandbox events (the HTTP
endpoint ``POST /checkout/sandbox/events`` calls it too). So the sandbox drives exactly the
fulfilment code that Stripe's webhooks drive (``service.record_payment`` and friends), and an
event is only believed once its signature checks out.

Events are JSON objects::

    {"id": "evt_sbx_...", "type": "payment.succeeded" | "payment.failed",
     "order": "<order public id>", "session_id": "sbx_...", "payment": "sbxpay_...",
     "amount_minor": 999, "currency": "USD", "fee_minor": 59, "created": 1700000000,
     "reason": ""}

signed as ``Megabox-Sandbox-Signature: t=<unix time>,v1=<hex>`` where the hex is
HMAC-SHA256 over ``"<t>." + body`` under a key derived from ``SECRET_KEY`` for this purpose
alone (``event_key``). A signature is compared in constant time, and one whose time is more
than ``EVENT_TOLERANCE_SECONDS`` away from now is refused, so a captured event cannot be
replayed later. Within the window a replay does no harm: every service call is idempotent.

The pretend processor fee is ``SANDBOX_FEE_BPS`` of the total (rounded by
``app.ledger.allocation``) plus ``SANDBOX_FEE_FIXED_MINOR``, never more than the total.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import url_for
from itsdangerous import BadSignature, URLSafeSerializer
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy.orm import Session

from app.commerce import service
from app.commerce.errors import InvalidSignature, OrderNotFound, PaymentMismatch
from app.commerce.models import Order, OrderStatus
from app.jobs import enqueue_after_commit
from app.ledger.allocation import split_bps
from app.ledger.money import CURRENCY_EXPONENTS

NAME = "sandbox"
SESSION_PREFIX = "sbx_"
PAYMENT_PREFIX = "sbxpay_"
EVENT_PREFIX = "evt_sbx_"
SIGNATURE_HEADER = "Megabox-Sandbox-Signature"
PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_FAILED = "payment.failed"
EVENT_TYPES = (PAYMENT_SUCCEEDED, PAYMENT_FAILED)
SETTLE_JOB = "app.commerce.tasks.settle_sandbox_payment"
DECLINE_REASON = "The sandbox card was declined."
# How far a signature's time may be from the receiver's clock, either way.
EVENT_TOLERANCE_SECONDS = 300
# Domain separation: SECRET_KEY also signs session cookies and CSRF tokens, so each purpose
# derives its own key and a signature made for one is worthless for the others.
_EVENT_KEY_LABEL = b"megabox-sandbox-events"
_RETURN_SALT = "megabox-sandbox-return"
_RANDOM_BYTES = 18
# Unix times in signatures and events: twelve digits reach far beyond any real clock.
MAX_TIMESTAMP = 10**12 - 1
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class SandboxGateway:
    """``PaymentGateway`` for the sandbox: checkout happens on this site's own page."""

    name = NAME

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = config

    def start_checkout(
        self, order: Order, *, success_url: str, cancel_url: str
    ) -> service.CheckoutRedirect:
        """A new sandbox session for ``order``; its page URL carries the signed return URLs.

        Needs a request context (the URL is absolute, on the host the request came to).
        """
        session_id = SESSION_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)
        returns = _return_serializer(self._config).dumps([success_url, cancel_url])
        url = url_for(
            "commerce.sandbox_checkout", session_id=session_id, r=returns, _external=True
        )
        return service.CheckoutRedirect(session_id=session_id, url=url)


def _return_serializer(config: Mapping[str, Any]) -> URLSafeSerializer:
    return URLSafeSerializer(config["SECRET_KEY"], salt=_RETURN_SALT)


def return_urls(config: Mapping[str, Any], token: str | None) -> tuple[str, str] | None:
    """The (success, cancel) URLs that ``start_checkout`` signed into the page URL, if intact."""
    if not token:
        return None
    try:
        success, cancel = _return_serializer(config).loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    if not (isinstance(success, str) and isinstance(cancel, str)):
        return None
    return success, cancel


def processor_fee(total_minor: int, config: Mapping[str, Any]) -> int:
    """The sandbox's pretend fee for a payment of ``total_minor``, at most the total."""
    if total_minor <= 0:
        return 0
    share, _ = split_bps(total_minor, int(config["SANDBOX_FEE_BPS"]))
    return min(total_minor, share + int(config["SANDBOX_FEE_FIXED_MINOR"]))


# Events -------------------------------------------------------------------------------------


class SandboxEventSchema(Schema):
    """A sandbox event's JSON (see the module docstring)."""

    id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    order = fields.String(required=True, validate=validate.Length(min=1, max=32))
    session_id = fields.String(required=True, validate=validate.Length(min=1, max=255))
    payment = fields.String(required=True, validate=validate.Length(min=1, max=255))
    amount_minor = fields.Integer(strict=True, required=True, validate=validate.Range(min=0))
    currency = fields.String(required=True, validate=validate.OneOf(sorted(CURRENCY_EXPONENTS)))
    fee_minor = fields.Integer(strict=True, required=True, validate=validate.Range(min=0))
    created = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=0, max=MAX_TIMESTAMP)
    )
    reason = fields.String(load_default="", validate=validate.Length(max=500))


def event_key(config: Mapping[str, Any]) -> bytes:
    """The HMAC key for sandbox events, derived from ``SECRET_KEY``."""
    return hmac.new(config["SECRET_KEY"].encode(), _EVENT_KEY_LABEL, hashlib.sha256).digest()


def payment_event(
    order: Order, event_type: str, *, config: Mapping[str, Any], reason: str = ""
) -> dict[str, Any]:
    """The event the sandbox reports for ``order`` now. Raises ValueError for an unknown type."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown sandbox event type {event_type!r}")
    if order.checkout_session_id is None:
        raise ValueError("the order has no sandbox checkout session")
    return {
        "id": EVENT_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES),
        "type": event_type,
        "order": order.public_id,
        "session_id": order.checkout_session_id,
        "payment": order.payment_reference or new_payment_reference(),
        "amount_minor": order.total_minor,
        "currency": order.currency,
        "fee_minor": processor_fee(order.total_minor, config),
        "created": int(time.time()),
        "reason": reason,
    }


def new_payment_reference() -> str:
    return PAYMENT_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)


def sign(payload: bytes, config: Mapping[str, Any], timestamp: int | None = None) -> str:
    """The signature header value for ``payload``, made at ``timestamp`` (default: now)."""
    at = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(event_key(config), f"{at}.".encode() + payload, hashlib.sha256)
    return f"t={at},v1={digest.hexdigest()}"


def signed_event(event: Mapping[str, Any], config: Mapping[str, Any]) -> tuple[bytes, str]:
    """``event`` as the bytes to deliver and their signature header."""
    payload = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    return payload, sign(payload, config)


def verify_signature(payload: bytes, signature: str, config: Mapping[str, Any]) -> None:
    """Check ``signature`` over ``payload``. Raises InvalidSignature, saying why."""
    parts: dict[str, list[str]] = {}
    for item in signature.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(name, []).append(value)
    stamps = parts.get("t", [])
    if len(stamps) != 1 or not _TIMESTAMP.fullmatch(stamps[0]):
        raise InvalidSignature("The event signature has no valid timestamp.")
    timestamp = int(stamps[0])
    if abs(time.time() - timestamp) > EVENT_TOLERANCE_SECONDS:
        raise InvalidSignature("The event signature is too old or from the future.")
    expected = sign(payload, config, timestamp).partition(",v1=")[2]
    # Every v1 candidate is compared in full, so the time taken says nothing about the key.
    matched = False
    for candidate in parts.get("v1", []):
        matched |= hmac.compare_digest(candidate.encode(), expected.encode())
    if not matched:
        raise InvalidSignature("The event signature does not match.")


def receive_event(
    session: Session, payload: bytes, signature: str, config: Mapping[str, Any]
) -> Order:
    """Verify a signed sandbox event and apply it to its order; returns the order.

    ``payment.succeeded`` records the payment (``service.record_payment``: once, however often
    it arrives), ``payment.failed`` the decline. Nothing is written unless the signature is
    good. Does not commit.

    Raises InvalidSignature (bad or stale signature, or a signed body that is not an event),
    OrderNotFound, and PaymentMismatch when the event names another checkout session or its
    amount is not the order's.
    """
    verify_signature(payload, signature, config)
    try:
        event = SandboxEventSchema().load(json.loads(payload))
    except (ValueError, ValidationError) as exc:
        raise InvalidSignature("The signed body is not a sandbox event.") from exc
    order = service.order_by_public_id(session, event["order"])
    if order is None or order.gateway != NAME:
        raise OrderNotFound("No such sandbox order.", {"order": event["order"]})
    if order.checkout_session_id != event["session_id"]:
        raise PaymentMismatch(
            "The event is for another checkout session.", {"order": order.public_id}
        )
    if event["type"] == PAYMENT_FAILED:
        return service.record_payment_failed(session, order, event["reason"] or DECLINE_REASON)
    payment = service.Payment(
        order_public_id=order.public_id,
        gateway=NAME,
        amount_minor=event["amount_minor"],
        currency=event["currency"],
        fee_minor=event["fee_minor"],
        paid_at=datetime.fromtimestamp(event["created"], UTC),
        checkout_session_id=event["session_id"],
        payment_reference=event["payment"],
    )
    return service.record_payment(session, payment, config=config)


# What the checkout page's buttons do --------------------------------------------------------


def deliver(
    session: Session, order: Order, event_type: str, config: Mapping[str, Any], reason: str = ""
) -> Order:
    """Report ``event_type`` for ``order`` through the signed path, as the processor would."""
    payload, signature = signed_event(
        payment_event(order, event_type, config=config, reason=reason), config
    )
    return receive_event(session, payload, signature, config)


def pay_later(session: Session, order: Order) -> Order:
    """The buyer chose a payment that clears later: the order stays pending, with its payment
    reference, and once the session commits a job (``SETTLE_JOB``) reports it paid after
    ``SANDBOX_PAYMENT_DELAY_SECONDS``. Needs an app context (for the job queue)."""
    order = service.record_payment_pending(
        session, order, payment_reference=order.payment_reference or new_payment_reference()
    )
    enqueue_after_commit(session, SETTLE_JOB, order.id, job_id=f"sandbox-settle-{order.id}")
    return order


def settle_delayed_payment(session: Session, config: Mapping[str, Any], order_id: int) -> None:
    """Report a delayed sandbox payment as succeeded. Running it twice records one payment;
    an order that has gone, is not the sandbox's or is no longer pending is left alone."""
    order = session.get(Order, order_id)
    if order is None or order.gateway != NAME or order.status is not OrderStatus.PENDING:
        return
    deliver(session, order, PAYMENT_SUCCEEDED, config)


def is_processing(order: Order) -> bool:
    """Whether the buyer has paid later and the sandbox has not settled it yet."""
    return order.status is OrderStatus.PENDING and order.payment_reference is not None
