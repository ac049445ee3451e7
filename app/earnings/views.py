"""Pages of app.earnings: the artist's earnings dashboard and the admin's overview."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user, login_required
from markupsafe import Markup

from app.accounts.current import admin_required
from app.charts import svg_bar_chart
from app.earnings import service
from app.extensions import db
from app.ledger.money import Money

bp = Blueprint("earnings", __name__)


@bp.get("/studio/earnings")
@login_required
def dashboard() -> str:
    artist = service.owned_artist(current_user, request.args.get("artist"))
    if artist is None:
        return render_template("earnings/no_artist.html")
    shown = service.dashboard(db.session, artist)
    return render_template(
        "earnings/dashboard.html",
        dashboard=shown,
        artists=sorted(current_user.artists, key=lambda owned: owned.id),
        plays_chart=svg_bar_chart(
            shown.plays_by_day, title="Counted plays per day", label=_plays_label
        ),
        sales_charts=_sales_charts(shown),
    )


@bp.get("/admin")
@admin_required
def overview() -> str:
    return render_template("earnings/overview.html", overview=service.overview(db.session))


def _sales_charts(shown: service.Dashboard) -> list[Markup]:
    """One chart per currency sold in; one saying "no data" when there were no sales."""
    if not shown.sales_by_day:
        empty = [(day, 0) for day in shown.days]
        return [svg_bar_chart(empty, title="Your share of sales per day", label=str)]
    return [
        svg_bar_chart(
            points,
            title=f"Your share of sales per day ({currency})",
            label=lambda minor, currency=currency: Money(minor, currency).format(),
        )
        for currency, points in shown.sales_by_day.items()
    ]


def _plays_label(plays: int) -> str:
    return f"{plays:,} play" if plays == 1 else f"{plays:,} plays"
