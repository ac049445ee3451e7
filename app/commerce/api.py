"""/api/v1 orders: buy through the API, and read your own orders.

``POST /orders`` creates the order and opens the configured gateway's checkout in one step;
the buyer pays at ``checkout_url`` (a browser page), or nowhere when the order costs nothing.
The order's status then moves as the gateway reports the payment: poll ``GET /orders/<id>``.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from werkzeug.wrappers import Response

from app.api.helpers import json_body, paging, require_user
from app.api.spec import operation
from app.commerce import service
from app.commerce.gateways import get_gateway
from app.commerce.models import OrderStatus
from app.commerce.schemas import OrderCreatedSchema, OrderCreateSchema, OrderSchema
from app.commerce.views import cart_url, order_url
from app.extensions import db

bp = Blueprint("commerce_api", __name__)
PAGING = {"limit": {"type": "integer", "minimum": 1}, "offset": {"type": "integer", "minimum": 0}}


@bp.post("/orders")
@operation("Buy: create an order and open its checkout", tag="orders", body=OrderCreateSchema,
           response=OrderCreatedSchema, status=201, auth=True)  # fmt: skip
def create_order() -> tuple[Response, int]:
    buyer = require_user()
    data = OrderCreateSchema().load(json_body())
    order, target = service.start_checkout(
        db.session,
        get_gateway(current_app),
        buyer,
        [service.CartLine(**line) for line in data["items"]],
        config=current_app.config,
        success_url=order_url,
        cancel_url=cart_url,
    )
    db.session.commit()
    checkout_url = None if order.status is OrderStatus.PAID else target
    return jsonify({**OrderCreatedSchema().dump(order), "checkout_url": checkout_url}), 201


@bp.get("/orders")
@operation("List your orders, newest first", tag="orders", response=OrderSchema, many=True,
           query=PAGING, auth=True)  # fmt: skip
def list_orders() -> Response:
    buyer = require_user()
    limit, offset = paging()
    found = service.buyer_orders(db.session, buyer, limit, offset)
    return jsonify(OrderSchema(many=True).dump(found))


@bp.get("/orders/<public_id>")
@operation("Get one of your orders", tag="orders", response=OrderSchema, auth=True)
def get_order(public_id: str) -> Response:
    order = service.buyer_order(db.session, public_id, require_user())
    return jsonify(OrderSchema().dump(order))
