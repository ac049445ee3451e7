"""Sign-up, sign-in, sign-out and the account page with personal API tokens."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from app.accounts import service
from app.accounts.errors import EmailTaken, InvalidCredentials
from app.accounts.models import User
from app.accounts.schemas import LoginSchema, SignupSchema, TokenCreateSchema
from app.extensions import db, limiter, login

bp = Blueprint("accounts", __name__)


@login.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


def _safe_next(target: str | None) -> str:
    # Only same-site relative paths, so a login link cannot bounce a user elsewhere.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("catalog.home")


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
    logout_user()
    flash("Signed out.", "info")
    return redirect(url_for("catalog.home"))


@bp.get("/account")
@login_required
def account() -> str:
    return render_template("accounts/account.html", new_token=None, errors={})


@bp.post("/account/tokens")
@login_required
def create_token() -> str | Response:
    try:
        data = TokenCreateSchema().load({"name": request.form.get("name", "")})
    except ValidationError as exc:
        return render_template("accounts/account.html", new_token=None, errors=exc.messages_dict), 422
    _, secret = service.issue_token(db.session, current_user, data["name"])
    db.session.commit()
    return render_template("accounts/account.html", new_token=secret, errors={})


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> Response:
    service.revoke_token(db.session, current_user, token_id)
    db.session.commit()
    flash("Token revoked.", "info")
    return redirect(url_for("accounts.account"))
