"""The base of every domain error, and the one place that turns them into responses.

An area raises a subclass from its own ``errors.py``. API requests get
``{"error": code, "message": ..., "details": {...}}`` with the error's status; HTML pages get
the message flashed (or an error page for 403/404). A traceback never reaches a user.

An error page carries the site's layout. When the layout itself cannot be drawn (its header
loads the signed-in user, so the database may be what failed), the page is drawn again
without the parts that need it.

Every request has an id (``current_request_id``), sent back in ``X-Request-Id``. What went
wrong inside (an unexpected exception, a storage failure with its keys, paths or KEK file
names) is logged with that id; the user gets a generic message and the id to quote, in
``details.request_id``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from flask import (
    Flask,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf.csrf import CSRFError
from marshmallow import ValidationError
from sqlalchemy.exc import DataError, IntegrityError
from werkzeug.exceptions import HTTPException

# Domain errors raised in these packages describe storage internals (object keys, paths, KEK
# files): their messages go to the log only. A Range the caller asked for is the exception.
PRIVATE_ERROR_PACKAGES = ("app.vault.",)
PUBLIC_PRIVATE_PACKAGE_CODES = frozenset({"range_not_satisfiable"})
INTERNAL_MESSAGE = "Something went wrong on our side. Quote the request id if you report it."
_SERVER_ERROR_CODES = {503: "service_unavailable"}
# What to say for an HTTP error raised without a message of its own (werkzeug's defaults are
# written for developers: "The browser (or proxy) sent a request that this server could not
# understand.").
PLAIN_HTTP_MESSAGES = {
    400: "The request could not be read. Reload the page and try again.",
    404: "Nothing was found at this address. Check it for typos.",
    405: "This address does not take that kind of request.",
    413: "That is more data than we accept in one request.",
}
# Response headers an HTTP error carries that the error page must keep.
KEPT_ERROR_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Content-Range")


class DomainError(Exception):
    """A rule of the domain was broken. Subclasses set ``code`` and ``status``."""

    code = "error"
    status = 400

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


class Conflict(DomainError):
    code = "conflict"
    status = 409


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 422


REQUEST_ID_KEY = "megabox.request_id"


def current_request_id() -> str:
    """This request's id: random, made on first use, the same for the rest of the request."""
    # Kept in the WSGI environ, which belongs to this request alone (``g`` lives as long as
    # the app context, which a test, or a CLI command, may share between requests).
    return request.environ.setdefault(REQUEST_ID_KEY, secrets.token_hex(12))


def wants_json() -> bool:
    if request.path.startswith(("/api/", "/webhooks/")):
        return True
    return request.accept_mimetypes.best == "application/json"


def error_response(
    code: str,
    message: str,
    status: int,
    details: dict[str, Any] | None = None,
    page: bool = False,
) -> Response:
    """JSON for the API; for HTML, an error page, or on a form post a flashed message."""
    if wants_json():
        body = {"error": code, "message": message, "details": details or {}}
        response = jsonify(body)
        response.status_code = status
        return response
    if page or status in (403, 404, 405, 413, 429) or status >= 500 or request.method == "GET":
        html = _error_page(status, message, (details or {}).get("request_id"))
        return Response(html, status=status, mimetype="text/html")
    flash(message, "error")
    return redirect(request.referrer or "/")  # type: ignore[return-value]


def _error_page(status: int, message: str, request_id: str | None) -> str:
    """error.html in the site's layout; without the header's user links if they cannot be drawn."""
    context = {"status": status, "message": message, "request_id": request_id}
    try:
        return render_template("error.html", **context)
    except Exception:
        current_app.logger.exception(
            "request %s: the error page's layout failed; drawn without the signed-in user",
            current_request_id(),
        )
        # Straight from the template, past the context processors: Flask-Login's loads the user.
        return current_app.jinja_env.get_template("error.html").render(**context, minimal_layout=True)


def internal_error_response(status: int = 500, code: str = "internal_error") -> Response:
    """The generic reply to a failure inside: no detail, only the request id to quote."""
    request_id = current_request_id()
    return error_response(code, INTERNAL_MESSAGE, status, {"request_id": request_id})


def _is_private(exc: DomainError) -> bool:
    if exc.status >= 500:
        return True
    module = type(exc).__module__ + "."
    return module.startswith(PRIVATE_ERROR_PACKAGES) and exc.code not in PUBLIC_PRIVATE_PACKAGE_CODES


def register_errorhandlers(app: Flask) -> None:
    # Browsers ask for /favicon.ico wherever a page names no icon (a PDF, a JSON answer):
    # answer with the site's icon rather than a 404.
    app.add_url_rule("/favicon.ico", "favicon", _favicon)

    @app.errorhandler(DomainError)
    def handle_domain_error(exc: DomainError) -> Response:
        if _is_private(exc):
            app.logger.error(
                "request %s: %s %s failed: %s: %s %s", current_request_id(), request.method,
                request.path, type(exc).__name__, exc.message, exc.details,
            )  # fmt: skip
            code = exc.code if exc.status < 500 else _SERVER_ERROR_CODES.get(exc.status, "internal_error")
            return internal_error_response(exc.status, code)
        response = error_response(exc.code, exc.message, exc.status, exc.details)
        if exc.status == 401 and request.path.startswith("/api/"):
            # RFC 7235: a 401 names the scheme that would work.
            response.headers["WWW-Authenticate"] = 'Bearer realm="megabox"'
        return response

    @app.errorhandler(ValidationError)
    def handle_validation_error(exc: ValidationError) -> Response:
        details = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return error_response("invalid_input", "The request has invalid fields.", 422, details)

    @app.errorhandler(CSRFError)
    def handle_csrf_error(exc: CSRFError) -> Response:
        message = f"{exc.description} Reload the page and try again."
        return error_response("csrf_failed", message, 400, page=True)

    @app.errorhandler(IntegrityError)
    def handle_integrity_error(exc: IntegrityError) -> Response:
        # A unique key is the source of truth for uniqueness: a write that lost a race to it
        # (whatever check ran before) is a conflict, not a failure of ours.
        from app.extensions import db

        db.session.rollback()
        app.logger.warning(
            "request %s: %s %s hit a constraint: %s", current_request_id(), request.method,
            request.path, exc.orig,
        )  # fmt: skip
        return error_response(
            "conflict", "That conflicts with something that already exists. Reload and try again.",
            409, {"request_id": current_request_id()},
        )  # fmt: skip

    @app.errorhandler(DataError)
    def handle_data_error(exc: DataError) -> Response:
        # The database refused a value the checks let through: out of its column's range, too
        # long for it, or text PostgreSQL cannot store (NUL). The input is at fault.
        from app.extensions import db

        db.session.rollback()
        app.logger.warning(
            "request %s: %s %s sent a value the database refused: %s", current_request_id(),
            request.method, request.path, exc.orig,
        )  # fmt: skip
        return error_response(
            "invalid_input", "A value is out of range, too long, or holds characters that cannot be stored.",
            422, {"request_id": current_request_id()},
        )  # fmt: skip

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status >= 500:
            app.logger.error("request %s: %s %s: %s", current_request_id(), request.method,
                             request.path, exc)  # fmt: skip
            response = internal_error_response(status)
        else:
            code = (exc.name or "error").lower().replace(" ", "_")
            message = exc.description or exc.name
            if message == type(exc).description:
                message = PLAIN_HTTP_MESSAGES.get(status, message)
            response = error_response(code, message, status)
        for name, value in exc.get_headers():
            if name in KEPT_ERROR_HEADERS:
                response.headers[name] = value
        if status == 429 and "Retry-After" not in response.headers:
            response.headers["Retry-After"] = str(_retry_after_seconds())
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        from app.extensions import db

        db.session.rollback()
        app.logger.exception("request %s: %s %s: unhandled error", current_request_id(),
                             request.method, request.path)  # fmt: skip
        return internal_error_response()


def _favicon() -> Response:
    return redirect(url_for("static", filename="favicon.svg"), code=301)  # type: ignore[return-value]


def _retry_after_seconds() -> int:
    """Seconds until the limit that was hit resets (at least 1); 60 when it is not known."""
    from app.extensions import limiter

    limit = limiter.current_limit
    if limit is None:
        return 60
    return max(1, int(limit.reset_at - time.time()) + 1)
