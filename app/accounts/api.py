"""/api/v1/me and personal API tokens."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from werkzeug.wrappers import Response

from app.accounts import service
from app.accounts.schemas import (
    EmailChangeSchema,
    TokenCreatedSchema,
    TokenCreateSchema,
    TokenSchema,
    UserSchema,
)
from app.api.helpers import json_body, require_user
from app.api.spec import operation
from app.extensions import db, limiter

bp = Blueprint("accounts_api", __name__)


@bp.get("/me")
@operation("The signed-in user", tag="accounts", response=UserSchema, auth=True)
def me() -> Response:
    return jsonify(UserSchema().dump(require_user()))


@bp.patch("/me")
@operation(
    "Change your e-mail address (confirmed with your password)",
    tag="accounts", body=EmailChangeSchema, response=UserSchema, auth=True,
)  # fmt: skip
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"])
def change_email() -> Response:
    user = require_user()
    data = EmailChangeSchema().load(json_body())
    service.change_email(db.session, user, data["email"], data["password"])
    db.session.commit()
    return jsonify(UserSchema().dump(user))


@bp.get("/tokens")
@operation("List your API tokens", tag="accounts", response=TokenSchema, many=True, auth=True)
def list_tokens() -> Response:
    return jsonify(TokenSchema(many=True).dump(require_user().api_tokens))


@bp.post("/tokens")
@operation(
    "Create an API token (the secret is returned once)",
    tag="accounts", body=TokenCreateSchema, response=TokenCreatedSchema, status=201, auth=True,
)  # fmt: skip
def create_token() -> tuple[Response, int]:
    data = TokenCreateSchema().load(json_body())
    token, secret = service.issue_token(db.session, require_user(), data["name"])
    db.session.commit()
    return jsonify({**TokenCreatedSchema().dump(token), "secret": secret}), 201


@bp.delete("/tokens/<int:token_id>")
@operation("Revoke an API token", tag="accounts", status=204, auth=True)
def revoke_token(token_id: int) -> tuple[str, int]:
    service.revoke_token(db.session, require_user(), token_id)
    db.session.commit()
    return "", 204
