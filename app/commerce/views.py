"""Commerce pages: the cart, checkout, the sandbox's checkout page, orders, the studio's sales.

The cart lives in the Flask session (a signed cookie) as a list of
``{"release_id", "track_id", "amount_minor"}`` lines, so a visitor can fill it before signing
in. Checkout needs an account; it creates the order through ``service.start_checkout`` with the
configured gateway and sends the buyer to the gateway's page. Items leave the cart once their
order is seen paid; a cancelled or declined checkout leaves the cart as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
from flask import session as cookie_session
from flask_login import current_user, login_required, user_logged_out
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from app.catalog.models import Artist
from app.commerce import sandbox, service
from app.commerce.errors import InvalidSignature, OrderNotFound
from app.commerce.gateways import get_gateway
from app.commerce.models import Order, OrderStatus
from app.commerce.schemas import (
    CartAddForm,
    CartItemForm,
    CartLineSchema,
    PageArgs,
    SaleSchema,
    SandboxActionForm,
    read_offered_amount,
)
from app.commerce.service import CartLine, Offer
from app.errors import DomainError
from app.extensions import csrf, db
from app.ledger.money import Money

bp = Blueprint("commerce", __name__)

CART_KEY = "cart"
# How often a page waiting for a payment reloads itself, and the studio asks for new sales.
PENDING_REFRESH_SECONDS = 3
SALES_POLL_SECONDS = 10
STATUS_LABELS = {
    OrderStatus.PENDING: "Pending",
    OrderStatus.PAID: "Paid",
    OrderStatus.PARTIALLY_REFUNDED: "Partly refunded",
    OrderStatus.REFUNDED: "Refunded",
    OrderStatus.DISPUTED: "Disputed",
    OrderStatus.FAILED: "Payment declined",
    OrderStatus.EXPIRED: "Checkout expired",
}


@bp.app_context_processor
def _cart_count() -> dict[str, Any]:
    return {"cart_count": len(_stored_lines())}


@bp.app_template_filter("money")
def money(minor: int, currency: str) -> str:
    """``{{ 700|money("USD") }}`` is "$7.00"."""
    return Money(minor, currency).format()


@bp.app_template_filter("order_status")
def order_status(status: OrderStatus) -> str:
    return STATUS_LABELS[status]


def order_url(order: Order) -> str:
    """The order's confirmation page: where a gateway returns the buyer after paying."""
    return url_for("commerce.order_page", public_id=order.public_id, _external=True)


def cart_url(order: Order) -> str:
    """Where a gateway returns a buyer who cancelled: the cart, refilled from the order."""
    return url_for("commerce.cart", restore=order.public_id, _external=True)


# The cart --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CartEntry:
    line: CartLine
    offer: Offer
    amount_minor: int

    @property
    def key(self) -> tuple[int, int | None]:
        return _line_key(self.line)


def _stored_lines() -> list[CartLine]:
    stored = cookie_session.get(CART_KEY)
    if not isinstance(stored, list):
        return []
    try:
        loaded = CartLineSchema(many=True).load(stored)
    except ValidationError:
        return []  # written by an older version of the cart: start afresh
    return [CartLine(**line) for line in loaded]


def _store_lines(lines: Iterable[CartLine]) -> None:
    cookie_session[CART_KEY] = [
        {
            "release_id": line.release_id,
            "track_id": line.track_id,
            "amount_minor": line.amount_minor,
            "currency": line.currency,
        }
        for line in lines
    ]


def _cart_entries() -> list[CartEntry]:
    """The cart's lines with what they cost now; lines no longer for sale are dropped."""
    lines = _stored_lines()
    entries = []
    for line in lines:
        try:
            offer = service.offer_for(db.session, line)
        except DomainError as exc:
            flash(f"An item left your cart: {exc.message}", "info")
            continue
        amount = offer.list_price_minor if line.amount_minor is None else line.amount_minor
        entries.append(CartEntry(line, offer, amount))
    if len(entries) != len(lines):
        _store_lines(entry.line for entry in entries)
    return entries


def _line_key(line: CartLine) -> tuple[int, int | None]:
    return line.release_id, line.track_id


@user_logged_out.connect
def _empty_cart_on_sign_out(sender: Any, **extra: Any) -> None:
    # The browser's session outlives the sign-out; what the last person put in the cart
    # must not be the next person's.
    cookie_session.pop(CART_KEY, None)


@bp.get("/cart")
def cart() -> str | Response:
    restore = request.args.get("restore")
    if restore:
        _restore_cart(restore)
        return redirect(url_for("commerce.cart"))
    entries = _cart_entries()
    currency = entries[0].offer.currency if entries else None
    total = sum(entry.amount_minor for entry in entries)
    return render_template("commerce/cart.html", entries=entries, currency=currency, total=total)


@bp.post("/cart/add")
def add_to_cart() -> Response | tuple[str, int]:
    form = CartAddForm().load(request.form)
    line = CartLine(form["release_id"], form["track_id"])
    offer = service.offer_for(db.session, line)
    errors: dict[str, list[str]] = {}
    amount = None
    if form["amount"] is not None:
        try:
            amount = read_offered_amount(form["amount"], offer.currency, offer.minimum_minor)
        except ValidationError as exc:
            errors["amount"] = list(exc.messages)
    entries = _cart_entries()
    # A whole release replaces any of its tracks already in the cart.
    others = [
        entry
        for entry in entries
        if entry.key != _line_key(line)
        and not (line.track_id is None and entry.line.release_id == line.release_id)
    ]
    if line.track_id is not None and (line.release_id, None) in {e.key for e in entries}:
        errors["_form"] = [f"Your cart holds {offer.release.title}, which includes this track."]
    elif others and others[0].offer.currency != offer.currency:
        errors["_form"] = [
            f"Your cart holds items priced in {others[0].offer.currency} and this one is priced "
            f"in {offer.currency}. An order is paid in one currency: check out your cart or "
            "empty it first."
        ]
    elif len(others) >= int(current_app.config["MAX_CART_ITEMS"]):
        errors["_form"] = [
            f"Your cart is full ({len(others)} items). Check out before adding more."
        ]
    if errors:
        page = render_template(
            "catalog/release.html",
            release=offer.release,
            buy_errors=errors,
            buy_target=_line_key(line),
            buy_amount=form["amount"] or "",
        )
        return page, 422
    updated = any(entry.key == _line_key(line) for entry in entries)
    tracks_dropped = len(entries) - len(others) - updated
    added = CartLine(line.release_id, line.track_id, amount, offer.currency)
    _store_lines([entry.line for entry in others] + [added])
    if updated:
        flash(f"Updated “{offer.title}” in your cart.", "success")
    elif tracks_dropped:
        flash(f"Added “{offer.title}” to your cart, in place of its tracks.", "success")
    else:
        flash(f"Added “{offer.title}” to your cart.", "success")
    return redirect(url_for("commerce.cart"))


@bp.post("/cart/remove")
def remove_from_cart() -> Response:
    form = CartItemForm().load(request.form)
    key = (form["release_id"], form["track_id"])
    _store_lines(line for line in _stored_lines() if _line_key(line) != key)
    flash("Removed from your cart.", "info")
    return redirect(url_for("commerce.cart"))


@bp.post("/cart/checkout")
def checkout() -> Response:
    if not current_user.is_authenticated:
        flash("Sign in or create an account to check out. Your cart is kept.", "info")
        return redirect(url_for("accounts.login_page", next=url_for("commerce.cart")))
    try:
        order, target = service.start_checkout(
            db.session,
            get_gateway(current_app),
            current_user,
            [entry.line for entry in _cart_entries()],
            config=current_app.config,
            success_url=order_url,
            cancel_url=cart_url,
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("commerce.cart"))
    # The items now wait in the order: a second checkout (a double click, the Back button)
    # finds an empty cart instead of buying them twice. Cancelling refills the cart.
    _store_lines([])
    return redirect(target)


def _restore_cart(public_id: str) -> None:
    """Put a checkout the buyer left back into the cart, and end that checkout."""
    if not current_user.is_authenticated:
        return
    order = service.order_by_public_id(db.session, public_id)
    if order is None or order.buyer_id != current_user.id or order.owns_items:
        return
    service.record_checkout_abandoned(db.session, order)
    db.session.commit()
    lines = [
        CartLine(item.release_id, item.track_id, item.amount_minor, order.currency)
        for item in order.items
    ]
    kept = {_line_key(line) for line in lines}
    _store_lines(lines + [line for line in _stored_lines() if _line_key(line) not in kept])
    flash("Your items are back in your cart.", "info")


def _forget_bought(order: Order) -> None:
    bought = {(item.release_id, item.track_id) for item in order.items}
    lines = _stored_lines()
    kept = [line for line in lines if _line_key(line) not in bought]
    if len(kept) != len(lines):
        _store_lines(kept)


# Orders ----------------------------------------------------------------------------------


@bp.get("/orders")
@login_required
def orders() -> str:
    page = PageArgs().load(request.args)["page"]
    size = int(current_app.config["PAGE_SIZE"])
    found = service.buyer_orders(db.session, current_user, size + 1, (page - 1) * size)
    return render_template(
        "commerce/orders.html", orders=found[:size], page=page, has_next=len(found) > size
    )


@bp.get("/orders/<public_id>")
@login_required
def order_page(public_id: str) -> str:
    order = service.buyer_order(db.session, public_id, current_user)
    if order.owns_items:
        _forget_bought(order)
    awaiting_sandbox = (
        order.status is OrderStatus.PENDING
        and order.gateway == sandbox.NAME
        and order.checkout_session_id is not None
        and not sandbox.is_processing(order)
    )
    processing = order.status is OrderStatus.PENDING and order.payment_reference is not None
    return render_template(
        "commerce/order.html",
        order=order,
        processing=processing,
        refresh_seconds=PENDING_REFRESH_SECONDS if processing else None,
        sandbox_url=(
            url_for("commerce.sandbox_checkout", session_id=order.checkout_session_id)
            if awaiting_sandbox
            else None
        ),
    )


# The sandbox gateway's checkout page -------------------------------------------------------


def _sandbox_order(session_id: str) -> Order:
    """The sandbox order of this checkout session, if it is the signed-in user's."""
    order = service.order_for_checkout_session(db.session, session_id)
    if order is None or order.gateway != sandbox.NAME or order.buyer_id != current_user.id:
        raise OrderNotFound("No such checkout.")
    return order


def _returns(order: Order) -> tuple[str, str]:
    signed = sandbox.return_urls(current_app.config, request.args.get("r"))
    return signed or (order_url(order), cart_url(order))


@bp.get("/checkout/sandbox/<session_id>")
@login_required
def sandbox_checkout(session_id: str) -> str:
    order = _sandbox_order(session_id)
    success, cancel = _returns(order)
    processing = sandbox.is_processing(order)
    return render_template(
        "commerce/sandbox.html",
        order=order,
        processing=processing,
        fee_minor=sandbox.processor_fee(order.total_minor, current_app.config),
        success_url=success,
        cancel_url=cancel,
        returns_token=request.args.get("r", ""),
        refresh_seconds=PENDING_REFRESH_SECONDS if processing else None,
    )


@bp.post("/checkout/sandbox/<session_id>")
@login_required
def sandbox_action(session_id: str) -> Response:
    action = SandboxActionForm().load(request.form)["action"]
    order = _sandbox_order(session_id)
    success, _ = _returns(order)
    page = url_for("commerce.sandbox_checkout", session_id=session_id, r=request.args.get("r"))
    if order.status is not OrderStatus.PENDING or sandbox.is_processing(order):
        flash("This checkout is finished already.", "info")
        return redirect(page)
    config = current_app.config
    if action == "pay":
        sandbox.deliver(db.session, order, sandbox.PAYMENT_SUCCEEDED, config)
    elif action == "decline":
        sandbox.deliver(db.session, order, sandbox.PAYMENT_FAILED, config, sandbox.DECLINE_REASON)
    else:
        sandbox.pay_later(db.session, order)
    db.session.commit()
    if action == "decline":
        flash("The sandbox declined the payment. Nothing was charged.", "error")
        return redirect(page)
    return redirect(success)


@bp.post("/checkout/sandbox/events")
@csrf.exempt  # a signed event proves itself; there is no browser session to protect
def sandbox_events() -> Response | tuple[Response, int]:
    """Deliver a signed sandbox event over HTTP: 200 once applied, 400 for a bad signature."""
    try:
        order = sandbox.receive_event(
            db.session,
            request.get_data(),
            request.headers.get(sandbox.SIGNATURE_HEADER, ""),
            current_app.config,
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        status = 400 if isinstance(exc, InvalidSignature) else exc.status
        return jsonify({"error": exc.code, "message": exc.message, "details": exc.details}), status
    return jsonify({"received": True, "order": order.public_id, "status": order.status.value})


# The studio's sales feed -----------------------------------------------------------------


def studio_sales(artists: Sequence[Artist]) -> dict[str, list[dict[str, Any]]]:
    """Each artist's recent sales (slug -> sales, newest first), as the studio shows them."""
    limit = int(current_app.config["PAGE_SIZE"])
    schema = SaleSchema(many=True)
    return {
        artist.slug: schema.dump(service.artist_sales(db.session, artist.id, limit))
        for artist in artists
    }


@bp.get("/studio/sales.json")
@login_required
def studio_sales_feed() -> Response:
    return jsonify({"artists": studio_sales(current_user.artists)})
