"""Commerce errors."""

from app.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound


class OrderNotFound(NotFound):
    code = "order_not_found"


class NotForSale(InvalidInput):
    code = "not_for_sale"


class InvalidAmount(InvalidInput):
    code = "invalid_amount"


class DuplicateItem(InvalidInput):
    code = "duplicate_item"


class MixedCurrencies(InvalidInput):
    code = "mixed_currencies"


class EmptyCart(InvalidInput):
    code = "empty_cart"


class CartFull(InvalidInput):
    code = "cart_full"


class NotYourOrder(Forbidden):
    code = "not_your_order"


class OrderStateConflict(Conflict):
    """The order is not in a state that allows this (paying an expired order, say)."""

    code = "order_state_conflict"


class PaymentMismatch(Conflict):
    """The gateway reported a payment that does not match the order (amount or currency)."""

    code = "payment_mismatch"


class InvalidSignature(InvalidInput):
    code = "invalid_signature"
    status = 400


class GatewayUnavailable(DomainError):
    """The payment processor could not be reached or refused the call; nothing was recorded."""

    code = "gateway_unavailable"
    status = 503
