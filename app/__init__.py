"""The Megabox application factory."""

from __future__ import annotations

import stat
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import Flask, Response
from sqlalchemy import event
from sqlalchemy.engine import Engine

from config import load_settings

SQLITE_FILE_MODE = 0o600
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build an application from the settings (see ``config``), with ``config`` winning."""
    settings = load_settings(config)
    app = Flask(__name__, instance_path=settings["INSTANCE_PATH"])
    app.config.from_mapping(settings)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=_sqlalchemy_url(settings["DATABASE_URL"]),
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        MAX_CONTENT_LENGTH=settings["MAX_REQUEST_BYTES"],
        RATELIMIT_STORAGE_URI=settings["REDIS_URL"] or "memory://",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings["ENV"] == "production",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings["ENV"] == "production",
        # Flask-Limiter adds Retry-After (and X-RateLimit-*) to limited responses, 429s included.
        RATELIMIT_HEADERS_ENABLED=True,
        WTF_CSRF_TIME_LIMIT=None,
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    register_request_handling(app)
    register_extensions(app)
    register_models()
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    register_template_helpers(app)
    return app


def _sqlalchemy_url(url: str) -> str:
    # psycopg 3 is the PostgreSQL driver; accept the plain scheme operators usually write.
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # pysqlite keeps its own deferred BEGIN (at the first write), so reads hold no snapshot
    # and a background job writing progress cannot make a request's later write fail. The
    # price: on SQLite, releasing a savepoint opened before any write commits. The ingest store
    # opens its savepoint after a write; a sign-up's savepoint may commit the new account
    # early, which its caller does at once anyway.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        # SQLite's lower() lowers ASCII only; search compares with Python's, as PostgreSQL's does.
        dbapi_connection.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)
        _owner_only(row[2] for row in cursor.execute("PRAGMA database_list") if row[2])
        cursor.close()


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _owner_only(database_files: Iterable[str]) -> None:
    # The database holds password hashes and every wrapped data key: mode 0600, with its WAL.
    for name in database_files:
        for path in (Path(name), Path(name + "-wal"), Path(name + "-shm")):
            if path.exists() and stat.S_IMODE(path.stat().st_mode) != SQLITE_FILE_MODE:
                path.chmod(SQLITE_FILE_MODE)


def register_request_handling(app: Flask) -> None:
    """Bounds on ids and JSON bodies, and a request id on every response.

    Runs before any blueprint is registered: rules pick their ``int`` converter when added.
    """
    from app.api.inputs import BoundedIntConverter, BoundedJSONProvider, PrintableStringConverter
    from app.errors import current_request_id

    app.url_map.converters["int"] = BoundedIntConverter
    app.url_map.converters["default"] = app.url_map.converters["string"] = PrintableStringConverter
    app.json = BoundedJSONProvider(app)

    @app.after_request
    def tag_request_id(response: Response) -> Response:
        response.headers["X-Request-Id"] = current_request_id()
        return response


def register_extensions(app: Flask) -> None:
    from app.extensions import csrf, db, limiter, login, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    login.init_app(app)
    login.login_view = "accounts.login_page"
    login.login_message_category = "info"
    # Each sign-in stores a fresh id (user, session epoch, nonce): see User.new_session_id.
    login.id_attribute = "new_session_id"
    csrf.init_app(app)
    limiter.init_app(app)


def register_models() -> None:
    """Import every area's models, so that the metadata (and Alembic's compare) knows them all."""
    import app.accounts.models
    import app.ads.models
    import app.catalog.models
    import app.commerce.models
    import app.commerce.verify  # commerce's checks for `megabox ledger verify`
    import app.payouts.models
    import app.payouts.verify  # payouts' checks for `megabox ledger verify`
    import app.ingest.models
    import app.ledger.models
    import app.library.models
    import app.plays.models
    import app.pools.models
    import app.pools.verify  # pools' checks for `megabox ledger verify`
    import app.statements.models
    import app.vault.models  # noqa: F401


def register_blueprints(app: Flask) -> None:
    from app.accounts.views import bp as accounts_bp
    from app.ads.views import bp as ads_bp
    from app.api import area_blueprints
    from app.api.auth import authenticate
    from app.api.helpers import API_PREFIX
    from app.catalog.views import bp as catalog_bp
    from app.commerce.views import bp as commerce_bp
    from app.commerce.webhooks import bp as webhooks_bp
    from app.library.keylink_views import bp as keylinks_bp
    from app.library.views import bp as library_bp
    from app.extensions import csrf
    from app.plays.views import bp as plays_bp
    from app.earnings.views import bp as earnings_bp
    from app.payouts.views import bp as payouts_bp
    from app.pools.views import bp as pools_bp
    from app.statements.views import bp as statements_bp

    app.register_blueprint(accounts_bp)
    app.register_blueprint(catalog_bp)
    app.register_blueprint(plays_bp)
    app.register_blueprint(commerce_bp)
    app.register_blueprint(library_bp)
    app.register_blueprint(keylinks_bp)
    app.register_blueprint(ads_bp)
    app.register_blueprint(pools_bp)
    app.register_blueprint(earnings_bp)
    app.register_blueprint(statements_bp)
    app.register_blueprint(payouts_bp)
    # Webhooks prove who sent them with the provider's signature, not a CSRF token.
    csrf.exempt(webhooks_bp)
    app.register_blueprint(webhooks_bp)
    for api_bp in area_blueprints():
        # /api/v1 checks CSRF itself, and only for cookie sessions (see app.api.auth).
        csrf.exempt(api_bp)
        app.register_blueprint(api_bp, url_prefix=API_PREFIX)
        app.before_request_funcs.setdefault(api_bp.name, []).append(authenticate)


def register_errorhandlers(app: Flask) -> None:
    from app.errors import register_errorhandlers as register

    register(app)


def register_commands(app: Flask) -> None:
    from app.cli import register_commands as register

    register(app)


def register_template_helpers(app: Flask) -> None:
    from app.api.helpers import API_PREFIX
    from app.catalog.presenters import register_filters

    register_filters(app)
    app.add_template_global(API_PREFIX, "API_PREFIX")
    app.add_template_global(artist_share_percent(app.config["ARTIST_SHARE_BPS"]), "artist_share_percent")


def artist_share_percent(bps: int) -> str:
    """The artist's share of a sale as people read it: 9000 basis points is "90", 8750 "87.5"."""
    return format(Decimal(bps) / 100, "f")
