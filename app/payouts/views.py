"""Pages of app.payouts: the artist's payouts in the studio, the admin's runs, and the webhook
that tells us a transfer was reversed.

- ``/studio/payouts``: each of the signed-in user's artists, with its payout account (connect
  it), balances, the minimum per currency, and its payout history.
- ``POST /studio/payouts/<slug>/connect``: make the payout account and send the artist to
  onboarding: Stripe's hosted Express onboarding (an account link), or the sandbox's page
  here. Stripe sends the artist back to ``.../return`` (done, or not yet) or ``.../onboarding``
  (the link expired: a fresh one).
- ``/admin/payouts``: runs, failures, and ``/admin/payouts/preview``: what a run would pay now.
- ``POST /webhooks/stripe/payouts``: Stripe events about transfers, signed like checkout's
  (``STRIPE_WEBHOOK_SECRET``). ``transfer.reversed`` reverses the payout.

An artist's pages answer 404 to anyone but its owner (and admins), as if it did not exist.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.accounts.current import admin_required, viewer
from app.catalog.models import Artist
from app.commerce.errors import InvalidSignature
from app.commerce.stripe_gateway import StripeGateway
from app.extensions import csrf, db
from app.ledger import service as ledger
from app.ledger.money import Money
from app.payouts import service
from app.payouts.errors import AccountNotConnected
from app.payouts.gateways import SANDBOX, PayoutGateway, payout_gateway
from app.payouts.stripe_events import apply_event
from app.timestamps import utcnow

logger = logging.getLogger(__name__)

bp = Blueprint("payouts", __name__)

SIGNATURE_HEADER = "Stripe-Signature"


def _gateway(slug: str) -> PayoutGateway:
    return payout_gateway(
        current_app.config,
        sandbox_onboarding_url=url_for("payouts.sandbox_onboarding", slug=slug, _external=True),
    )


# Studio -------------------------------------------------------------------------------------


@bp.get("/studio/payouts")
@login_required
def studio() -> str:
    config = current_app.config
    summaries = [
        {
            "artist": artist,
            "account": service.payout_account(db.session, artist.id),
            "balances": [
                Money(minor, currency)
                for currency, minor in sorted(ledger.artist_balances(db.session, artist.id).items())
            ],
            "payouts": service.artist_payouts(db.session, artist.id),
        }
        for artist in current_user.artists
    ]
    minimums = [Money(m, c) for c, m in sorted(service.payout_minimums(config).items())]
    return render_template(
        "payouts/studio.html",
        summaries=summaries,
        minimums=minimums,
        gateway=config["PAYMENT_GATEWAY"],
        Money=Money,
    )


@bp.post("/studio/payouts/<slug>/connect")
@login_required
def connect(slug: str) -> Response:
    artist = service.owned_artist(db.session, slug, viewer())
    gateway = _gateway(slug)
    account = service.connect_account(db.session, gateway, artist, current_user.email)
    db.session.commit()
    return redirect(_onboarding_url(gateway, slug, account.external_id))


@bp.get("/studio/payouts/<slug>/onboarding")
@login_required
def onboarding_refresh(slug: str) -> Response:
    """Where Stripe sends an artist whose onboarding link expired: a fresh link."""
    artist = service.owned_artist(db.session, slug, viewer())
    account = _connected(artist)
    return redirect(_onboarding_url(_gateway(slug), slug, account.external_id))


@bp.get("/studio/payouts/<slug>/return")
@login_required
def onboarding_return(slug: str) -> Response:
    artist = service.owned_artist(db.session, slug, viewer())
    _finish(artist, _gateway(slug))
    return redirect(url_for("payouts.studio"))


@bp.route("/studio/payouts/<slug>/sandbox", methods=["GET", "POST"])
@login_required
def sandbox_onboarding(slug: str) -> Any:
    """The sandbox's stand-in for Stripe's onboarding: one button connects the account."""
    artist = service.owned_artist(db.session, slug, viewer())
    account = _connected(artist)
    if account.gateway != SANDBOX or current_app.config["PAYMENT_GATEWAY"] != SANDBOX:
        raise AccountNotConnected("This payout account is not a sandbox account.")
    if request.method == "POST":
        _finish(artist, _gateway(slug))
        return redirect(url_for("payouts.studio"))
    return render_template("payouts/sandbox.html", artist=artist, account=account)


def _connected(artist: Artist) -> Any:
    account = service.payout_account(db.session, artist.id)
    if account is None:
        raise AccountNotConnected("Connect a payout account first.")
    return account


def _onboarding_url(gateway: PayoutGateway, slug: str, external_id: str) -> str:
    return gateway.onboarding_url(
        external_id,
        return_url=url_for("payouts.onboarding_return", slug=slug, _external=True),
        refresh_url=url_for("payouts.onboarding_refresh", slug=slug, _external=True),
    )


def _finish(artist: Artist, gateway: PayoutGateway) -> None:
    account = _connected(artist)
    if service.finish_onboarding(db.session, gateway, account, utcnow()):
        db.session.commit()
        flash(f"{artist.name}'s payout account is connected.", "success")
    else:
        flash("Onboarding is not finished yet. Connect again to continue.", "info")


# Admin --------------------------------------------------------------------------------------


@bp.get("/admin/payouts")
@admin_required
def admin() -> str:
    return render_template(
        "payouts/admin.html",
        runs=service.recent_runs(db.session),
        failures=service.failed_payouts(db.session),
        planned=None,
        Money=Money,
    )


@bp.get("/admin/payouts/preview")
@admin_required
def preview() -> str:
    config = current_app.config
    return render_template(
        "payouts/admin.html",
        runs=service.recent_runs(db.session),
        failures=service.failed_payouts(db.session),
        planned=service.plan_payouts(db.session, config, config["PAYMENT_GATEWAY"]),
        Money=Money,
    )


# Webhook ------------------------------------------------------------------------------------


@bp.post("/webhooks/stripe/payouts")
@csrf.exempt
def stripe_webhook() -> Response:
    """Verify a Stripe transfer event, apply it, commit, and acknowledge it."""
    try:
        event = StripeGateway(current_app.config).verify_event(
            request.get_data(), request.headers.get(SIGNATURE_HEADER)
        )
    except InvalidSignature as exc:
        logger.warning("stripe payouts webhook refused: %s %s", exc.message, exc.details)
        response = jsonify({"error": exc.code, "message": exc.message, "details": {}})
        response.status_code = 400
        return response
    ignored = apply_event(db.session, event)
    db.session.commit()
    body: dict[str, Any] = {"received": True}
    if ignored is not None:
        logger.info("stripe event %s (%s) ignored: %s", event.get("id"), event.get("type"), ignored)
        body["ignored"] = ignored
    return jsonify(body)
