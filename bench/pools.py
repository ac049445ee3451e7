"""Benchmark: closing a period of 10M plays, heartbeats through the app, streaming with Range.

    MEGABOX_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/megabox_bench \\
        .venv/bin/python bench/pools.py [--plays 10000000] [--listeners 1000000]
        [--tracks 50000] [--repeat 5] [--rebuild] [--only close|heartbeats|stream]
        [--heartbeat-plays 2000] [--seconds 5] [--connections 4]
        [--range bytes=1000000-1065535]

A smoke run: ``--plays 200000 --listeners 20000 --tracks 5000 --repeat 3``.

The database: ``MEGABOX_DATABASE_URL`` must name a PostgreSQL database that is a benchmark's
alone; anything else is refused with one line. The schema is built with Alembic ``upgrade
head`` in an empty database, and a marker table (``megabox_bench_pools``) records what was
loaded. A database holding tables and no benchmark's marker (a ``megabox_bench_*`` table) is
refused, so nothing a benchmark did not create is ever wiped. The data is loaded once and
reused by later runs with the same ``--plays``, ``--listeners`` and ``--tracks``; other sizes,
``--rebuild``, or a schema that no longer matches the models after ``upgrade head`` (a
migration edited in place) drop the ``public`` schema and load afresh. What a run adds besides
(the streamed tracks, the heartbeats' listeners and plays) is deleted at the start of the next
run. ``--only heartbeats`` or ``--only stream`` keeps loaded data and loads none.
``MEGABOX_REDIS_URL`` is optional: nothing here queues a job.

The data, written with ``INSERT ... SELECT`` over ``generate_series`` (seeded ``random()``):
``--tracks`` tracks, five to a release and two releases to an artist (each artist with its
user); ``--listeners`` anonymous listeners, 10% of whom play nothing and only see ads, the
others drawing a Pareto weight (alpha 1.2, capped) that sets their share of the plays, so a
few play thousands of times and most a handful; ``--plays`` counted, earning plays in the
closed-over period (``BENCH_PERIOD``, a past month), each of a track drawn from a Zipf-like
law over a shuffled catalogue (log-uniform rank: the top track has about 6% of the plays),
at a random time in the month, in time order, with no address listener (the close does not
read it); per listener about one ad impression every two plays plus 0 to 2 (some listeners
who play see none), under three paid campaigns.
Foreign keys and secondary indexes of ``plays`` and ``ad_impressions`` are dropped for the
load and made again after it (as ``pg_restore`` does), then ``VACUUM ANALYZE``.
``data_load_seconds`` is how long that took.

Figures, as ``name = value`` lines, medians of ``--repeat`` runs after one warm-up run each:

- ``close_ratio_pro_rata`` and ``close_ratio_user_centric``: ``app.pools.service.close_period``
  of the period under each model, with the revenue of its impressions (writing the
  allocations, posting the ledger transaction and flushing the period), in a transaction
  that is rolled back after each run, over a bare ``SELECT track_id, count(*) FROM plays
  WHERE period_id = ... GROUP BY track_id`` of the same table, all rows fetched. The raw
  times are ``close_pro_rata_ms``, ``close_user_centric_ms`` and ``bare_group_by_ms``.
  Goal: at most 3. The load also fills the listeners' period counters (``period_listeners``)
  and each track's plays per day (``track_play_days``) as counting each play and impression
  would have, since the ``user_centric`` close and the dashboard read them.
- ``heartbeats_per_second``: ``POST /api/v1/plays/<id>/heartbeat`` through the WSGI app in
  this process (Flask's test client, with the listener cookie and the CSRF token a browser
  sends), the process pinned to one CPU (``os.sched_setaffinity``; PostgreSQL runs
  elsewhere). ``--heartbeat-plays`` plays of 20 tracks are started through the API, one
  browser (cookie jar, page, CSRF token) per 20 plays, in ``--repeat`` batches. Each batch
  starts its plays, then sends every play a heartbeat that is not yet due, then (its start
  moved back past the threshold in SQL) one that is due and counts it, then one more after
  it counted;
  ``heartbeat_not_due_per_second``, ``heartbeat_due_per_second`` and
  ``heartbeat_decided_per_second`` are those kinds alone, ``heartbeats_per_second`` all three.
- ``stream_vs_static``: requests per second of ``wrk`` (``/usr/bin/wrk``, Debian's ``wrk``)
  on loopback for ``GET /tracks/<id>/stream.opus`` with the ``--range`` header (a real Opus
  rendition of a generated four-minute master, encrypted in the vault), over the same
  request for the same bytes served from a plain file by a route added to the same app
  (``flask.send_file`` with ``conditional=True``). One server for both: werkzeug's threaded
  server (HTTP/1.1 keep-alive) in this process; gunicorn is not installed. ``wrk`` runs
  ``--seconds`` with ``--connections`` connections on one thread, alternating the two URLs
  ``--repeat`` times; the ratio is the median of the per-pair ratios. Both answers are
  checked to be 206 with the expected bytes first. Goal: at least 0.5.

Not a test: it does not run in CI.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import postgres_url  # noqa: E402
from bench.ingest import baseline, make_master  # noqa: E402

MARKER_TABLE = "megabox_bench_pools"
# Any benchmark's marker table shows that the database is a benchmark's own.
BENCH_MARKER_PREFIX = "megabox_bench_"
PARTS = ("close", "heartbeats", "stream")
BENCH_PERIOD = "2026-06"  # a past month: the close needs no allow_early
SEED = 0.42
CURRENCY = "USD"
DEFAULT_PLAYS = 10_000_000
DEFAULT_LISTENERS = 1_000_000
DEFAULT_TRACKS = 50_000
DEFAULT_REPEAT = 5
DEFAULT_HEARTBEAT_PLAYS = 2_000
DEFAULT_SECONDS = 5
DEFAULT_CONNECTIONS = 4
DEFAULT_RANGE = "bytes=1000000-1065535"  # 64 KiB across two vault segments
TRACKS_PER_RELEASE = 5
RELEASES_PER_ARTIST = 2
IDLE_LISTENERS = 0.10  # listeners who see ads and play nothing that earns
PARETO_ALPHA = 1.2
PARETO_WEIGHT_CAP = 3000.0  # with 10 plays a listener, about 6000 plays: the month's cap
IMPRESSIONS_PER_PLAY = 0.5
CAMPAIGNS = ((150, 5), (250, 3), (400, 1))  # (CPM in minor units, weight)
HEARTBEAT_TRACKS = 20  # plays per browser, one of each track: none is a replay
STREAM_MINUTES = 4.0
STATIC_PATH = "/bench/static.opus"
STREAMED_OPUS = "base.opus"  # what bench.ingest.baseline names its Opus file
WORK_MEM = "512MB"
MAINTENANCE_WORK_MEM = "1GB"


def fail(message: str) -> None:
    sys.exit(f"bench/pools.py: {message}")


def database_url() -> str:
    return postgres_url("bench/pools.py")


def make_app(url: str, redis_url: str, instance: Path) -> Any:
    from app import create_app

    return create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": "bench-pools",
            "STORAGE_URL": "",
            "RATELIMIT_ENABLED": False,
        }
    )


def report(figures: dict[str, Any]) -> None:
    """Print figures as soon as they are measured, so a long run's early ones are not lost."""
    for name, value in figures.items():
        print(f"{name} = {value:.3f}" if isinstance(value, float) else f"{name} = {value}")
    sys.stdout.flush()


def progress(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


# The database and its marker ----------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    plays: int
    listeners: int
    tracks: int

    def as_marker(self) -> dict[str, str]:
        return {"plays": str(self.plays), "listeners": str(self.listeners),
                "tracks": str(self.tracks), "seed": str(SEED), "period": BENCH_PERIOD}  # fmt: skip


def read_marker() -> dict[str, str] | None:
    """The marker's rows, or None when this benchmark's marker is not there.

    Exits with one line for a database holding tables without any benchmark's marker.
    """
    from sqlalchemy import inspect, text

    from app.extensions import db

    tables = set(inspect(db.engine).get_table_names(schema="public"))
    if tables and not any(name.startswith(BENCH_MARKER_PREFIX) for name in tables):
        fail(
            f"{db.engine.url.database} holds {len(tables)} tables no benchmark created; "
            "give it an empty database of its own"
        )
    if MARKER_TABLE not in tables:
        return None
    with db.engine.connect() as conn:
        rows = conn.execute(text(f"SELECT name, value FROM {MARKER_TABLE}"))
        return {name: value for name, value in rows}


def write_marker(values: dict[str, str]) -> None:
    from sqlalchemy import text

    from app.extensions import db

    with db.engine.begin() as conn:
        for name, value in values.items():
            conn.execute(
                text(
                    f"INSERT INTO {MARKER_TABLE} (name, value) VALUES (:name, :value) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
                ),
                {"name": name, "value": value},
            )


def rebuild_schema() -> None:
    """Drop the ``public`` schema (a benchmark's, see ``read_marker``) and build it afresh."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from app.extensions import db

    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        conn.execute(
            text(f"CREATE TABLE {MARKER_TABLE} (name text PRIMARY KEY, value text NOT NULL)")
        )
        conn.execute(text(f"INSERT INTO {MARKER_TABLE} VALUES ('created_at', now()::text)"))
    db.engine.dispose()  # no pooled connection keeps the old schema's cached plans
    upgrade()


# The ids the load ended at: anything above them is a run's own, deleted by the next run.
LOADED_TABLES = ("users", "artists", "releases", "tracks", "listeners", "plays",
                 "ad_impressions", "ad_campaigns", "periods")  # fmt: skip


def clean_previous_runs(marker: dict[str, str]) -> None:
    """Delete what earlier runs added to the loaded data, children first."""
    from sqlalchemy import text

    from app.extensions import db

    top = {table: int(marker[f"max_id:{table}"]) for table in LOADED_TABLES}
    statements = [
        ("DELETE FROM ad_impressions WHERE id > :top", "ad_impressions"),
        ("DELETE FROM plays WHERE id > :top", "plays"),
        ("DELETE FROM track_media", None),
        ("DELETE FROM vault_objects", None),
        ("DELETE FROM tracks WHERE id > :top", "tracks"),
        ("DELETE FROM releases WHERE id > :top", "releases"),
        ("DELETE FROM artists WHERE id > :top", "artists"),
        ("DELETE FROM listeners WHERE id > :top", "listeners"),
        ("DELETE FROM ad_campaigns WHERE id > :top", "ad_campaigns"),
        ("DELETE FROM users WHERE id > :top", "users"),
        ("DELETE FROM period_listeners WHERE period_id > :top", "periods"),
        ("DELETE FROM periods WHERE id > :top", "periods"),
    ]
    with db.engine.begin() as conn:
        for statement, table in statements:
            conn.execute(text(statement), {"top": top[table]} if table else {})


def prepare_database(app: Any, sizes: Sizes, *, load: bool, rebuild: bool) -> dict[str, str]:
    """The schema at Alembic head and, when ``load``, the data of ``sizes``: reused when the
    marker says it is there, else loaded into a fresh schema. Returns the marker's rows."""
    from flask_migrate import upgrade

    marker = read_marker()
    fresh = marker is None or rebuild
    if not fresh:
        upgrade()
        # A migration edited in place (same revision, other columns) leaves a stale schema.
        fresh = not schema_matches_models()
        if fresh:
            progress("the schema differs from the models: rebuilding")
    if fresh:
        rebuild_schema()
    marker = read_marker() or {}
    wanted = sizes.as_marker()
    loaded = "loaded_at" in marker
    if loaded and (not load or all(marker.get(key) == value for key, value in wanted.items())):
        clean_previous_runs(marker)
        return marker
    if not fresh:
        # Another size was loaded, or a load was cut short, or nothing was ever loaded:
        # start from an empty schema.
        rebuild_schema()
    if not load:
        return read_marker() or {}
    seconds = load_data(app, sizes)
    write_marker({**wanted, **max_ids(), "load_seconds": f"{seconds:.1f}",
                  "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})  # fmt: skip
    return read_marker() or {}


def schema_matches_models() -> bool:
    """Whether every model's table has, in the database, the model's columns, indexes and
    unique constraints (by name)."""
    from sqlalchemy import UniqueConstraint, inspect

    from app.extensions import db

    inspector = inspect(db.engine)
    existing = set(inspector.get_table_names(schema="public"))
    for table in db.metadata.sorted_tables:
        if table.name not in existing:
            return False
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        uniques = {unique["name"] for unique in inspector.get_unique_constraints(table.name)}
        wanted_uniques = {
            constraint.name for constraint in table.constraints
            if isinstance(constraint, UniqueConstraint)
        }  # fmt: skip
        if (
            columns != {column.name for column in table.columns}
            or not {index.name for index in table.indexes} <= indexes | uniques
            or not wanted_uniques <= uniques | indexes
        ):
            return False
    return True


def max_ids() -> dict[str, str]:
    from sqlalchemy import text

    from app.extensions import db

    with db.engine.connect() as conn:
        return {
            f"max_id:{table}": str(conn.scalar(text(f"SELECT coalesce(max(id), 0) FROM {table}")))
            for table in LOADED_TABLES
        }


# Loading ------------------------------------------------------------------------------------


CATALOGUE_SQL = [
    # One user per artist: the artists' accounts.
    """
    INSERT INTO users (email, display_name, password_hash, is_admin, created_at, session_epoch)
    SELECT 'artist' || g || '@bench.invalid', 'Artist ' || g, '!', false, :at, 0
    FROM generate_series(1, :artists) AS g
    """,
    """
    INSERT INTO artists (owner_id, slug, name, bio, created_at)
    SELECT u.id, 'bench-' || u.id, 'Bench Artist ' || u.id, '', :at
    FROM users AS u WHERE u.email LIKE 'artist%@bench.invalid' ORDER BY u.id
    """,
    """
    INSERT INTO releases (artist_id, title, release_type, description, pricing_mode,
                          price_minor, minimum_price_minor, currency, published, published_at,
                          locked_fields, created_at, updated_at)
    SELECT a.first + (g - 1) / :per_artist, 'Release ' || g, 'album', '', 'fixed', 700, 700,
           :currency, true, :at, '[]', :at, :at
    FROM generate_series(1, :releases) AS g, (SELECT min(id) AS first FROM artists) AS a
    """,
    """
    INSERT INTO tracks (release_id, title, position, duration_ms, explicit, price_minor,
                        sold_separately, status, locked_fields, created_at, updated_at)
    SELECT r.first + (g - 1) / :per_release, 'Track ' || g, (g - 1) % :per_release + 1,
           120000 + (g * 7919) % 240000, false, 129, true, 'ready', '[]', :at, :at
    FROM generate_series(1, :tracks) AS g, (SELECT min(id) AS first FROM releases) AS r
    """,
    """
    INSERT INTO listeners (key, user_id, created_at)
    SELECT 'c:bench-' || g, NULL, :at FROM generate_series(1, :listeners) AS g
    """,
]

# Each listener's plays and impressions. Cumulative Pareto weights, floored, make the plays
# add up to exactly :plays; IDLE_LISTENERS of the listeners weigh nothing.
PLAN_SQL = """
CREATE TEMPORARY TABLE bench_plan ON COMMIT DROP AS
WITH weights AS (
    SELECT id AS listener_id,
           CASE WHEN random() < :idle THEN 0.0
                ELSE least(:weight_cap, power(1.0 - random(), -1.0 / :alpha)) END AS w
    FROM listeners ORDER BY id
), cumulative AS (
    SELECT listener_id, sum(w) OVER (ORDER BY listener_id) AS upto, sum(w) OVER () AS total
    FROM weights
), counted AS (
    SELECT listener_id,
           CAST(floor(:plays * upto / total)
                - floor(:plays * coalesce(lag(upto) OVER (ORDER BY listener_id), 0) / total)
                AS integer) AS plays
    FROM cumulative
)
SELECT listener_id, plays,
       CAST(floor(plays * :per_play + random() * 3) AS integer) AS impressions
FROM counted
"""

TRACK_RANKS_SQL = """
CREATE TEMPORARY TABLE bench_track_rank ON COMMIT DROP AS
SELECT CAST(row_number() OVER (ORDER BY random()) AS integer) AS rank, id AS track_id
FROM tracks
"""

# Rank r = floor((T + 1) ** u) for uniform u: P(r) ~ 1/r, a Zipf law of exponent 1.
PLAYS_SQL = """
INSERT INTO plays (token, track_id, listener_id, user_id, started_at, threshold_ms,
                   last_heartbeat_at, reported_position_ms, outcome, counted_at, earns,
                   period_id)
SELECT 'b' || p.listener_id || 'x' || s.k, tr.track_id, p.listener_id, NULL,
       s.at - interval '30 seconds', 30000, s.at, 30000, 'counted', s.at, true, :period_id
FROM bench_plan AS p
CROSS JOIN LATERAL (
    SELECT k, CAST(:starts AS timestamptz) + random() * (:ends - CAST(:starts AS timestamptz))
               AS at,
           least(:tracks, CAST(floor(exp(random() * ln(:tracks + 1))) AS integer)) AS rank
    FROM generate_series(1, p.plays) AS k
) AS s
JOIN bench_track_rank AS tr ON tr.rank = s.rank
ORDER BY s.at
"""

IMPRESSIONS_SQL = """
INSERT INTO ad_impressions (campaign_id, listener_id, period_id, play_id, shown_at, cpm_minor,
                            currency)
SELECT c.id, p.listener_id, :period_id, NULL, s.at, c.cpm_minor, :currency
FROM bench_plan AS p
CROSS JOIN LATERAL (
    SELECT CAST(:starts AS timestamptz) + random() * (:ends - CAST(:starts AS timestamptz))
               AS at,
           random() * :total_weight AS pick
    FROM generate_series(1, p.impressions)
) AS s
JOIN bench_campaign_ranges AS c ON s.pick >= c.low AND s.pick < c.high
ORDER BY s.at
"""

CAMPAIGN_RANGES_SQL = """
CREATE TEMPORARY TABLE bench_campaign_ranges ON COMMIT DROP AS
SELECT id, cpm_minor,
       CAST(sum(weight) OVER (ORDER BY id) - weight AS double precision) AS low,
       CAST(sum(weight) OVER (ORDER BY id) AS double precision) AS high
FROM ad_campaigns WHERE NOT is_house
"""


# Each track's counted plays per UTC day, as counting each play would have kept them.
PLAY_DAYS_SQL = """
INSERT INTO track_play_days (track_id, day, plays)
SELECT track_id, CAST(timezone('UTC', counted_at) AS date), count(*)
FROM plays WHERE outcome = 'counted'
GROUP BY track_id, CAST(timezone('UTC', counted_at) AS date)
"""


def load_data(app: Any, sizes: Sizes) -> float:
    """Load the catalogue, listeners, plays and impressions (module docstring); seconds."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from app.ads.models import Campaign
    from app.extensions import db
    from app.pools.periods import bounds, ensure_period, recount_landed
    from app.timestamps import utcnow

    started = time.perf_counter()
    session = db.session
    period = ensure_period(session, app.config, BENCH_PERIOD)
    for n, (cpm, weight) in enumerate(CAMPAIGNS, start=1):
        session.add(Campaign(name=f"Campaign {n}", link_url="https://example.test/ad",
                             weight=weight, cpm_minor=cpm, currency=CURRENCY))  # fmt: skip
    session.add(Campaign(name="House", link_url="/", weight=1, cpm_minor=0, currency=CURRENCY,
                         is_house=True))  # fmt: skip
    session.commit()
    period_id = period.id
    session.close()  # no transaction of the session's may hold the tables the load alters
    starts, ends = bounds(BENCH_PERIOD)
    releases = -(-sizes.tracks // TRACKS_PER_RELEASE)
    artists = -(-releases // RELEASES_PER_ARTIST)
    params = {
        "at": utcnow(), "artists": artists, "releases": releases, "tracks": sizes.tracks,
        "listeners": sizes.listeners, "per_artist": RELEASES_PER_ARTIST,
        "per_release": TRACKS_PER_RELEASE, "currency": CURRENCY,
    }  # fmt: skip
    with db.engine.begin() as conn:
        conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        conn.execute(text(f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'"))
        conn.execute(text("SELECT setseed(:seed)"), {"seed": SEED})
        for statement in CATALOGUE_SQL:
            conn.execute(text(statement), params)
        elapsed = time.perf_counter() - started
        progress(f"catalogue and {sizes.listeners} listeners: {elapsed:.0f} s")
        conn.execute(
            text(PLAN_SQL),
            {"idle": IDLE_LISTENERS, "weight_cap": PARETO_WEIGHT_CAP, "alpha": PARETO_ALPHA,
             "plays": sizes.plays, "per_play": IMPRESSIONS_PER_PLAY},
        )  # fmt: skip
        conn.execute(text(TRACK_RANKS_SQL))
        conn.execute(text("ALTER TABLE bench_track_rank ADD PRIMARY KEY (rank)"))
        conn.execute(text(CAMPAIGN_RANGES_SQL))
        restore = drop_for_load(conn, ["plays", "ad_impressions"])
        window = {"period_id": period_id, "starts": starts, "ends": ends}
        conn.execute(text(PLAYS_SQL), {**window, "tracks": sizes.tracks})
        progress(f"{sizes.plays} plays: {time.perf_counter() - started:.0f} s")
        total_weight = sum(weight for _, weight in CAMPAIGNS)
        conn.execute(
            text(IMPRESSIONS_SQL),
            {**window, "currency": CURRENCY, "total_weight": float(total_weight)},
        )
        progress(f"impressions: {time.perf_counter() - started:.0f} s")
        for statement in restore:
            conn.execute(text(statement))
        progress(f"indexes and foreign keys: {time.perf_counter() - started:.0f} s")
        # The listeners' counters, as landing each play and impression would have kept them.
        with Session(bind=conn) as counting:
            recount_landed(counting, period_id)
            counting.flush()
        conn.execute(text(PLAY_DAYS_SQL))
        progress(f"listener counters and play days: {time.perf_counter() - started:.0f} s")
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("users", "artists", "releases", "tracks", "listeners", "plays",
                      "ad_impressions", "ad_campaigns", "periods", "period_listeners",
                      "track_play_days"):  # fmt: skip
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    seconds = time.perf_counter() - started
    progress(f"loaded and vacuumed: {seconds:.0f} s")
    return seconds


def drop_for_load(conn: Any, tables: Sequence[str]) -> list[str]:
    """Drop the foreign keys, unique constraints and secondary indexes of ``tables`` (not
    their primary keys); returns the statements that make them again, as they were."""
    from sqlalchemy import text

    restore: list[str] = []
    drops: list[str] = []
    for table in tables:
        constraints = conn.execute(
            text(
                "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = CAST(:table AS regclass) AND contype IN ('f', 'u') "
                "ORDER BY conname"
            ),
            {"table": table},
        ).all()
        backing = {name for name, kind, _ in constraints if kind == "u"}
        indexes = conn.execute(
            text(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index AS x "
                "JOIN pg_class AS i ON i.oid = x.indexrelid "
                "WHERE x.indrelid = CAST(:table AS regclass) AND NOT x.indisprimary "
                "ORDER BY i.relname"
            ),
            {"table": table},
        ).all()
        for name, _kind, definition in constraints:
            drops.append(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for name, definition in indexes:
            if name not in backing:
                drops.append(f'DROP INDEX "{name}"')
                restore.insert(0, definition)  # indexes before the constraints check rows
    for statement in drops:
        conn.execute(text(statement))
    return restore


def data_figures(marker: dict[str, str]) -> dict[str, Any]:
    """What the loaded data looks like."""
    from sqlalchemy import text

    from app.extensions import db

    with db.engine.connect() as conn:
        period_id = conn.scalar(text("SELECT id FROM periods WHERE key = :k"), {"k": BENCH_PERIOD})
        row = conn.execute(
            text(
                "SELECT count(*), count(DISTINCT listener_id), max(n) FROM ("
                " SELECT listener_id, count(*) AS n FROM plays WHERE period_id = :p"
                " GROUP BY listener_id) AS per_listener"
            ),
            {"p": period_id},
        ).one()
        top = conn.scalar(
            text(
                "SELECT max(n) FROM (SELECT count(*) AS n FROM plays WHERE period_id = :p "
                "GROUP BY track_id) AS per_track"
            ),
            {"p": period_id},
        )
        impressions = conn.scalar(
            text("SELECT count(*) FROM ad_impressions WHERE period_id = :p"), {"p": period_id}
        )
    return {
        "data_plays": int(marker["plays"]),
        "data_listeners": int(marker["listeners"]),
        "data_listeners_playing": int(row[1]),
        "data_tracks": int(marker["tracks"]),
        "data_impressions": int(impressions),
        "data_max_listener_plays": int(row[2] or 0),
        "data_top_track_plays": int(top or 0),
        "data_load_seconds": float(marker["load_seconds"]),
        "data_loaded_at": marker["loaded_at"],
    }


# close_ratio --------------------------------------------------------------------------------


def median_seconds(run: Callable[[], Any], repeat: int) -> float:
    """The median of ``repeat`` timed runs after one untimed warm-up; each run is rolled back."""
    from app.extensions import db

    run()
    db.session.rollback()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
        db.session.rollback()
    return statistics.median(times)


def time_close(app: Any, repeat: int) -> None:
    """Print the close's figures under each model as they are measured."""
    from sqlalchemy import func, select, text

    from app.extensions import db
    from app.pools import service
    from app.pools.models import Period, PeriodAllocation, PeriodStatus, PoolModel

    session = db.session
    period_id = session.scalar(select(Period.id).where(Period.key == BENCH_PERIOD))
    bare = text("SELECT track_id, count(*) FROM plays WHERE period_id = :p GROUP BY track_id")
    rows = session.execute(bare, {"p": period_id}).all()
    plays = sum(count for _, count in rows)
    session.rollback()

    def group_by() -> None:
        session.execute(bare, {"p": period_id}).all()

    def close(model: PoolModel) -> Period:
        period = service.close_period(session, app.config, BENCH_PERIOD, model=model)
        session.flush()
        return period

    bare_seconds = median_seconds(group_by, repeat)
    report({"close_period": BENCH_PERIOD, "close_tracks": len(rows),
            "bare_group_by_ms": bare_seconds * 1000})  # fmt: skip
    for model in PoolModel:
        # A checked run first: the close is complete, and its split adds up to the pool.
        period = close(model)
        allocated, tracks = session.execute(
            select(func.coalesce(func.sum(PeriodAllocation.amount_minor), 0), func.count())
            .where(PeriodAllocation.period_id == period_id)
        ).one()  # fmt: skip
        if (
            period.status is not PeriodStatus.CLOSED
            or period.earning_plays != plays
            or tracks != len(rows)
            or allocated != period.pool_minor
        ):
            fail(f"the {model} close is not what was loaded: {period.earning_plays} plays, "
                 f"{tracks} tracks, {allocated} of a pool of {period.pool_minor}")  # fmt: skip
        pool = int(period.pool_minor or 0)
        session.rollback()
        seconds = median_seconds(lambda: close(model), repeat)
        report({f"close_{model}_pool_minor": pool, f"close_{model}_ms": seconds * 1000,
                f"close_ratio_{model}": seconds / bare_seconds})  # fmt: skip


# Fixtures for heartbeats and streaming ------------------------------------------------------


@dataclass(frozen=True)
class Streamable:
    release_id: int
    track_ids: list[int]  # the first is the streamed one
    opus: Path  # the plaintext of the first track's Opus rendition


def make_streamable(work: Path, tracks: int) -> Streamable:
    """A published release of ``tracks`` ready tracks sharing one real rendition pair (Opus
    and MP3 of a generated master, encrypted in the vault), each with a master hash of its
    own. Needs an app context."""
    from app.accounts.models import User
    from app.catalog.models import Artist, Release, Track, TrackStatus
    from app.extensions import db
    from app.ingest.models import TrackMedia
    from app.timestamps import utcnow
    from app.vault import service as vault
    from media_worker.ffmpeg import ffmpeg_path

    ffmpeg = ffmpeg_path()
    master = work / "master.wav"
    make_master(master, STREAM_MINUTES, ffmpeg)
    baseline(master, work, ffmpeg)  # base.opus (128k) and base.mp3 (192k)
    session = db.session
    stamp = f"{time.time_ns()}"
    # Made directly: hashing a password (argon2) is no part of what is measured.
    owner = User(email=f"stream-{stamp}@bench.invalid", display_name="Streamer", password_hash="!")
    artist = Artist(owner=owner, slug=f"stream-{stamp}", name="Bench Streamer")
    release = Release(artist=artist, title="Loops", currency=CURRENCY, price_minor=700,
                      minimum_price_minor=700, published=True, published_at=utcnow())  # fmt: skip
    session.add(release)
    stored_master = vault.put_path(session, master, kind="master", content_type="audio/wav")
    opus = vault.put_path(session, work / STREAMED_OPUS, kind="rendition", content_type="audio/ogg")
    mp3 = vault.put_path(session, work / "base.mp3", kind="rendition", content_type="audio/mpeg")
    made = []
    for position in range(1, tracks + 1):
        track = Track(release=release, title=f"Loop {position}", position=position,
                      price_minor=129, status=TrackStatus.READY,
                      duration_ms=int(STREAM_MINUTES * 60_000))  # fmt: skip
        session.add(track)
        made.append(track)
    session.flush()
    for position, track in enumerate(made, start=1):
        session.add(
            TrackMedia(
                track_id=track.id, artist_id=artist.id,
                master_sha256=f"{stored_master.sha256[:-4]}{position:04d}",
                master_object_id=stored_master.id, opus_object_id=opus.id,
                mp3_object_id=mp3.id, original_filename="master.wav", container="wav",
                codec="pcm_s24le", sample_rate=48_000, bit_depth=24, channels=2,
                waveform={"buckets": 0, "peaks": []}, tags={},
            )
        )  # fmt: skip
    session.commit()
    master.unlink()
    (work / "base.mp3").unlink()
    return Streamable(release.id, [track.id for track in made], work / STREAMED_OPUS)


# heartbeats_per_second ----------------------------------------------------------------------


@contextmanager
def one_cpu() -> Iterator[int]:
    """Pin every thread of this process to one CPU (the last allowed), then restore."""
    tasks = [int(tid) for tid in os.listdir("/proc/self/task")]
    before = {tid: os.sched_getaffinity(tid) for tid in tasks}
    cpu = max(os.sched_getaffinity(0))
    for tid in tasks:
        try:
            os.sched_setaffinity(tid, {cpu})
        except ProcessLookupError:  # a thread that has ended
            pass
    try:
        yield cpu
    finally:
        for tid, cpus in before.items():
            try:
                os.sched_setaffinity(tid, cpus)
            except ProcessLookupError:
                pass


@dataclass
class StartedPlay:
    client: Any
    headers: dict[str, str]
    token: str


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def start_plays(
    app: Any, streamable: Streamable, count: int, first_browser: int = 1
) -> list[StartedPlay]:
    """``count`` plays started through the API, by browsers of HEARTBEAT_TRACKS plays each,
    numbered from ``first_browser``: each browser loads the release page (its session, CSRF
    token and listener cookie), then starts a play of each track in turn."""
    started: list[StartedPlay] = []
    browser = first_browser - 1
    while len(started) < count:
        browser += 1
        client = app.test_client()
        client.environ_base.update({"REMOTE_ADDR": f"198.51.100.{browser % 250 + 1}",
                                    "HTTP_USER_AGENT": f"Bench Player/{browser}"})  # fmt: skip
        page = client.get(f"/releases/{streamable.release_id}")
        found = CSRF_META.search(page.get_data(as_text=True))
        if page.status_code != 200 or found is None:
            fail(f"the release page answered {page.status_code} without a CSRF token")
        headers = {"X-CSRFToken": found.group(1)}
        for track_id in streamable.track_ids[: count - len(started)]:
            response = client.post("/api/v1/plays", json={"track_id": track_id}, headers=headers)
            if response.status_code != 201:
                fail(f"starting a play answered {response.status_code}: "
                     f"{response.get_data(as_text=True)[:300]}")  # fmt: skip
            started.append(StartedPlay(client, headers, response.json["id"]))
    return started


def send_heartbeats(
    plays: Sequence[StartedPlay], position: float, expect: Callable[[dict], bool]
) -> float:
    """One heartbeat of each play through the app; the seconds the requests took."""
    seconds = 0.0
    for play in plays:
        url = f"/api/v1/plays/{play.token}/heartbeat"
        began = time.perf_counter()
        response = play.client.post(url, json={"position_seconds": position}, headers=play.headers)
        seconds += time.perf_counter() - began
        if response.status_code != 200 or not expect(response.json):
            fail(f"a heartbeat answered {response.status_code}: "
                 f"{response.get_data(as_text=True)[:300]}")  # fmt: skip
    return seconds


def make_due(app: Any, plays: Sequence[StartedPlay]) -> None:
    """Move the plays' start back past the count threshold, as if that time had passed."""
    from sqlalchemy import Interval, literal, update

    from app.extensions import db
    from app.plays.models import Play

    back = literal(timedelta(seconds=float(app.config["PLAY_COUNT_SECONDS"]) + 30), Interval())
    with app.app_context():
        db.session.execute(
            update(Play)
            .where(Play.token.in_([play.token for play in plays]))
            .values(started_at=Play.started_at - back)
        )
        db.session.commit()


def time_heartbeats(app: Any, streamable: Streamable, count: int, repeat: int) -> dict[str, Any]:
    # Each batch's plays are started just before its heartbeats, so its first ones come well
    # before PLAY_COUNT_SECONDS have passed.
    size = -(-count // repeat)
    browsers_per_batch = -(-size // HEARTBEAT_TRACKS)
    rates: dict[str, list[float]] = {"not_due": [], "due": [], "decided": [], "all": []}
    with one_cpu() as cpu:
        for number in range(repeat):
            batch = start_plays(app, streamable, size, 1 + number * browsers_per_batch)
            not_due = send_heartbeats(
                batch, 5.0, lambda body: body["counted"] is False and body["outcome"] is None
            )
            make_due(app, batch)
            due = send_heartbeats(
                batch, 35.0, lambda body: body["counted"] is True and body["outcome"] == "counted"
            )
            decided = send_heartbeats(batch, 40.0, lambda body: body["outcome"] == "counted")
            for name, seconds in (("not_due", not_due), ("due", due), ("decided", decided)):
                rates[name].append(len(batch) / seconds)
            rates["all"].append(3 * len(batch) / (not_due + due + decided))
    return {
        "heartbeat_plays": size * repeat,
        "heartbeat_browsers": browsers_per_batch * repeat,
        "heartbeat_cpu": cpu,
        "heartbeats_per_second": statistics.median(rates["all"]),
        "heartbeat_not_due_per_second": statistics.median(rates["not_due"]),
        "heartbeat_due_per_second": statistics.median(rates["due"]),
        "heartbeat_decided_per_second": statistics.median(rates["decided"]),
    }


# stream_vs_static ---------------------------------------------------------------------------


def add_static_route(app: Any, path: Path) -> None:
    """The rendition's plaintext served as a plain file, with Range, by ``flask.send_file``."""
    from flask import send_file

    def static_opus() -> Any:
        return send_file(path, mimetype="audio/ogg", conditional=True, max_age=0)

    app.add_url_rule(STATIC_PATH, "bench_static_opus", static_opus)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """werkzeug's threaded server (HTTP/1.1, keep-alive, no request log) on a loopback port
    of its own, in a thread of this process; yields its base URL."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Handler(WSGIRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Handler)
    thread = threading.Thread(target=server.serve_forever, name="bench-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def range_bounds(header: str, size: int) -> tuple[int, int]:
    found = re.fullmatch(r"bytes=(\d+)-(\d+)", header)
    if found is None:
        fail(f"--range must be bytes=START-END, not {header!r}")
    start, end = int(found.group(1)), int(found.group(2))
    if not start <= end < size:
        fail(f"--range {header} is not inside the rendition's {size} bytes")
    return start, end


def check_range(url: str, header: str, expected: bytes) -> None:
    request = urllib.request.Request(url, headers={"Range": header})
    with urllib.request.urlopen(request) as response:  # noqa: S310 (loopback)
        body = response.read()
        if response.status != 206 or body != expected:
            fail(f"{url} answered {response.status} with {len(body)} bytes, not the range")


WRK_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)


def wrk_rate(wrk: str, url: str, header: str, seconds: int, connections: int) -> float:
    result = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "-H", f"Range: {header}", url],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    found = WRK_RATE.search(result.stdout)
    if found is None or "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        fail(f"wrk on {url} did not succeed:\n{result.stdout}")
    return float(found.group(1))


def time_stream(
    app: Any, streamable: Streamable, header: str, seconds: int, connections: int, repeat: int
) -> dict[str, Any]:
    wrk = shutil.which("wrk") or "/usr/bin/wrk"
    if not Path(wrk).exists():
        fail("stream_vs_static needs wrk (apt-get install wrk)")
    plain = streamable.opus.read_bytes()
    start, end = range_bounds(header, len(plain))
    stream_path = f"/tracks/{streamable.track_ids[0]}/stream.opus"
    streams: list[float] = []
    statics: list[float] = []
    with serving(app) as base:
        for path in (stream_path, STATIC_PATH):
            check_range(base + path, header, plain[start : end + 1])
        for _ in range(repeat):
            streams.append(wrk_rate(wrk, base + stream_path, header, seconds, connections))
            statics.append(wrk_rate(wrk, base + STATIC_PATH, header, seconds, connections))
    return {
        "stream_range": header,
        "stream_rendition_bytes": len(plain),
        "stream_requests_per_second": statistics.median(streams),
        "static_requests_per_second": statistics.median(statics),
        "stream_vs_static": statistics.median(s / t for s, t in zip(streams, statics, strict=True)),
    }


# Running it ---------------------------------------------------------------------------------


@contextmanager
def bench_app(url: str, redis_url: str) -> Iterator[tuple[Any, Path]]:
    """The app on the benchmark's database with a temporary instance (vault, keys); its job
    queue is released at the end."""
    with tempfile.TemporaryDirectory(prefix="megabox-bench-pools-") as folder:
        work = Path(folder)
        app = make_app(url, redis_url, work / "instance")
        # Routes are added before the first request; make_streamable writes this file.
        add_static_route(app, work / STREAMED_OPUS)
        try:
            yield app, work
        finally:
            queue = app.extensions.get("jobs")
            if queue is not None:
                queue.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--plays", type=int, default=DEFAULT_PLAYS, help="counted plays")
    parser.add_argument("--listeners", type=int, default=DEFAULT_LISTENERS, help="listeners")
    parser.add_argument("--tracks", type=int, default=DEFAULT_TRACKS, help="tracks")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                        help="runs; the median counts")  # fmt: skip
    parser.add_argument("--rebuild", action="store_true",
                        help="load the data afresh even when the marker has it")  # fmt: skip
    parser.add_argument("--only", action="append", choices=PARTS,
                        help="run this part only (repeatable); all parts by default")  # fmt: skip
    parser.add_argument("--heartbeat-plays", type=int, default=DEFAULT_HEARTBEAT_PLAYS,
                        help="plays started for the heartbeats (3 heartbeats each)")  # fmt: skip
    parser.add_argument("--seconds", type=int, default=DEFAULT_SECONDS,
                        help="seconds of each wrk run")  # fmt: skip
    parser.add_argument("--connections", type=int, default=DEFAULT_CONNECTIONS,
                        help="wrk connections")  # fmt: skip
    parser.add_argument("--range", default=DEFAULT_RANGE, help="the Range header wrk sends")
    args = parser.parse_args()
    counts = (args.plays, args.listeners, args.tracks, args.repeat, args.heartbeat_plays,
              args.seconds, args.connections)  # fmt: skip
    if min(counts) < 1:
        parser.error("every count must be at least 1")
    parts = set(args.only or PARTS)
    url = database_url()
    redis_url = os.environ.get("MEGABOX_REDIS_URL", "")
    sizes = Sizes(args.plays, args.listeners, args.tracks)

    from app.extensions import db

    with bench_app(url, redis_url) as (app, work):
        with app.app_context():
            marker = prepare_database(app, sizes, load="close" in parts, rebuild=args.rebuild)
            report({"repeat": args.repeat, "cpus": os.cpu_count() or 0})
            if "close" in parts:
                report(data_figures(marker))
                time_close(app, args.repeat)
            if parts & {"heartbeats", "stream"}:
                streamable = make_streamable(work, HEARTBEAT_TRACKS)
            db.session.remove()
        if "heartbeats" in parts:
            report(time_heartbeats(app, streamable, args.heartbeat_plays, args.repeat))
        if "stream" in parts:
            report(
                time_stream(app, streamable, args.range, args.seconds, args.connections,
                            args.repeat)
            )  # fmt: skip


if __name__ == "__main__":
    main()
