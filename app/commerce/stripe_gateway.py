"""Stripe Checkout: open a Checkout Session for an order, and apply Stripe's webhook events.

The gateway talks to Stripe through the ``stripe`` library's ``StripeClient``, built from the
settings alone: ``STRIPE_SECRET_KEY``, and ``STRIPE_API_BASE`` for any Stripe-compatible server
(empty: Stripe's own). Nothing is set on the ``stripe`` module, so two apps with different
settings in one process do not disturb each other. A failure of the library (network, HTTP
error, bad key) becomes ``GatewayUnavailable`` here: the log gets the error's type, status,
code and Stripe's request id, never a key or Stripe's own message (which may quote a key).

``handle_event`` turns one verified event into the commerce service's ``record_*`` calls.
Stripe sends an event any number of times, in any order, and to several web workers at once,
so every decision comes from the order's state (which the service reads under a row lock) and
from Stripe's API, never from the event's arrival. In particular the amount is read from the
Checkout Session and the processor's fee from the charge's balance transaction, and an order
that a refund or dispute finds unpaid is settled first from the Checkout Session, exactly as
its completion event would have done (the completion event, when it comes, then adds nothing).

Events handled, and what each records:

- ``checkout.session.completed``: paid (``payment_status`` "paid" or "no_payment_required")
  records the payment; "unpaid" (a bank debit that clears later) records it as pending.
- ``checkout.session.async_payment_succeeded`` / ``_failed``: the late payment's outcome.
- ``checkout.session.expired``: the checkout was abandoned.
- ``charge.refunded``: the charge's cumulative ``amount_refunded``.
- ``charge.dispute.created`` and ``charge.dispute.funds_withdrawn``: a chargeback, with the
  dispute fee (the positive fees of the dispute's balance transactions).
- ``charge.dispute.closed``: won ("won", or "warning_closed") re-posts the sale; lost keeps
  the chargeback.

A dispute whose ``balance_transactions`` is empty moved no money (an inquiry, which Stripe
marks "warning_needs_response"): it is ignored until funds are withdrawn. Any other event type,
and an event for an order that is not a Stripe order of ours, is ignored.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import stripe
from sqlalchemy.orm import Session

from app.commerce import service
from app.commerce.errors import GatewayUnavailable, InvalidSignature
from app.commerce.models import Order
from app.commerce.service import CheckoutRedirect

logger = logging.getLogger(__name__)

GATEWAY_NAME = "stripe"
# How long one API call may take, and how often the library retries a failed one (it retries
# only what Stripe marks safe to retry, and every POST carries an idempotency key).
REQUEST_TIMEOUT_SECONDS = 20
MAX_NETWORK_RETRIES = 2
# Clients kept, one per (secret key, API base): a process normally needs one.
CLIENT_CACHE_SIZE = 8
CHECKOUT_IDEMPOTENCY_PREFIX = "megabox-checkout-"
# A Checkout Session in these payment states has taken the buyer's money.
PAID_SESSION_STATUSES = ("paid", "no_payment_required")
UNPAID_SESSION_STATUS = "unpaid"
# A dispute closed in these states gave the money back to us.
WON_DISPUTE_STATUSES = ("won", "warning_closed")
# Why an event was ignored (the webhook's response says so, and the log).
IGNORED_EVENT_TYPE = "unhandled_event_type"
IGNORED_NOT_OURS = "not_our_order"
IGNORED_NO_FUNDS_MOVED = "dispute_moved_no_funds"
UNAVAILABLE_MESSAGE = "The payment service is unavailable right now. Try again in a moment."


@functools.lru_cache(maxsize=CLIENT_CACHE_SIZE)
def _client(secret_key: str, api_base: str) -> stripe.StripeClient:
    """One client per key and server, shared by threads (its HTTP sessions are per thread).

    Cached so that connections to Stripe are reused across requests; the cache holds nothing
    but what the two settings determine.
    """
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=REQUEST_TIMEOUT_SECONDS),
    )


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn the library's errors into GatewayUnavailable, logging what an operator needs."""
    try:
        yield
    except stripe.StripeError as exc:
        logger.error(
            "stripe: %s failed: %s (status %s, code %s, request %s)",
            action, type(exc).__name__, exc.http_status, exc.code, exc.request_id,
        )  # fmt: skip
        raise GatewayUnavailable(UNAVAILABLE_MESSAGE, {"action": action}) from None


class StripeGateway:
    """Stripe Checkout behind the ``PaymentGateway`` protocol, plus the API reads its webhook
    needs. Every method raises GatewayUnavailable when Stripe fails."""

    name = GATEWAY_NAME

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._secret_key = str(config.get("STRIPE_SECRET_KEY") or "")
        self._api_base = str(config.get("STRIPE_API_BASE") or "").rstrip("/")
        self._webhook_secret = str(config.get("STRIPE_WEBHOOK_SECRET") or "")
        self._tolerance = int(
            config.get("STRIPE_WEBHOOK_TOLERANCE_SECONDS", stripe.Webhook.DEFAULT_TOLERANCE)
        )

    @property
    def _stripe(self) -> stripe.StripeClient:
        if not self._secret_key:
            logger.error("stripe: STRIPE_SECRET_KEY is not set")
            raise GatewayUnavailable(UNAVAILABLE_MESSAGE, {"setting": "STRIPE_SECRET_KEY"})
        return _client(self._secret_key, self._api_base)

    def start_checkout(
        self, order: Order, *, success_url: str, cancel_url: str
    ) -> CheckoutRedirect:
        """Create the order's Checkout Session: one line item per order item.

        The idempotency key names the order, so a retried call (by the library, or by us after
        a timeout) returns the session made the first time rather than a second one.
        """
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": order.currency.lower(),
                        "unit_amount": item.amount_minor,
                        "product_data": {"name": item.title},
                    },
                    "quantity": 1,
                }
                for item in order.items
            ],
            "client_reference_id": order.public_id,
            "metadata": {"order_id": order.public_id},
            "payment_intent_data": {"metadata": {"order_id": order.public_id}},
            "customer_email": order.email,
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        options: stripe.RequestOptions = {
            "idempotency_key": CHECKOUT_IDEMPOTENCY_PREFIX + order.public_id
        }
        with _translated("create checkout session"):
            created = self._stripe.v1.checkout.sessions.create(params, options)
        if not created.url:
            logger.error("stripe: checkout session %s came back without a URL", created.id)
            raise GatewayUnavailable(UNAVAILABLE_MESSAGE, {"action": "create checkout session"})
        return CheckoutRedirect(session_id=created.id, url=created.url)

    def verify_event(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        """The event in ``payload``, once its ``Stripe-Signature`` proves Stripe sent it.

        The signature must be made with ``STRIPE_WEBHOOK_SECRET`` at most
        ``STRIPE_WEBHOOK_TOLERANCE_SECONDS`` ago. Raises InvalidSignature otherwise, and for a
        body that is not an event.
        """
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, self._webhook_secret, self._tolerance
            )
        except stripe.SignatureVerificationError as exc:
            # The library's message says what was wrong (stale, no match, no header) and
            # holds no secret.
            raise InvalidSignature(
                "The webhook signature is not valid.", {"reason": str(exc)}
            ) from None
        except ValueError:  # valid signature over a body that is not UTF-8 JSON of an event
            raise InvalidSignature("The webhook body is not a Stripe event.") from None
        return event.to_dict()

    def checkout_session(self, session_id: str) -> dict[str, Any]:
        with _translated("retrieve checkout session"):
            return self._stripe.v1.checkout.sessions.retrieve(session_id).to_dict()

    def payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        """The PaymentIntent, its latest charge and that charge's balance transaction expanded."""
        with _translated("retrieve payment intent"):
            return self._stripe.v1.payment_intents.retrieve(
                payment_intent_id, {"expand": ["latest_charge.balance_transaction"]}
            ).to_dict()

    def charge(self, charge_id: str) -> dict[str, Any]:
        with _translated("retrieve charge"):
            return self._stripe.v1.charges.retrieve(charge_id).to_dict()


# Webhook events -----------------------------------------------------------------------------

Handler = Callable[[Session, StripeGateway, Mapping[str, Any], Mapping[str, Any]], str | None]


def handle_event(
    session: Session,
    gateway: StripeGateway,
    event: Mapping[str, Any],
    *,
    config: Mapping[str, Any],
) -> str | None:
    """Apply one verified Stripe event to its order. Does not commit.

    Returns None when the event was applied (or had been already), or why it was ignored.
    Raises what the service's ``record_*`` functions raise (PaymentMismatch for a payment
    that is not the order's; OrderStateConflict for a refund or dispute of an order that
    Stripe's own records do not show paid yet, which a later delivery may find settled), and
    GatewayUnavailable.
    """
    handler = _HANDLERS.get(str(event.get("type")))
    if handler is None:
        return IGNORED_EVENT_TYPE
    return handler(session, gateway, event, config)


def _session_completed(
    session: Session, gateway: StripeGateway, event: Mapping[str, Any], config: Mapping[str, Any]
) -> str | None:
    checkout = event["data"]["object"]
    order = _order_for_checkout(session, checkout)
    if order is None:
        return IGNORED_NOT_OURS
    if checkout.get("payment_status") in PAID_SESSION_STATUSES:
        _record_paid(session, gateway, order, checkout, _time(event["created"]), config)
    elif checkout.get("payment_status") == UNPAID_SESSION_STATUS:
        service.record_payment_pending(
            session, order, payment_reference=_id_of(checkout.get("payment_intent"))
        )
    return None


def _payment_failed(
    session: Session, gateway: StripeGateway, event: Mapping[str, Any], config: Mapping[str, Any]
) -> str | None:
    order = _order_for_checkout(session, event["data"]["object"])
    if order is None:
        return IGNORED_NOT_OURS
    service.record_payment_failed(session, order, "The payment did not go through.")
    return None


def _session_expired(
    session: Session, gateway: StripeGateway, event: Mapping[str, Any], config: Mapping[str, Any]
) -> str | None:
    order = _order_for_checkout(session, event["data"]["object"])
    if order is None:
        return IGNORED_NOT_OURS
    service.record_checkout_expired(session, order)
    return None


def _charge_refunded(
    session: Session, gateway: StripeGateway, event: Mapping[str, Any], config: Mapping[str, Any]
) -> str | None:
    charge = event["data"]["object"]
    order = _order_for_charge(session, gateway, charge)
    if order is None:
        return IGNORED_NOT_OURS
    at = _time(event["created"])
    _settle(session, gateway, order, at, config)
    service.record_refund(
        session, order, refunded_total_minor=int(charge["amount_refunded"]), at=at
    )
    return None


def _dispute_opened(
    session: Session, gateway: StripeGateway, event: Mapping[str, Any], config: Mapping[str, Any]
) -> str | None:
    return _apply_dispute(session, gateway, event, config, closed=False)


def _dispute_closed(
    session: Session, gateway: StripeGateway, event: Mapping[str, Any], config: Mapping[str, Any]
) -> str | None:
    return _apply_dispute(session, gateway, event, config, closed=True)


def _apply_dispute(
    session: Session,
    gateway: StripeGateway,
    event: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    closed: bool,
) -> str | None:
    """Find the disputed order, settle it first if it is still pending, then record the
    dispute's opening or its close. Returns why the event was ignored, if it was."""
    dispute = event["data"]["object"]
    found = _order_for_dispute(session, gateway, dispute)
    if isinstance(found, str):
        return found
    at = _time(event["created"])
    _settle(session, gateway, found, at, config)
    fee = _dispute_fee(dispute)
    if closed:
        won = dispute.get("status") in WON_DISPUTE_STATUSES
        service.record_dispute_closed(
            session, found, dispute_id=dispute["id"], won=won, fee_minor=fee, at=at
        )
    else:
        service.record_dispute(session, found, dispute_id=dispute["id"], fee_minor=fee, at=at)
    return None


_HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _session_completed,
    # The session of a late payment that cleared is "paid": the same as a card's completion.
    "checkout.session.async_payment_succeeded": _session_completed,
    "checkout.session.async_payment_failed": _payment_failed,
    "checkout.session.expired": _session_expired,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_opened,
    "charge.dispute.funds_withdrawn": _dispute_opened,
    "charge.dispute.closed": _dispute_closed,
}


def _record_paid(
    session: Session,
    gateway: StripeGateway,
    order: Order,
    checkout: Mapping[str, Any],
    fallback_at: datetime,
    config: Mapping[str, Any],
) -> None:
    """Record the payment of a paid Checkout Session, with the fee Stripe really charged.

    The fee and the time come from the charge's balance transaction. An order already paid
    is left alone without asking Stripe (``record_payment`` would change nothing).
    """
    if order.status in service.MONEYED_STATUSES:
        return
    payment_intent_id = _id_of(checkout.get("payment_intent"))
    fee, charge_id, paid_at = 0, None, fallback_at
    if payment_intent_id:
        charge = gateway.payment_intent(payment_intent_id).get("latest_charge")
        transaction = charge.get("balance_transaction") if isinstance(charge, dict) else None
        if not isinstance(charge, dict) or not isinstance(transaction, dict):
            # A paid session's charge has a balance transaction; without it the fee is not
            # known, and a guess would stay in the ledger. Stripe retries the event.
            logger.error("stripe: payment %s has no balance transaction yet", payment_intent_id)
            raise GatewayUnavailable(UNAVAILABLE_MESSAGE, {"payment_intent": payment_intent_id})
        fee, charge_id = int(transaction["fee"]), str(charge["id"])
        paid_at = _time(transaction["created"])
    service.record_payment(
        session,
        service.Payment(
            order_public_id=order.public_id,
            gateway=GATEWAY_NAME,
            amount_minor=int(checkout["amount_total"]),
            currency=str(checkout["currency"]),
            fee_minor=fee,
            paid_at=paid_at,
            checkout_session_id=str(checkout["id"]),
            payment_reference=payment_intent_id,
            charge_reference=charge_id,
        ),
        config=config,
    )


def _settle(
    session: Session,
    gateway: StripeGateway,
    order: Order,
    fallback_at: datetime,
    config: Mapping[str, Any],
) -> None:
    """Record the payment of an order a refund or dispute found unpaid, if Stripe has it.

    The refund or dispute proves a charge, but its completion event may not have come yet:
    the Checkout Session says what was paid.
    """
    if order.status in service.MONEYED_STATUSES or not order.checkout_session_id:
        return
    checkout = gateway.checkout_session(order.checkout_session_id)
    if checkout.get("payment_status") in PAID_SESSION_STATUSES:
        _record_paid(session, gateway, order, checkout, fallback_at, config)


def _order_for_checkout(session: Session, checkout: Mapping[str, Any]) -> Order | None:
    metadata = checkout.get("metadata") or {}
    public_id = metadata.get("order_id") or checkout.get("client_reference_id")
    order = service.order_by_public_id(session, str(public_id)) if public_id else None
    if order is None:
        order = service.order_for_checkout_session(session, str(checkout["id"]))
    return _ours(order)


def _order_for_charge(
    session: Session, gateway: StripeGateway, charge: Mapping[str, Any]
) -> Order | None:
    """The charge's order: from its metadata (copied from the PaymentIntent's when it was
    confirmed), from a reference we stored, or from the PaymentIntent's metadata."""
    public_id = (charge.get("metadata") or {}).get("order_id")
    if public_id:
        return _ours(service.order_by_public_id(session, str(public_id)))
    payment_intent_id = _id_of(charge.get("payment_intent"))
    for reference in (payment_intent_id, str(charge["id"])):
        order = service.order_for_payment(session, reference) if reference else None
        if order is not None:
            return _ours(order)
    if not payment_intent_id:
        return None
    public_id = (gateway.payment_intent(payment_intent_id).get("metadata") or {}).get("order_id")
    return _ours(service.order_by_public_id(session, str(public_id))) if public_id else None


def _order_for_dispute(
    session: Session, gateway: StripeGateway, dispute: Mapping[str, Any]
) -> Order | str:
    """The disputed charge's order, or why the dispute is ignored."""
    if not dispute.get("balance_transactions"):
        return IGNORED_NO_FUNDS_MOVED
    charge = dispute.get("charge")
    charge_id = _id_of(charge)
    references = [r for r in (charge_id, _id_of(dispute.get("payment_intent"))) if r]
    order = next(
        (o for o in (service.order_for_payment(session, r) for r in references) if o), None
    )
    if order is None and charge_id:
        if not isinstance(charge, dict):
            charge = gateway.charge(charge_id)
        order = _order_for_charge(session, gateway, charge)
    found = _ours(order)
    return IGNORED_NOT_OURS if found is None else found


def _ours(order: Order | None) -> Order | None:
    """The order, if it is one that Stripe takes the money for."""
    return order if order is not None and order.gateway == GATEWAY_NAME else None


def _dispute_fee(dispute: Mapping[str, Any]) -> int:
    """What the dispute cost in fees: the positive fees of its balance transactions.

    A won dispute's reinstatement may carry a negative fee (a returned fee); the dispute fee
    stays the one charged when the funds were withdrawn, so every event of the dispute names
    the same fee.
    """
    fees = (int(t.get("fee") or 0) for t in dispute.get("balance_transactions") or [])
    return sum(fee for fee in fees if fee > 0)


def _id_of(value: Any) -> str | None:
    """A field that holds an id, or the object when expanded."""
    if isinstance(value, dict):
        return str(value["id"])
    return str(value) if value else None


def _time(unix_seconds: Any) -> datetime:
    return datetime.fromtimestamp(int(unix_seconds), tz=UTC)
