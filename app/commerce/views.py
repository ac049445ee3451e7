"""Commerce pages: cart, checkout, the sandbox's checkout page, orders (being built)."""

from flask import Blueprint

bp = Blueprint("commerce", __name__)
