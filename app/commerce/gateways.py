"""The payment gateway the settings choose: ``PAYMENT_GATEWAY`` is "sandbox" or "stripe".

Each gateway implements ``app.commerce.service.PaymentGateway`` (it opens a checkout for an
order) and reports payments by calling the service's ``record_*`` functions from its signed
events: ``app.commerce.sandbox`` (the embedded default, a local checkout page) and
``app.commerce.stripe_gateway`` (Stripe Checkout and its webhooks).
"""

from __future__ import annotations

from flask import Flask

from app.commerce.service import PaymentGateway

GATEWAYS = ("sandbox", "stripe")


def get_gateway(app: Flask) -> PaymentGateway:
    """The configured gateway. Raises ValueError for an unknown ``PAYMENT_GATEWAY``."""
    name = app.config["PAYMENT_GATEWAY"]
    if name == "sandbox":
        from app.commerce.sandbox import SandboxGateway

        return SandboxGateway(app.config)
    if name == "stripe":
        from app.commerce.stripe_gateway import StripeGateway  # stripe only where it is used

        return StripeGateway(app.config)
    raise ValueError(f"unknown payment gateway {name!r}; use one of {', '.join(GATEWAYS)}")
