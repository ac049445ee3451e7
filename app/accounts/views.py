"""Sign-up, sign-in, sign-out and the account page: e-mail and password changes, personal API
tokens.

Signing out ends every session of the account, and changing the password ends all but the
current one (see ``service.end_sessions``).
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_login.config import COOKIE_NAME
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from app.accounts import service
from app.accounts.errors import EmailTaken, InvalidCredentials, WrongPassword
from app.accounts.models import User
from app.accounts.schemas import (
    EmailChangeSchema,
    LoginSchema,
    PasswordChangeSchema,
    SignupSchema,
    TokenCreateSchema,
)
from app.extensions import db, limiter, login

bp = Blueprint("accounts", __name__)
# Percent-decoding rounds applied when vetting ``next``: "%252F" hides "/" two levels down.
NEXT_DECODE_ROUNDS = 3


@login.user_loader
def load_user(session_id: str) -> User | None:
    return service.user_for_session(db.session, session_id)


def _safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the home page.

    Browsers drop tabs and newlines from URLs, read ``\\`` as ``/`` and follow ``//host``, so a
    target holding any of those, in any percent-decoded form, is refused.
    """
    fallback = url_for("catalog.home")
    if not target or not target.startswith("/"):
        return fallback
    candidate = target
    for _ in range(NEXT_DECODE_ROUNDS + 1):
        if not _is_local_path(candidate):
            return fallback
        candidate = unquote(candidate)
    return target


def _is_local_path(target: str) -> bool:
    if "\\" in target or any(unicodedata.category(char).startswith("C") for char in target):
        return False
    if target.startswith("//"):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def _remembered() -> bool:
    return (current_app.config.get("REMEMBER_COOKIE_NAME") or COOKIE_NAME) in request.cookies


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> str | Response:
    errors: dict = {}
    if request.method == "POST":
        try:
            fields = ("email", "display_name", "password")
            data = SignupSchema().load({k: request.form.get(k, "") for k in fields})
            user = service.create_user(db.session, data["email"], data["password"], data["display_name"])
            db.session.commit()
        except ValidationError as exc:
            errors = exc.messages_dict
        except EmailTaken as exc:
            errors = {"email": [exc.message]}
        else:
            login_user(user)
            flash(f"Welcome to Megabox, {user.display_name}.", "success")
            return redirect(url_for("catalog.home"))
    return render_template("accounts/signup.html", errors=errors, form=request.form), (
        422 if errors else 200
    )


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login_page() -> str | Response:
    errors: dict = {}
    if request.method == "POST":
        try:
            data = LoginSchema().load({k: request.form.get(k, "") for k in ("email", "password")})
            user = service.authenticate(db.session, data["email"], data["password"])
            db.session.commit()
        except ValidationError as exc:
            errors = exc.messages_dict
        except InvalidCredentials as exc:
            errors = {"_form": [exc.message]}
        else:
            login_user(user, remember=bool(request.form.get("remember")))
            flash("Signed in.", "success")
            return redirect(_safe_next(request.args.get("next")))
    return render_template("accounts/login.html", errors=errors, form=request.form), (
        401 if errors else 200
    )


@bp.post("/logout")
def logout() -> Response:
    if current_user.is_authenticated:
        service.end_sessions(db.session, current_user)
        db.session.commit()
    logout_user()
    flash("Signed out.", "info")
    return redirect(url_for("catalog.home"))


def _account_page(
    errors: dict | None = None, new_token: str | None = None, status: int = 200
) -> tuple[str, int]:
    """The account page; ``errors`` show under their fields, and what was typed is kept."""
    page = render_template(
        "accounts/account.html", new_token=new_token, errors=errors or {}, form=request.form
    )
    return page, status


@bp.get("/account")
@login_required
def account() -> tuple[str, int]:
    return _account_page()


@bp.post("/account/email")
@login_required
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"])
def change_email() -> tuple[str, int] | Response:
    before = current_user.email
    try:
        data = EmailChangeSchema().load({k: request.form.get(k, "") for k in ("email", "password")})
        service.change_email(db.session, current_user, data["email"], data["password"])
        db.session.commit()
    except ValidationError as exc:
        return _account_page(exc.messages_dict, status=422)
    except (WrongPassword, EmailTaken) as exc:
        db.session.rollback()
        return _account_page(exc.details, status=422)
    if current_user.email == before:
        flash(f"{before} is already your e-mail address; nothing changed.", "info")
    else:
        flash(f"Your e-mail address is now {current_user.email}.", "success")
    return redirect(url_for("accounts.account"))


@bp.post("/account/password")
@login_required
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"])
def change_password() -> tuple[str, int] | Response:
    fields = ("current_password", "new_password")
    try:
        data = PasswordChangeSchema().load({k: request.form.get(k, "") for k in fields})
        service.change_password(db.session, current_user, data["current_password"], data["new_password"])
        db.session.commit()
    except ValidationError as exc:
        return _account_page(exc.messages_dict, status=422)
    except WrongPassword as exc:
        db.session.rollback()
        return _account_page(exc.details, status=422)
    # The epoch moved on: sign this browser in again under it; every other session is over.
    login_user(current_user._get_current_object(), remember=_remembered())
    flash("Password changed. Every other session of your account has been signed out.", "success")
    return redirect(url_for("accounts.account"))


@bp.post("/account/tokens")
@login_required
def create_token() -> tuple[str, int]:
    try:
        data = TokenCreateSchema().load({"name": request.form.get("name", "")})
    except ValidationError as exc:
        return _account_page(exc.messages_dict, status=422)
    _, secret = service.issue_token(db.session, current_user, data["name"])
    db.session.commit()
    return _account_page(new_token=secret)


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> Response:
    service.revoke_token(db.session, current_user, token_id)
    db.session.commit()
    flash("Token revoked.", "info")
    return redirect(url_for("accounts.account"))
