"""Where payouts go: Stripe Connect Express accounts and transfers, or the sandbox.

The gateway is checkout's (``PAYMENT_GATEWAY``): the money an artist is owed sits in that
processor's balance (``clearing:<gateway>:<CUR>``), and a transfer moves it out.

``StripePayouts`` talks to Stripe (or any Stripe-compatible server, ``STRIPE_API_BASE``) through
the same cached ``StripeClient`` as checkout. A transfer carries the idempotency key
``payout:<id>``, so asking twice (a retry by the library, or a later run resuming a payout whose
outcome was unknown) makes one transfer. Stripe's answers are sorted at this boundary:

- a 4xx refusal of the transfer (no such account, transfers not enabled, insufficient funds)
  raises ``TransferRefused``: no money moved, the payout fails;
- anything else (network, timeout, 5xx, a bad API key, a rate limit) raises
  ``PayoutGatewayUnavailable``: the outcome is unknown or the fault is ours, the payout stays
  pending for the next run.

``SandboxPayouts`` is the embedded mode's pretend processor: an account is connected on a page
of this site, and a transfer always succeeds, with a reference derived from its idempotency
key (so a repeated transfer is the same transfer).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn, Protocol

import stripe

from app.commerce.stripe_gateway import _client
from app.payouts.errors import PayoutGatewayUnavailable, TransferRefused

logger = logging.getLogger(__name__)

STRIPE = "stripe"
SANDBOX = "sandbox"
UNAVAILABLE_MESSAGE = "The payment service is unavailable right now. Try again in a moment."
ACCOUNT_IDEMPOTENCY_PREFIX = "megabox-payout-account-"
SANDBOX_ACCOUNT_PREFIX = "sbxacct_"
SANDBOX_TRANSFER_PREFIX = "sbxtr_"
_SANDBOX_RANDOM_BYTES = 12
_SANDBOX_REFERENCE_HEX = 24
# A refusal's message is kept for the admin; Stripe's run to a sentence or two.
FAILURE_MESSAGE_MAX = 500


class PayoutGateway(Protocol):
    """Connect an artist's account, and pay it. Every method may raise
    PayoutGatewayUnavailable; ``transfer`` may also raise TransferRefused."""

    name: str

    def create_account(self, artist_id: int, email: str | None) -> str:
        """A new connected account for the artist: its external id."""
        ...

    def onboarding_url(self, external_id: str, *, return_url: str, refresh_url: str) -> str:
        """Where the artist finishes connecting the account."""
        ...

    def account_ready(self, external_id: str) -> bool:
        """Whether the account can receive transfers."""
        ...

    def transfer(
        self, *, amount_minor: int, currency: str, destination: str, idempotency_key: str,
        payout_id: int,
    ) -> str:  # fmt: skip
        """Move the amount to the account: the transfer's reference."""
        ...


def payout_gateway(config: Mapping[str, Any], sandbox_onboarding_url: str = "") -> PayoutGateway:
    """The gateway of ``PAYMENT_GATEWAY``. Raises ValueError for an unknown name."""
    name = config["PAYMENT_GATEWAY"]
    if name == SANDBOX:
        return SandboxPayouts(sandbox_onboarding_url)
    if name == STRIPE:
        return StripePayouts(config)
    raise ValueError(f"unknown payment gateway {name!r}")


class SandboxPayouts:
    name = SANDBOX

    def __init__(self, onboarding_page_url: str) -> None:
        self._onboarding_page_url = onboarding_page_url

    def create_account(self, artist_id: int, email: str | None) -> str:
        return SANDBOX_ACCOUNT_PREFIX + secrets.token_hex(_SANDBOX_RANDOM_BYTES)

    def onboarding_url(self, external_id: str, *, return_url: str, refresh_url: str) -> str:
        return self._onboarding_page_url

    def account_ready(self, external_id: str) -> bool:
        # Pressing the sandbox page's button is the whole onboarding.
        return True

    def transfer(
        self, *, amount_minor: int, currency: str, destination: str, idempotency_key: str,
        payout_id: int,
    ) -> str:  # fmt: skip
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:_SANDBOX_REFERENCE_HEX]
        return SANDBOX_TRANSFER_PREFIX + digest


class StripePayouts:
    name = STRIPE

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._secret_key = str(config.get("STRIPE_SECRET_KEY") or "")
        self._api_base = str(config.get("STRIPE_API_BASE") or "").rstrip("/")

    @property
    def _stripe(self) -> stripe.StripeClient:
        if not self._secret_key:
            logger.error("stripe: STRIPE_SECRET_KEY is not set")
            raise PayoutGatewayUnavailable(UNAVAILABLE_MESSAGE, {"setting": "STRIPE_SECRET_KEY"})
        return _client(self._secret_key, self._api_base)

    def create_account(self, artist_id: int, email: str | None) -> str:
        """An Express account able to receive transfers. Keyed by the artist, so a double
        click (or a retry) makes one account."""
        params: dict[str, Any] = {
            "type": "express",
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"artist_id": str(artist_id)},
        }
        if email:
            params["email"] = email
        options: stripe.RequestOptions = {
            "idempotency_key": f"{ACCOUNT_IDEMPOTENCY_PREFIX}{artist_id}"
        }
        with _unavailable_on_error("create account"):
            return str(self._stripe.v1.accounts.create(params, options).id)

    def onboarding_url(self, external_id: str, *, return_url: str, refresh_url: str) -> str:
        params: dict[str, Any] = {
            "account": external_id,
            "type": "account_onboarding",
            "return_url": return_url,
            "refresh_url": refresh_url,
        }
        with _unavailable_on_error("create account link"):
            return str(self._stripe.v1.account_links.create(params).url)

    def account_ready(self, external_id: str) -> bool:
        with _unavailable_on_error("retrieve account"):
            account = self._stripe.v1.accounts.retrieve(external_id).to_dict()
        transfers = (account.get("capabilities") or {}).get("transfers")
        return bool(account.get("details_submitted")) and transfers == "active"

    def transfer(
        self, *, amount_minor: int, currency: str, destination: str, idempotency_key: str,
        payout_id: int,
    ) -> str:  # fmt: skip
        params: dict[str, Any] = {
            "amount": amount_minor,
            "currency": currency.lower(),
            "destination": destination,
            "transfer_group": idempotency_key,
            "metadata": {"payout_id": str(payout_id)},
        }
        options: stripe.RequestOptions = {"idempotency_key": idempotency_key}
        try:
            return str(self._stripe.v1.transfers.create(params, options).id)
        except (stripe.InvalidRequestError, stripe.CardError) as exc:
            if exc.http_status is not None and 400 <= exc.http_status < 500:
                _log_failure("create transfer", exc)
                message = f"Stripe refused the transfer: {exc.user_message or exc.code or ''}"
                raise TransferRefused(message.strip()[:FAILURE_MESSAGE_MAX]) from None
            _raise_unavailable("create transfer", exc)
        except stripe.StripeError as exc:
            _raise_unavailable("create transfer", exc)


@contextmanager
def _unavailable_on_error(action: str) -> Iterator[None]:
    try:
        yield
    except stripe.StripeError as exc:
        _raise_unavailable(action, exc)


def _raise_unavailable(action: str, exc: stripe.StripeError) -> NoReturn:
    _log_failure(action, exc)
    raise PayoutGatewayUnavailable(UNAVAILABLE_MESSAGE, {"action": action}) from None


def _log_failure(action: str, exc: stripe.StripeError) -> None:
    logger.error(
        "stripe: %s failed: %s (status %s, code %s, request %s)",
        action, type(exc).__name__, exc.http_status, exc.code, exc.request_id,
    )  # fmt: skip
