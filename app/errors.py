"""The base of every domain error, and the one place that turns them into responses.

An area raises a subclass from its own ``errors.py``. API requests get
``{"error": code, "message": ..., "details": {...}}`` with the error's status; HTML pages get
the message flashed (or an error page for 403/404). A traceback never reaches a user.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, flash, jsonify, redirect, render_template, request
from flask_wtf.csrf import CSRFError
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException


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


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    return request.accept_mimetypes.best == "application/json"


def error_response(
    code: str,
    message: str,
    status: int,
    details: dict[str, Any] | None = None,
    page: bool = False,
):
    """JSON for the API; for HTML, an error page, or on a form post a flashed message."""
    if wants_json():
        body = {"error": code, "message": message, "details": details or {}}
        return jsonify(body), status
    if page or status in (403, 404, 405, 413, 429) or status >= 500 or request.method == "GET":
        return render_template("error.html", status=status, message=message), status
    flash(message, "error")
    return redirect(request.referrer or "/")


def register_errorhandlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def handle_domain_error(exc: DomainError) -> Response:
        return error_response(exc.code, exc.message, exc.status, exc.details)

    @app.errorhandler(ValidationError)
    def handle_validation_error(exc: ValidationError) -> Response:
        details = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return error_response("invalid_input", "The request has invalid fields.", 422, details)

    @app.errorhandler(CSRFError)
    def handle_csrf_error(exc: CSRFError) -> Response:
        message = f"{exc.description} Reload the page and try again."
        return error_response("csrf_failed", message, 400, page=True)

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(code, exc.description or exc.name, exc.code or 500)

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        from app.extensions import db

        db.session.rollback()
        app.logger.exception("unhandled error")
        return error_response("internal_error", "Something went wrong on our side.", 500)
