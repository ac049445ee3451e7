"""Pages of app.statements: an artist's statements in the studio, and their downloads.

Every page and download names the artist by slug and answers 404 to anyone but its owner or
an admin (``service.readable_artist``), so a guessed URL shows nothing of another artist.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template
from flask_login import current_user, login_required

from app.accounts.current import viewer
from app.extensions import db
from app.statements import service
from app.statements.content import StatementView
from app.statements.render import (
    FORMATS,
    MEDIA_TYPES,
    detail_lines_max,
    earnings_chart,
    file_name,
    render,
)

bp = Blueprint("statements", __name__)


@bp.get("/studio/statements")
@login_required
def index() -> str:
    listing = [
        (artist, service.artist_statements(db.session, artist)) for artist in current_user.artists
    ]
    db.session.commit()  # a closed period's statements are frozen on their first listing
    return render_template("statements/index.html", listing=listing)


@bp.get("/studio/statements/<slug>/<period>/<currency>")
@login_required
def show(slug: str, period: str, currency: str) -> str:
    view = _statement(slug, period, currency)
    return render_template(
        "statements/show.html",
        view=view,
        statement=view.content,
        chart=earnings_chart(view.content),
        detail_lines_max=detail_lines_max(),
    )


@bp.get(f"/studio/statements/<slug>/<period>/<currency>.<any({', '.join(FORMATS)}):fmt>")
@login_required
def download(slug: str, period: str, currency: str, fmt: str) -> Response:
    view = _statement(slug, period, currency)
    # content_type, not mimetype: Werkzeug would add a second charset to a text type's.
    response = Response(render(view, fmt), content_type=MEDIA_TYPES[fmt])
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{file_name(view.content, fmt)}"'
    )
    return response


def _statement(slug: str, period: str, currency: str) -> StatementView:
    """The statement, committed: a closed period's is frozen on its first reading. Raises
    StatementNotFound (also for another's artist) and InvalidInput (a malformed period)."""
    artist = service.readable_artist(db.session, slug, viewer())
    view = service.statement(db.session, artist, period, currency.upper())
    db.session.commit()
    return view
