"""The admin's periods: revenue, model, the preview and the close."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from app.accounts.current import admin_required, viewer
from app.extensions import db
from app.pools import service
from app.pools.errors import PeriodNotOver
from app.pools.models import PoolModel
from app.pools.schemas import MODEL_LABELS, MonthForm, load_close_form, load_settings_form
from app.timestamps import utcnow

bp = Blueprint("pools", __name__)


@bp.get("/admin/periods")
@admin_required
def index() -> str:
    this_month, last_month = service.recent_keys()
    return render_template(
        "pools/index.html",
        summaries=service.period_summaries(db.session),
        this_month=this_month,
        last_month=last_month,
    )


@bp.get("/admin/periods/open")
@admin_required
def open_month() -> Response:
    try:
        key = MonthForm().load(request.args)["period"]
    except ValidationError as exc:
        flash(" ".join(exc.messages_dict.get("period", ["Write a month as in 2026-11."])), "error")
        return redirect(url_for("pools.index"))
    return redirect(url_for("pools.period", key=key))


@bp.get("/admin/periods/<key>")
@admin_required
def period(key: str) -> Any:
    return _period_page(key)


@bp.post("/admin/periods/<key>")
@admin_required
def save_settings(key: str) -> Any:
    found = service.find_period(db.session, key)
    currency = found.currency if found is not None else current_app.config["DEFAULT_CURRENCY"]
    try:
        values = load_settings_form(request.form, currency)
    except ValidationError as exc:
        return _period_page(key, errors=exc.messages_dict, form=request.form)
    service.set_revenue(db.session, current_app.config, key, values["revenue_minor"])
    service.set_model(db.session, current_app.config, key, values["model"])
    db.session.commit()
    flash(f"Saved the revenue and model of {key}.", "success")
    return redirect(url_for("pools.period", key=key))


@bp.post("/admin/periods/<key>/close")
@admin_required
def close(key: str) -> Response:
    values = load_close_form(request.form)
    now = utcnow()
    try:
        closed = service.close_period(
            db.session, current_app.config, key, closed_by=viewer(), now=now, **values
        )
    except PeriodNotOver as exc:
        # Back to the month's page whatever the browser sends as its referrer.
        flash(exc.message, "error")
        return redirect(url_for("pools.period", key=key))
    if closed.closed_at != now:
        flash(f"{key} was already closed; nothing changed.", "info")
    else:
        db.session.commit()
        result = service.preview(db.session, current_app.config, key)
        flash(
            f"Closed {key}: {result.money(result.pool_minor).format()} split over "
            f"{len(result.rows):,} track{'' if len(result.rows) == 1 else 's'}, "
            f"{str(result.model).replace('_', '-')}.",
            "success",
        )
    return redirect(url_for("pools.period", key=key))


@bp.get("/admin/periods/<key>/ledger")
@admin_required
def transaction(key: str) -> str:
    posted, entries = service.ledger_entries(db.session, key)
    return render_template("pools/transaction.html", key=key, transaction=posted, entries=entries)


def _period_page(
    key: str, errors: dict[str, Any] | None = None, form: Any = None
) -> tuple[str, int]:
    config = current_app.config
    found = service.find_period(db.session, key)
    context: dict[str, Any] = {
        "key": key,
        "found": found,
        "errors": errors or {},
        "form": form,
        "labels": MODEL_LABELS,
        "models": list(PoolModel),
    }
    if found is not None and found.closed_at is not None:
        context["frozen"] = service.preview(db.session, config, key)
    else:
        comparison = service.compare_models(db.session, config, key)
        chosen = PoolModel(found.model if found is not None else config["POOL_MODEL"])
        context.update(
            comparison=comparison,
            chosen=chosen,
            current=comparison.previews[chosen],
            impressions_revenue=service.impressions_revenue(db.session, key),
            ended=service.has_ended(found, key),
        )
    return render_template("pools/period.html", **context), (422 if errors else 200)
