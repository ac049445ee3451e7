"""Who is calling /api/v1: a bearer token, or the browser's session with its CSRF token.

- A request with an ``Authorization`` header is authenticated by that header alone: it must be
  ``Bearer <token>`` with a live token, or the request gets 401, whatever session cookie it
  also carries. So a stray header cannot carry a cookie session past the CSRF check.
- Without one, the session cookie decides. A write (POST, PUT, PATCH, DELETE) needs a signed-in
  session, or it gets 401 ``unauthorized`` (not a CSRF error), and then the page's CSRF token
  in ``X-CSRFToken``. A few writes are open to anonymous listeners (``allows_anonymous``: a
  play and its heartbeats, an ad impression); they still need the page's CSRF token, so another
  site cannot make its visitors' browsers play music for it.

Tokens are looked up for /api/v1 requests only; HTML pages never accept them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import current_app, g, request
from flask_login import current_user

from app.accounts.service import user_for_token
from app.api.helpers import Unauthorized, bearer_token
from app.extensions import csrf, db

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ANONYMOUS_ATTRIBUTE = "megabox_allows_anonymous"
V = TypeVar("V", bound=Callable[..., object])


def allows_anonymous(view: V) -> V:
    """Mark an /api/v1 write that anonymous visitors may make (with the page's CSRF token)."""
    setattr(view, _ANONYMOUS_ATTRIBUTE, True)
    return view


def authenticate() -> None:
    """Run before every /api/v1 view. Raises Unauthorized, or CSRFError for a cookie write."""
    if "Authorization" in request.headers:
        token = bearer_token()
        user = user_for_token(db.session, token) if token is not None else None
        if user is None:
            raise Unauthorized("That API token is not valid or has been revoked.")
        g._login_user = user  # Flask-Login's per-request user: the token's, not the cookie's
        db.session.commit()  # keeps the token's last-used time
        return
    if request.method not in UNSAFE_METHODS:
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if not current_user.is_authenticated and not getattr(view, _ANONYMOUS_ATTRIBUTE, False):
        raise Unauthorized("Sign in or send an API token: Authorization: Bearer <token>.")
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()
