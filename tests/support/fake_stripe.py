"""A small Stripe-compatible HTTP server: the few API calls the Stripe gateway makes.

Stripe's API is beyond the test machine's network, so this is the suite's one fake. It serves,
on 127.0.0.1 and a free port, in a daemon thread:

- ``POST /v1/checkout/sessions``: a Checkout Session in payment mode, with ``price_data`` line
  items, metadata, ``payment_intent_data.metadata``, ``client_reference_id``, customer email;
- ``GET /v1/checkout/sessions/{id}``;
- ``GET /v1/payment_intents/{id}``, expanding ``latest_charge`` and
  ``latest_charge.balance_transaction``;
- ``GET /v1/charges/{id}``, expanding ``balance_transaction`` and ``refunds``;
- Connect: ``POST /v1/accounts`` (Express, with the transfers capability requested),
  ``GET /v1/accounts/{id}``, ``POST /v1/account_links``, ``POST /v1/transfers`` (to an account
  whose transfers capability is active) and ``GET /v1/transfers/{id}``.

Objects are shaped as in Stripe's API reference: ids with Stripe's prefixes, an ``object``
field, amounts in minor units, lowercase currencies, ``created`` in Unix seconds, ``livemode``
false, ``metadata``. Each request needs ``Authorization: Bearer <api key>`` (else 401); a POST
whose ``Idempotency-Key`` was seen before gets the first response again (400 if its parameters
differ), as Stripe answers. Errors have Stripe's ``{"error": {"type", "message", ...}}`` shape.

Tests move a payment along with Python methods, not HTTP. Each changes the state the way Stripe
would (a PaymentIntent copies its metadata to its charge, a paid charge gets a balance
transaction with the fee, a refund adds to the charge's cumulative ``amount_refunded``, a
dispute withdraws the amount and a dispute fee) and returns the Event Stripe would send, which
``webhook_request`` signs for delivery::

    with FakeStripe() as fake:
        app = make_app(**fake.app_settings())
        ...
        event = fake.complete_session(order.checkout_session_id, fee=59)
        body, headers = fake.webhook_request(event)
        client.post("/webhooks/stripe", data=body, headers=headers)

Connect: ``complete_onboarding`` finishes an account's onboarding, ``reverse_transfer`` returns
the ``transfer.reversed`` event, and the attributes ``transfer_refusal`` (a 4xx refusal with
Stripe's code and message) and ``transfers_unavailable`` (500s) decide how the next transfers
fare.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

# Events carry the API version the library pins, as Stripe's do for an endpoint set to it.
API_VERSION = stripe.api_version
DEFAULT_API_KEY = "sk_test_megabox_fake_stripe"
DEFAULT_WEBHOOK_SECRET = "whsec_megabox_fake_stripe"
# Stripe's US card pricing (2.9% + 30 cents), the fee when a test does not choose one.
CARD_FEE_BPS = 290
CARD_FEE_FIXED_MINOR = 30
DISPUTE_FEE_MINOR = 1500
CHECKOUT_LIFETIME_SECONDS = 24 * 3600
PAYOUT_DELAY_SECONDS = 2 * 24 * 3600
ACCOUNT_LINK_LIFETIME_SECONDS = 300
ID_ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 24
# How often the server looks for a shutdown request (what stopping it waits for at most).
SHUTDOWN_POLL_SECONDS = 0.02
# The HTTP server's listen backlog: the concurrency test calls it from many threads at once.
LISTEN_BACKLOG = 256

JSON = dict[str, Any]
Response = tuple[int, JSON]


def new_id(prefix: str) -> str:
    """A Stripe-style id: ``cs_test_``, ``pi_``, ``ch_``... and random base-62 characters."""
    return prefix + "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe sends with ``payload``: ``t=<time>,v1=<HMAC>``,
    the HMAC-SHA256 under ``secret`` of ``"<time>.<payload>"``. ``timestamp`` defaults to now."""
    signed_at = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{signed_at}.".encode() + payload, hashlib.sha256)
    return f"t={signed_at},v1={mac.hexdigest()}"


def parse_params(encoded: str) -> JSON:
    """Stripe's form encoding (``line_items[0][price_data][currency]=usd``) as nested values."""
    root: JSON = {}
    for key, value in parse_qsl(encoded, keep_blank_values=True):
        head, _, rest = key.partition("[")
        path = [head, *(rest[:-1].split("][") if rest else [])]
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return _lists_from_indices(root)


def _lists_from_indices(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _lists_from_indices(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def card_fee(amount_minor: int) -> int:
    """Stripe's card fee for an amount, rounded half up to a minor unit."""
    return (amount_minor * CARD_FEE_BPS + 5000) // 10_000 + CARD_FEE_FIXED_MINOR


class StripeRequestError(Exception):
    """An API call Stripe would refuse: becomes Stripe's error body with ``status``."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.body: JSON = {"error": {"type": kind, "message": message}}
        if param is not None:
            self.body["error"]["param"] = param


@dataclass(frozen=True)
class RecordedRequest:
    """One API call the server answered (authorised or not)."""

    method: str
    path: str
    params: JSON
    idempotency_key: str | None
    stripe_version: str | None


class FakeStripe:
    """The server and its state; a context manager that starts and stops it."""

    def __init__(
        self, *, api_key: str = DEFAULT_API_KEY, webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    ) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.requests: list[RecordedRequest] = []
        self._objects: dict[str, JSON] = {}  # every object by id
        self._refunds: dict[str, list[str]] = {}  # charge id -> refund ids, oldest first
        self._idempotent: dict[str, tuple[JSON, Response]] = {}
        # Connect: what the next transfers meet. ``refuse_transfers`` makes them fail as Stripe
        # refuses one (4xx), ``transfers_unavailable`` answers 500 (the outcome is unknown).
        self.transfer_refusal: tuple[str, str] | None = None
        self.transfers_unavailable = False
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> FakeStripe:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            args=(SHUTDOWN_POLL_SECONDS,),
            name="fake-stripe",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def url(self) -> str:
        """The API base to give the library (``STRIPE_API_BASE``)."""
        assert self._server is not None, "start the server with `with FakeStripe() as fake:`"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def app_settings(self) -> dict[str, Any]:
        """The settings that point an app's Stripe gateway and webhook at this server."""
        return {
            "PAYMENT_GATEWAY": "stripe",
            "STRIPE_API_BASE": self.url,
            "STRIPE_SECRET_KEY": self.api_key,
            "STRIPE_WEBHOOK_SECRET": self.webhook_secret,
        }

    # Reading the state ----------------------------------------------------------------------

    def get(self, object_id: str) -> JSON:
        """A copy of any object by id, as the API shows it unexpanded."""
        with self._lock:
            return _public(self._objects[object_id])

    def ids(self, object_name: str) -> list[str]:
        """The ids of every object of a kind ("checkout.session", "charge"...), oldest first."""
        with self._lock:
            return [i for i, o in self._objects.items() if o["object"] == object_name]

    def charge_id(self, session_id: str) -> str:
        """The charge that paid a completed Checkout Session."""
        with self._lock:
            payment_intent = self._objects[self._objects[session_id]["payment_intent"]]
            return str(payment_intent["latest_charge"])

    # The HTTP API ---------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, params: JSON, headers: dict[str, str]
    ) -> tuple[Response, bool]:
        """Answer one API call: ((status, body), whether it replays an idempotent response).

        ``headers`` has lowercase names.
        """
        key = headers.get("idempotency-key")
        with self._lock:
            self.requests.append(
                RecordedRequest(method, path, params, key, headers.get("stripe-version"))
            )
            if headers.get("authorization") != f"Bearer {self.api_key}":
                return (401, StripeRequestError(401, "Invalid API Key provided.").body), False
            if method == "POST" and key and key in self._idempotent:
                first_params, response = self._idempotent[key]
                if first_params != params:
                    error = StripeRequestError(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with.",
                        kind="idempotency_error",
                    )
                    return (400, error.body), False
                return copy.deepcopy(response), True
            try:
                response = self._route(method, path, params)
            except StripeRequestError as error:
                response = (error.status, error.body)
            if method == "POST" and key and response[0] < 500:
                self._idempotent[key] = (params, copy.deepcopy(response))
            return response, False

    def _route(self, method: str, path: str, params: JSON) -> Response:
        routes: list[tuple[str, str, Callable[..., Response]]] = [
            ("POST", r"/v1/checkout/sessions", self._create_session),
            ("GET", r"/v1/checkout/sessions/(cs_test_\w+)", self._retrieve),
            ("GET", r"/v1/payment_intents/(pi_\w+)", self._retrieve),
            ("GET", r"/v1/charges/(ch_\w+)", self._retrieve),
            ("POST", r"/v1/accounts", self._create_account),
            ("GET", r"/v1/accounts/(acct_\w+)", self._retrieve),
            ("POST", r"/v1/account_links", self._create_account_link),
            ("POST", r"/v1/transfers", self._create_transfer),
            ("GET", r"/v1/transfers/(tr_\w+)", self._retrieve),
        ]
        for route_method, pattern, answer in routes:
            match = re.fullmatch(pattern, path)
            if match and method == route_method:
                return answer(params, *match.groups())
        if any(re.fullmatch(pattern, path) for _, pattern, _ in routes):
            raise StripeRequestError(405, f"{method} is not allowed on {path}.")
        raise StripeRequestError(404, f"Unrecognized request URL ({method}: {path}).")

    def _retrieve(self, params: JSON, object_id: str) -> Response:
        found = self._objects.get(object_id)
        if found is None:
            raise StripeRequestError(404, f"No such object: '{object_id}'", param="id")
        rendered = _public(found)
        for path in params.get("expand") or []:
            self._expand(rendered, path.split("."), path)
        return 200, rendered

    def _expand(self, node: JSON, parts: list[str], full_path: str) -> None:
        field = parts[0]
        if field == "refunds" and node.get("object") == "charge":
            refunds = [copy.deepcopy(self._objects[r]) for r in self._refunds.get(node["id"], [])]
            node["refunds"] = {
                "object": "list",
                "data": list(reversed(refunds)),  # newest first, as Stripe lists them
                "has_more": False,
                "total_count": len(refunds),
                "url": f"/v1/charges/{node['id']}/refunds",
            }
            return
        value = node.get(field)
        if isinstance(value, str) and value in self._objects:
            value = node[field] = copy.deepcopy(self._objects[value])
        elif not isinstance(value, dict) and not (value is None and field in node):
            raise StripeRequestError(
                400, f"This property cannot be expanded ({full_path}).", param="expand"
            )
        if parts[1:] and isinstance(value, dict):
            self._expand(value, parts[1:], full_path)

    def _create_session(self, params: JSON) -> Response:
        if params.get("mode") != "payment":
            raise StripeRequestError(400, "Only payment-mode sessions are served.", param="mode")
        for required in ("success_url", "cancel_url"):
            if not params.get(required):
                raise StripeRequestError(
                    400, f"Missing required param: {required}.", param=required
                )
        line_items = params.get("line_items")
        if not isinstance(line_items, list) or not line_items:
            raise StripeRequestError(400, "Missing required param: line_items.", param="line_items")
        currencies, total, items = set(), 0, []
        for index, item in enumerate(line_items):
            try:
                price = item["price_data"]
                unit_amount, quantity = int(price["unit_amount"]), int(item["quantity"])
                name, currency = price["product_data"]["name"], price["currency"]
            except (KeyError, TypeError, ValueError):
                raise StripeRequestError(
                    400, "Invalid line item.", param=f"line_items[{index}]"
                ) from None
            currency_ok = currency == currency.lower() and len(currency) == 3
            if not currency_ok or unit_amount < 0 or quantity < 1:
                raise StripeRequestError(400, "Invalid line item.", param=f"line_items[{index}]")
            currencies.add(currency)
            total += unit_amount * quantity
            items.append({"name": name, "unit_amount": unit_amount, "quantity": quantity})
        if len(currencies) != 1:
            raise StripeRequestError(400, "Line items must share one currency.", param="line_items")
        session_id, now = new_id("cs_test_"), int(time.time())
        intent_data = params.get("payment_intent_data") or {}
        checkout: JSON = {
            "id": session_id,
            "object": "checkout.session",
            "after_expiration": None,
            "allow_promotion_codes": None,
            "amount_subtotal": total,
            "amount_total": total,
            "automatic_tax": {"enabled": False, "liability": None, "status": None},
            "billing_address_collection": None,
            "cancel_url": params["cancel_url"],
            "client_reference_id": params.get("client_reference_id"),
            "created": now,
            "currency": currencies.pop(),
            "customer": None,
            "customer_creation": "if_required",
            "customer_details": None,
            "customer_email": params.get("customer_email"),
            "expires_at": now + CHECKOUT_LIFETIME_SECONDS,
            "invoice": None,
            "livemode": False,
            "locale": None,
            "metadata": dict(params.get("metadata") or {}),
            "mode": "payment",
            "payment_intent": None,  # made when the buyer pays
            "payment_link": None,
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params["success_url"],
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted",
            "url": f"{self.url}/c/pay/{session_id}",
            # Not Stripe's: what the session's PaymentIntent will carry (Stripe keeps it hidden).
            "_payment_intent_metadata": dict(intent_data.get("metadata") or {}),
            "_line_items": items,
        }
        self._objects[session_id] = checkout
        return 200, _public(checkout)

    # Connect: Express accounts, account links, transfers ------------------------------------

    def _create_account(self, params: JSON) -> Response:
        if params.get("type") != "express":
            raise StripeRequestError(400, "Only Express accounts are served.", param="type")
        account_id, now = new_id("acct_"), int(time.time())
        requested = (params.get("capabilities") or {}).get("transfers") or {}
        account: JSON = {
            "id": account_id,
            "object": "account",
            "business_type": None,
            "capabilities": {"transfers": "inactive"} if requested.get("requested") == "true" else {},
            "charges_enabled": False,
            "country": params.get("country") or "US",
            "created": now,
            "default_currency": "usd",
            "details_submitted": False,
            "email": params.get("email"),
            "metadata": dict(params.get("metadata") or {}),
            "payouts_enabled": False,
            "type": "express",
        }
        self._objects[account_id] = account
        return 200, _public(account)

    def _create_account_link(self, params: JSON) -> Response:
        account_id = params.get("account")
        if account_id not in self._objects:
            raise StripeRequestError(400, f"No such account: '{account_id}'", param="account")
        if params.get("type") not in ("account_onboarding", "account_update"):
            raise StripeRequestError(400, "Invalid type.", param="type")
        for required in ("return_url", "refresh_url"):
            if not params.get(required):
                raise StripeRequestError(400, f"Missing required param: {required}.", param=required)
        now = int(time.time())
        return 200, {
            "object": "account_link",
            "created": now,
            "expires_at": now + ACCOUNT_LINK_LIFETIME_SECONDS,
            "url": f"{self.url}/setup/e/{account_id}/{secrets.token_urlsafe(12)}",
        }

    def _create_transfer(self, params: JSON) -> Response:
        if self.transfers_unavailable:
            return 500, {"error": {"type": "api_error", "message": "An unknown error occurred."}}
        try:
            amount, currency = int(params["amount"]), str(params["currency"])
        except (KeyError, ValueError):
            raise StripeRequestError(400, "Missing required param: amount.", param="amount") from None
        if amount < 1 or currency != currency.lower() or len(currency) != 3:
            raise StripeRequestError(400, "Invalid amount or currency.", param="amount")
        destination = self._objects.get(str(params.get("destination")))
        if destination is None or destination["object"] != "account":
            raise StripeRequestError(
                400, f"No such destination: '{params.get('destination')}'", param="destination"
            )
        if destination["capabilities"].get("transfers") != "active":
            raise StripeRequestError(
                400,
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, crypto_transfers, legacy_payments",
                param="destination",
            )
        if self.transfer_refusal is not None:
            code, message = self.transfer_refusal
            error = StripeRequestError(400, message)
            error.body["error"]["code"] = code
            raise error
        transfer_id = new_id("tr_")
        self._objects[transfer_id] = {
            "id": transfer_id,
            "object": "transfer",
            "amount": amount,
            "amount_reversed": 0,
            "balance_transaction": None,
            "created": int(time.time()),
            "currency": currency,
            "description": None,
            "destination": destination["id"],
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
            "reversals": {"object": "list", "data": [], "has_more": False, "total_count": 0},
            "reversed": False,
            "source_transaction": None,
            "transfer_group": params.get("transfer_group"),
        }
        return 200, _public(self._objects[transfer_id])

    def complete_onboarding(self, account_id: str) -> JSON:
        """The artist finishes Express onboarding: ``account.updated``, transfers active."""
        with self._lock:
            account = self._objects[account_id]
            previous = {"details_submitted": False, "capabilities": dict(account["capabilities"])}
            account.update(details_submitted=True, payouts_enabled=True, charges_enabled=True)
            account["capabilities"]["transfers"] = "active"
            return self.event("account.updated", account, previous)

    def reverse_transfer(self, transfer_id: str, amount: int | None = None) -> JSON:
        """The platform takes a transfer back (all that is left by default):
        ``transfer.reversed``."""
        with self._lock:
            transfer = self._objects[transfer_id]
            left = transfer["amount"] - transfer["amount_reversed"]
            amount = left if amount is None else amount
            if not 0 < amount <= left:
                raise ValueError(f"cannot reverse {amount} of {transfer_id} ({left} left)")
            reversal_id = new_id("trr_")
            reversal = {
                "id": reversal_id, "object": "transfer_reversal", "amount": amount,
                "created": int(time.time()), "currency": transfer["currency"],
                "metadata": {}, "transfer": transfer_id,
            }  # fmt: skip
            self._objects[reversal_id] = reversal
            previous = {"amount_reversed": transfer["amount_reversed"], "reversed": transfer["reversed"]}
            transfer["amount_reversed"] += amount
            transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
            reversals = transfer["reversals"]
            reversals["data"].insert(0, copy.deepcopy(reversal))
            reversals["total_count"] += 1
            return self.event("transfer.reversed", transfer, previous)

    # What Stripe does, driven by tests ------------------------------------------------------

    def complete_session(
        self, session_id: str, *, fee: int | None = None, paid: bool = True
    ) -> JSON:
        """The buyer pays: ``checkout.session.completed``.

        ``paid`` False is a payment method that clears later (a bank debit): the session is
        complete but unpaid, its charge pending, until ``async_payment_succeeded`` or
        ``_failed``. ``fee`` defaults to the card fee.
        """
        with self._lock:
            checkout = self._open_session(session_id)
            now = int(time.time())
            intent_id, charge_id = new_id("pi_"), new_id("ch_")
            amount, currency = checkout["amount_total"], checkout["currency"]
            metadata = dict(checkout["_payment_intent_metadata"])
            self._objects[intent_id] = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": amount,
                "amount_capturable": 0,
                "amount_received": 0,
                "capture_method": "automatic_async",
                "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
                "confirmation_method": "automatic",
                "created": now,
                "currency": currency,
                "customer": None,
                "description": None,
                "last_payment_error": None,
                "latest_charge": charge_id,
                "livemode": False,
                "metadata": metadata,
                "payment_method": new_id("pm_"),
                "payment_method_types": ["card"],
                "status": "processing",
            }
            self._objects[charge_id] = {
                "id": charge_id,
                "object": "charge",
                "amount": amount,
                "amount_captured": amount,
                "amount_refunded": 0,
                "balance_transaction": None,
                "billing_details": {"email": checkout["customer_email"], "name": None},
                "captured": True,
                "created": now,
                "currency": currency,
                "customer": None,
                "description": None,
                "disputed": False,
                "failure_code": None,
                "failure_message": None,
                "livemode": False,
                # Stripe copies the PaymentIntent's metadata to the charge it makes.
                "metadata": dict(metadata),
                "paid": False,
                "payment_intent": intent_id,
                "payment_method": self._objects[intent_id]["payment_method"],
                "refunded": False,
                "status": "pending",
            }
            checkout.update(
                status="complete",
                payment_intent=intent_id,
                customer_details={"email": checkout["customer_email"], "name": None},
                url=None,
            )
            if paid:
                self._clear(checkout, fee)
            return self.event("checkout.session.completed", checkout)

    def async_payment_succeeded(self, session_id: str, *, fee: int | None = None) -> JSON:
        """A late payment cleared: ``checkout.session.async_payment_succeeded``."""
        with self._lock:
            checkout = self._awaiting_payment(session_id)
            self._clear(checkout, fee)
            return self.event("checkout.session.async_payment_succeeded", checkout)

    def async_payment_failed(self, session_id: str) -> JSON:
        """A late payment failed: ``checkout.session.async_payment_failed``."""
        with self._lock:
            checkout = self._awaiting_payment(session_id)
            intent = self._objects[checkout["payment_intent"]]
            charge = self._objects[intent["latest_charge"]]
            charge.update(status="failed", failure_code="insufficient_funds",
                          failure_message="The account has insufficient funds.")  # fmt: skip
            intent.update(
                status="requires_payment_method",
                last_payment_error={"code": "insufficient_funds", "type": "card_error"},
            )
            return self.event("checkout.session.async_payment_failed", checkout)

    def expire_session(self, session_id: str) -> JSON:
        """The buyer never paid: ``checkout.session.expired``."""
        with self._lock:
            checkout = self._open_session(session_id)
            checkout.update(status="expired", url=None)
            return self.event("checkout.session.expired", checkout)

    def refund(self, charge_id: str, amount: int | None = None) -> JSON:
        """Refund ``amount`` (default: all that is left) of a paid charge: ``charge.refunded``.

        The charge's ``amount_refunded`` is cumulative, and each refund has its own balance
        transaction (Stripe keeps its processing fee).
        """
        with self._lock:
            charge = self._objects[charge_id]
            left = charge["amount"] - charge["amount_refunded"]
            amount = left if amount is None else amount
            if not charge["paid"] or not 0 < amount <= left:
                raise ValueError(f"cannot refund {amount} of {charge_id} ({left} left)")
            refund_id, now = new_id("re_"), int(time.time())
            transaction = self._balance_transaction(
                -amount, 0, charge["currency"], source=refund_id, kind="refund",
                category="refund", description="REFUND FOR CHARGE",
            )  # fmt: skip
            self._objects[refund_id] = {
                "id": refund_id,
                "object": "refund",
                "amount": amount,
                "balance_transaction": transaction["id"],
                "charge": charge_id,
                "created": now,
                "currency": charge["currency"],
                "metadata": {},
                "payment_intent": charge["payment_intent"],
                "reason": "requested_by_customer",
                "status": "succeeded",
            }
            self._refunds.setdefault(charge_id, []).append(refund_id)
            previous = {key: charge[key] for key in ("amount_refunded", "refunded")}
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            return self.event("charge.refunded", charge, previous)

    def create_dispute(
        self, charge_id: str, *, fee: int = DISPUTE_FEE_MINOR, inquiry: bool = False
    ) -> JSON:
        """The buyer's bank disputes the charge: ``charge.dispute.created``.

        A chargeback withdraws the amount and the dispute fee at once (one balance transaction).
        An ``inquiry`` ("warning_needs_response") withdraws nothing until ``escalate``.
        """
        with self._lock:
            charge = self._objects[charge_id]
            if not charge["paid"]:
                raise ValueError(f"{charge_id} was never paid")
            dispute_id = new_id("dp_")
            self._objects[dispute_id] = {
                "id": dispute_id,
                "object": "dispute",
                "amount": charge["amount"],
                "balance_transactions": [],
                "charge": charge_id,
                "created": int(time.time()),
                "currency": charge["currency"],
                "evidence": {"customer_email_address": charge["billing_details"]["email"]},
                "evidence_details": {
                    "due_by": int(time.time()) + 7 * 24 * 3600,
                    "has_evidence": False,
                    "past_due": False,
                    "submission_count": 0,
                },
                "is_charge_refundable": inquiry,
                "livemode": False,
                "metadata": {},
                "payment_intent": charge["payment_intent"],
                "reason": "fraudulent",
                "status": "warning_needs_response",
            }
            charge["disputed"] = True
            if not inquiry:
                self._withdraw(self._objects[dispute_id], fee)
            return self.event("charge.dispute.created", self._objects[dispute_id])

    def escalate(self, dispute_id: str, *, fee: int = DISPUTE_FEE_MINOR) -> JSON:
        """An inquiry becomes a chargeback: ``charge.dispute.funds_withdrawn``."""
        with self._lock:
            dispute = self._objects[dispute_id]
            if dispute["status"] != "warning_needs_response":
                raise ValueError(f"{dispute_id} is not an open inquiry")
            previous = {"status": dispute["status"], "balance_transactions": []}
            self._withdraw(dispute, fee)
            return self.event("charge.dispute.funds_withdrawn", dispute, previous)

    def close_dispute(self, dispute_id: str, *, won: bool) -> JSON:
        """The bank decides: ``charge.dispute.closed``. Won reinstates the amount (Stripe keeps
        the dispute fee); lost leaves the withdrawal. An inquiry closes as "warning_closed"."""
        with self._lock:
            dispute = self._objects[dispute_id]
            if dispute["status"] in ("won", "lost", "warning_closed"):
                raise ValueError(f"{dispute_id} is closed already")
            previous = {"status": dispute["status"]}
            if dispute["status"] == "warning_needs_response":
                dispute["status"] = "warning_closed"
            else:
                dispute["status"] = "won" if won else "lost"
            if dispute["status"] == "won":
                dispute["balance_transactions"].append(
                    self._balance_transaction(
                        dispute["amount"], 0, dispute["currency"], source=dispute_id,
                        kind="adjustment", category="dispute_reversal",
                        description=f"Chargeback reversal for {dispute['charge']}",
                    )
                )  # fmt: skip
            return self.event("charge.dispute.closed", dispute, previous)

    def webhook_request(
        self, event: JSON, *, timestamp: int | None = None, secret: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the delivery of ``event``, signed as Stripe signs it."""
        body = json.dumps(event, indent=2).encode()
        signature = sign(body, self.webhook_secret if secret is None else secret, timestamp)
        return body, {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature,
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }

    def event(self, kind: str, obj: JSON, previous: JSON | None = None) -> JSON:
        """The Event Stripe sends about ``obj`` (a copy): what every helper above returns.

        Tests may call it to make an event Stripe would not send, to see it refused.
        """
        data: JSON = {"object": _public(obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        return {
            "id": new_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }

    # Internals ------------------------------------------------------------------------------

    def _open_session(self, session_id: str) -> JSON:
        checkout = self._objects[session_id]
        if checkout["status"] != "open":
            raise ValueError(f"{session_id} is {checkout['status']}, not open")
        return checkout

    def _awaiting_payment(self, session_id: str) -> JSON:
        checkout = self._objects[session_id]
        charge = self._objects[self._objects[checkout["payment_intent"]]["latest_charge"]]
        if checkout["status"] != "complete" or charge["status"] != "pending":
            raise ValueError(f"{session_id} is not waiting for a payment")
        return checkout

    def _withdraw(self, dispute: JSON, fee: int) -> None:
        """Stripe takes the disputed amount and its dispute fee back from the balance."""
        dispute["balance_transactions"].append(
            self._balance_transaction(
                -dispute["amount"], fee, dispute["currency"], source=dispute["id"],
                kind="adjustment", category="dispute",
                description=f"Chargeback withdrawal for {dispute['charge']}",
                fee_description="Dispute fee",
            )
        )  # fmt: skip
        dispute["status"] = "needs_response"
        dispute["is_charge_refundable"] = False

    def _clear(self, checkout: JSON, fee: int | None) -> None:
        """The payment succeeds: the charge is paid, with its balance transaction and fee."""
        intent = self._objects[checkout["payment_intent"]]
        charge = self._objects[intent["latest_charge"]]
        amount = charge["amount"]
        transaction = self._balance_transaction(
            amount, card_fee(amount) if fee is None else fee, charge["currency"],
            source=charge["id"], kind="charge", category="charge",
            description=None, fee_description="Stripe processing fees",
        )  # fmt: skip
        charge.update(balance_transaction=transaction["id"], paid=True, status="succeeded")
        intent.update(status="succeeded", amount_received=amount)
        checkout["payment_status"] = "paid"

    def _balance_transaction(
        self,
        amount: int,
        fee: int,
        currency: str,
        *,
        source: str,
        kind: str,
        category: str,
        description: str | None,
        fee_description: str = "Stripe processing fees",
    ) -> JSON:
        transaction_id, now = new_id("txn_"), int(time.time())
        transaction = {
            "id": transaction_id,
            "object": "balance_transaction",
            "amount": amount,
            "available_on": now + PAYOUT_DELAY_SECONDS,
            "created": now,
            "currency": currency,
            "description": description,
            "exchange_rate": None,
            "fee": fee,
            "fee_details": [
                {"amount": fee, "application": None, "currency": currency,
                 "description": fee_description, "type": "stripe_fee"}
            ] if fee else [],
            "net": amount - fee,
            "reporting_category": category,
            "source": source,
            "status": "pending",
            "type": kind,
        }  # fmt: skip
        self._objects[transaction_id] = transaction
        return copy.deepcopy(transaction)


def _public(obj: JSON) -> JSON:
    """A copy of a stored object without the server's own bookkeeping fields."""
    return {key: copy.deepcopy(value) for key, value in obj.items() if not key.startswith("_")}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG
    fake: FakeStripe


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so no client holds a socket open after a test.
    protocol_version = "HTTP/1.0"
    server: _Server

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test's assertions say what matters."""

    def _answer(self, method: str) -> None:
        target = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        params = parse_params(target.query if method == "GET" else body)
        (status, payload), replayed = self.server.fake.handle(
            method, target.path, params, {k.lower(): v for k, v in self.headers.items()}
        )
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", new_id("req_"))
        if replayed:
            self.send_header("Idempotent-Replayed", "true")
        self.end_headers()
        self.wfile.write(data)
