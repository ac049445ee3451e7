"""The demo that ``make demo`` seeds: its people, two artists with releases, and some history.

Every demo track is real audio: a short chord progression synthesised with ffmpeg and sent
through the same ingest pipeline as an upload, so the demo plays. Every release gets a
generated cover and every artist an avatar (``app.catalog.demo_art``), stored as an artist's
upload is (``app.catalog.images``).

With audio, the demo also gets a history, so that a new user sees a dashboard, a library and a
statement with numbers at once. It is made through the services the site itself uses:

- sales: the demo listener and two fans buy releases and tracks through the sandbox gateway
  (a signed payment event, ``app.commerce.sandbox.receive_event``), one of them a
  name-your-price purchase above the suggested price, and free music is acquired;
- plays: the listener, the fans and a few anonymous listeners play tracks on days of last
  month and of this month (``app.plays.service``), an ad impression with each play;
- last month closed: the admin enters its ad revenue and closes it (``app.pools.service``), so
  it has allocations, the artists have an ad share, and its statements are final.

The history is back-dated: each event happens at a share of last month, or of this month so
far, and the services are told that time (a play's start and heartbeat, an impression's
``now``, a payment event's ``created``), in time order. Only an order's ``created_at`` is set
afterwards, to just before its payment. The fans sign in with random passwords nobody is told:
they are buyers, not logins.

``seed_demo_catalogue`` does nothing once the demo artist's user exists, so running it again
changes nothing.
"""

from __future__ import annotations

import random
import secrets
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.accounts.models import User
from app.ads import service as ads
from app.catalog import demo_art, images, service
from app.catalog.models import Artist, PricingMode, Release, ReleaseType, Track, TrackStatus
from app.commerce import sandbox
from app.commerce import service as commerce
from app.commerce.models import Order, OrderStatus
from app.ingest import uploads as ingest
from app.jobs.runner import perform_job
from app.ledger.money import Money
from app.plays import listeners
from app.plays import service as plays
from app.plays.models import PlayOutcome
from app.pools import service as pools
from app.pools.models import PeriodStatus
from app.pools.periods import bounds
from app.timestamps import utcnow
from media_worker.ffmpeg import ffmpeg_path

DEMO_LOGINS = {
    "artist": ("artist@demo.megabox.test", "demo-artist-pass"),
    "listener": ("listener@demo.megabox.test", "demo-listener-pass"),
    "admin": ("admin@demo.megabox.test", "demo-admin-pass"),
}
# Buyers besides the demo listener: (e-mail, display name).
DEMO_FANS = {
    "robin": ("robin@demo.megabox.test", "Robin Reyes"),
    "sam": ("sam@demo.megabox.test", "Sam Okafor"),
}

DEMO_ARTISTS = [
    {
        "slug": "aurora-lines",
        "name": "Aurora Lines",
        "bio": "Slow-burning synth pop recorded in a converted boathouse.",
        "releases": [
            {"title": "Northern Static", "release_type": ReleaseType.ALBUM,
             "release_date": date(2026, 9, 12), "pricing_mode": PricingMode.FIXED,
             "price_minor": 900, "currency": "USD",
             "description": "Nine songs about long winters and short radio waves.",
             "tracks": ["Cold Open", "Static Bloom", "Harbour Lights", "Night Ferry"],
             "cover": "rings"},
            {"title": "Tidal Memory", "release_type": ReleaseType.SINGLE,
             "release_date": date(2026, 10, 30), "pricing_mode": PricingMode.NAME_YOUR_PRICE,
             "price_minor": 200, "minimum_price_minor": 0, "currency": "USD",
             "description": "A single for the first frost.", "tracks": ["Tidal Memory"],
             "cover": "waves"},
        ],
    },
    {
        "slug": "the-copper-kettles",
        "name": "The Copper Kettles",
        "bio": "A four-piece folk band with too many banjos.",
        "releases": [
            {"title": "Kitchen Sessions", "release_type": ReleaseType.EP,
             "release_date": date(2026, 8, 1), "pricing_mode": PricingMode.FIXED,
             "price_minor": 500, "currency": "EUR",
             "description": "Recorded live around one microphone.",
             "tracks": ["Steam", "Whistle", "Pour"], "cover": "stripes"},
            {"title": "Free Tea", "release_type": ReleaseType.SINGLE,
             "release_date": date(2026, 11, 1), "pricing_mode": PricingMode.FREE,
             "currency": "EUR", "description": "On the house.", "tracks": ["Free Tea"],
             "cover": "sun"},
        ],
    },
]  # fmt: skip
# Keys of a release's spec that are not release fields.
_SPEC_ONLY = ("tracks", "cover")

DEMO_TRACK_SECONDS = 24
# Root notes (Hz) the demo chords cycle through, and the major-triad ratios above a root.
DEMO_ROOTS = (220.0, 246.94, 261.63, 293.66, 329.63, 196.0, 174.61)
TRIAD = (1.0, 1.26, 1.5)
CHORDS_PER_TRACK = 4

LAST_MONTH, THIS_MONTH = "last", "this"


@dataclass(frozen=True, slots=True)
class DemoSale:
    """One checkout of the demo's history: who buys, what, and when.

    ``items`` are (release title, track title or None for the release, amount in minor units
    or None for the listed price); ``share`` is how far into its month the payment arrives.
    """

    buyer: str
    items: tuple[tuple[str, str | None, int | None], ...]
    month: str
    share: float


DEMO_SALES = (
    DemoSale("listener", (("Northern Static", None, None),), LAST_MONTH, 0.12),
    DemoSale("robin", (("Northern Static", "Harbour Lights", None), ("Tidal Memory", None, 500)),
             LAST_MONTH, 0.3),
    DemoSale("sam", (("Kitchen Sessions", None, None),), LAST_MONTH, 0.45),
    # Name your price: $3.50 for a single that suggests $2.00, with a minimum of $0.00.
    DemoSale("listener", (("Tidal Memory", None, 350),), LAST_MONTH, 0.62),
    DemoSale("robin", (("Free Tea", None, None),), LAST_MONTH, 0.7),
    DemoSale("sam", (("Northern Static", None, None),), THIS_MONTH, 0.3),
    DemoSale("listener", (("Kitchen Sessions", "Steam", None), ("Kitchen Sessions", "Pour", None)),
             THIS_MONTH, 0.55),
    DemoSale("listener", (("Free Tea", None, None),), THIS_MONTH, 0.8),
)  # fmt: skip
# Listening sessions last month per listener (this month gets its share so far, at least one),
# and the tracks played in one session.
DEMO_SESSIONS = {"listener": 8, "robin": 6, "sam": 6, "anonymous": 4}
DEMO_ANONYMOUS_LISTENERS = 3
SESSION_TRACKS = (2, 4)
# What the admin enters as last month's ad revenue, in minor units of the period's currency.
DEMO_AD_REVENUE_MINOR = 4000
# Anonymous listeners' addresses come from TEST-NET-2 (RFC 5737), which no real host has.
DEMO_ADDRESS_PREFIX = "198.51.100."
DEMO_USER_AGENT = "Mozilla/5.0 (Megabox demo listener)"
# Fixed, so the same demo is seeded every time (apart from the dates, which follow today).
DEMO_RANDOM_SEED = "megabox-demo"
# This month's sessions happen before now less this margin, so each play's count is past.
_RECENT_MARGIN = timedelta(hours=1)
_GAP_BETWEEN_PLAYS = timedelta(seconds=4)
_CHECKOUT_TIME = timedelta(minutes=3)
_SESSION_ID_BYTES = 18  # as long as the sandbox's own checkout session ids


def seed_demo_catalogue(
    session: Session,
    config: Any,
    audio: bool = True,
    report: Callable[[str], None] = lambda line: None,
    *,
    track_seconds: float | None = None,
    now: datetime | None = None,
) -> bool:
    """Create the demo users, artists and published releases with covers and playable
    tracks and, with audio, the demo's history (module docstring). Unlike a service, it
    commits: the audio's processing jobs need the uploads committed, and run as units of work.

    Returns False, changing nothing, if the demo is there already. With ``audio`` off, tracks
    are created without audio and there is no history (fast, for tests of the catalogue).
    ``track_seconds`` is the synthesised tracks' length (``DEMO_TRACK_SECONDS``), and ``now``
    the time the history leads up to (default: now; an earlier time moves it all back).
    Raises DomainError when a demo address or e-mail is taken by someone else.
    """
    email, password = DEMO_LOGINS["artist"]
    if accounts.find_user_by_email(session, email) is not None:
        return False
    owner = accounts.create_user(session, email, password, "Demo Artist")
    people: dict[str, User] = {"artist": owner}
    for role in ("listener", "admin"):
        role_email, role_password = DEMO_LOGINS[role]
        people[role] = accounts.create_user(
            session, role_email, role_password, f"Demo {role.title()}", is_admin=role == "admin"
        )
    for key, (fan_email, name) in DEMO_FANS.items():
        people[key] = accounts.create_user(session, fan_email, secrets.token_urlsafe(16), name)
    releases = _create_catalogue(session, owner, audio)
    report(
        f"Demo users and catalogue: {len(people)} users, {len(DEMO_ARTISTS)} artists, "
        f"{len(releases)} releases, with generated covers and avatars."
    )
    if not audio:
        session.commit()
        report("Without audio the tracks are empty: no sales, no plays, no closed month.")
        return True
    seconds = track_seconds or DEMO_TRACK_SECONDS
    report("Synthesising each track's audio and processing it as an upload …")
    with tempfile.TemporaryDirectory(prefix="megabox-demo-") as folder:
        uploads = _spool_audio(session, config, owner, releases, Path(folder), seconds)
        session.commit()
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        _process(app, uploads, int(config["WORKER_THREADS"]), report)
    session.expire_all()  # the jobs changed the releases in their own sessions
    _seed_history(session, config, people, now or utcnow(), report)
    session.commit()
    return True


# The catalogue ----------------------------------------------------------------------------


def _create_catalogue(session: Session, owner: User, audio: bool) -> list[Release]:
    """The demo artists and their published releases, with covers and avatars; without
    audio, their tracks too (empty ones)."""
    releases = []
    for spec in DEMO_ARTISTS:
        artist = service.create_artist(session, owner, spec)
        images.set_artist_avatar(session, artist, demo_art.avatar_art(artist.name))
        for release_spec in spec["releases"]:
            fields = {k: v for k, v in release_spec.items() if k not in _SPEC_ONLY}
            release = service.create_release(session, owner, artist, {**fields, "published": True})
            art = demo_art.cover_art(release.title, composition=release_spec["cover"])
            images.set_release_cover(session, release, art)
            if not audio:
                for title in release_spec["tracks"]:
                    service.add_track(session, owner, release, {"title": title, "price_minor": 100})
            releases.append(release)
    return releases


def _spool_audio(
    session: Session,
    config: Any,
    owner: User,
    releases: Sequence[Release],
    folder: Path,
    seconds: float,
) -> list[tuple[str, str]]:
    """Synthesise every demo track and open it as an upload: (upload id, title) each."""
    session.flush()  # a release needs its id before an upload can name it
    titles = {spec_release["title"]: spec_release["tracks"]
              for spec in DEMO_ARTISTS for spec_release in spec["releases"]}  # fmt: skip
    uploads: list[tuple[str, str]] = []
    for release in releases:
        for number, title in enumerate(titles[release.title], start=1):
            path = _synthesise(folder, config, title, release.title, number, len(uploads), seconds)
            upload = ingest.spool_local_file(session, config, owner, release, path)
            uploads.append((upload.id, title))
    return uploads


def _synthesise(
    folder: Path, config: Any, title: str, album: str, number: int, seed: int, seconds: float
) -> Path:
    """A FLAC of a few chords with the track's tags, made by ffmpeg's sine generators."""
    beat = seconds / CHORDS_PER_TRACK
    graph, chords = [], []
    for step in range(CHORDS_PER_TRACK):
        root = DEMO_ROOTS[(seed + step * 3) % len(DEMO_ROOTS)]
        names = [f"s{step}{voice}" for voice in range(len(TRIAD))]
        for name, ratio in zip(names, TRIAD, strict=True):
            graph.append(f"sine=f={root * ratio:.2f}:r=44100:d={beat:.3f}[{name}]")
        graph.append(f"{''.join(f'[{n}]' for n in names)}amix=inputs={len(TRIAD)}[c{step}]")
        chords.append(f"[c{step}]")
    fade_in, fade_out = min(0.5, seconds / 8), min(1.5, seconds / 4)
    # amix divides by its inputs; the volume gives the chord back its level, and some more.
    graph.append(
        f"{''.join(chords)}concat=n={CHORDS_PER_TRACK}:v=0:a=1,volume={len(TRIAD) * 1.5},"
        f"tremolo=f={1 + seed % 3}:d=0.4,afade=t=in:d={fade_in:.2f},"
        f"afade=t=out:st={seconds - fade_out:.2f}:d={fade_out:.2f},"
        "aformat=sample_fmts=s16:channel_layouts=stereo[out]"
    )
    path = folder / f"{seed:02d}.flac"
    command = [
        ffmpeg_path(config["FFMPEG"]), "-nostdin", "-v", "error", "-y",
        "-filter_complex", ";".join(graph), "-map", "[out]",
        "-c:a", "flac", "-metadata", f"title={title}", "-metadata", f"album={album}",
        "-metadata", f"track={number}", str(path),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return path


def _process(
    app: Flask, uploads: list[tuple[str, str]], threads: int, report: Callable[[str], None]
) -> None:
    """Run every upload's processing job as the worker threads would, ``threads`` at once.

    Raises the first job's error, once the others have finished.
    """

    def run(upload_id: str) -> None:
        with app.app_context():  # a job's own session, as a worker thread has
            perform_job(ingest.PROCESS_JOB, (upload_id,), final_attempt=True)

    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="megabox-demo") as pool:
        futures = {pool.submit(run, upload_id): title for upload_id, title in uploads}
        for index, future in enumerate(as_completed(futures), start=1):
            future.result()
            report(f"  [{index}/{len(uploads)}] {futures[future]}")


# The history ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Listener:
    """Someone who plays: a demo user, or an anonymous browser with its cookie and address."""

    name: str
    user: User | None = None
    cookie: str | None = None
    address: str | None = None


@dataclass(slots=True)
class _Tally:
    orders: int = 0
    free: int = 0
    plays: int = 0
    earning: int = 0


def _seed_history(
    session: Session,
    config: Any,
    people: Mapping[str, User],
    now: datetime,
    report: Callable[[str], None],
) -> None:
    """Sales and plays over last month and this month until ``now``, in time order, then
    last month closed (module docstring)."""
    last_key = pools.recent_keys(now)[1]
    last = bounds(last_key)
    this = (last[1], now - _RECENT_MARGIN)
    tracks = _ready_tracks(session)
    rng = random.Random(DEMO_RANDOM_SEED)
    tally = _Tally()
    events: list[tuple[datetime, Callable[[], None]]] = []
    for sale in DEMO_SALES:
        span = last if sale.month == LAST_MONTH else this
        if span[1] > span[0]:
            at = _at(span, sale.share)
            buy = partial(_buy, session, config, people[sale.buyer], sale, tracks, at, tally)
            events.append((at, buy))
    audience = list(_listeners(config, people))
    for listener in audience:
        for at, chosen in _sessions(rng, listener, list(tracks.values()), last, this):
            events.append((at, partial(_listen, session, config, listener, chosen, at, tally)))
    for _, happen in sorted(events, key=lambda event: event[0]):
        happen()
    report(
        f"Sales: {tally.orders} orders paid through the sandbox checkout and "
        f"{tally.free} free downloads, last month and this one."
    )
    report(
        f"Plays: {tally.plays} counted plays by {len(audience)} listeners, "
        f"{tally.earning} of them earning from the ad pool."
    )
    _close_last_month(session, config, people["admin"], last_key, now, report)


def _ready_tracks(session: Session) -> dict[tuple[str, str | None], Track]:
    """The demo's playable tracks by (release title, track title)."""
    slugs = [spec["slug"] for spec in DEMO_ARTISTS]
    found = session.scalars(
        select(Track)
        .join(Release, Track.release_id == Release.id)
        .join(Artist, Release.artist_id == Artist.id)
        .where(Artist.slug.in_(slugs), Track.status == TrackStatus.READY)
        .order_by(Release.id, Track.position)  # not by id: the jobs made them in any order
    )
    return {(track.release.title, track.title): track for track in found}


def _at(span: tuple[datetime, datetime], share: float) -> datetime:
    return span[0] + (span[1] - span[0]) * share


def _buy(
    session: Session,
    config: Mapping[str, Any],
    buyer: User,
    sale: DemoSale,
    tracks: Mapping[tuple[str, str | None], Track],
    at: datetime,
    tally: _Tally,
) -> None:
    """Check out ``sale`` for ``buyer`` and pay it at ``at`` through a signed sandbox event;
    a sale that costs nothing is acquired at once, as the site does."""
    releases = {release_title: track.release for (release_title, _), track in tracks.items()}
    lines = []
    for release_title, track_title, amount in sale.items:
        track_id = tracks[(release_title, track_title)].id if track_title else None
        lines.append(commerce.CartLine(releases[release_title].id, track_id, amount))
    order, _ = commerce.start_checkout(
        session, _DemoCheckout(), buyer, lines, config=config,
        success_url=lambda order: "", cancel_url=lambda order: "",
    )  # fmt: skip
    order.created_at = at - _CHECKOUT_TIME
    if order.status is OrderStatus.PAID:  # nothing to pay: acquired at once
        order.paid_at = at
        tally.free += 1
        return
    event = sandbox.payment_event(order, sandbox.PAYMENT_SUCCEEDED, config=config)
    event["created"] = int(at.timestamp())
    payload, signature = sandbox.signed_event(event, config)
    paid = sandbox.receive_event(session, payload, signature, config)
    if paid.status is not OrderStatus.PAID:
        raise RuntimeError(f"the demo order {paid.public_id} was not paid: {paid.failure_reason}")
    tally.orders += 1


class _DemoCheckout:
    """The sandbox gateway without its page: the demo's buyers pay at once, so the checkout
    needs only its session id, which the payment event names."""

    name = sandbox.NAME

    def start_checkout(
        self, order: Order, *, success_url: str, cancel_url: str
    ) -> commerce.CheckoutRedirect:
        session_id = sandbox.SESSION_PREFIX + secrets.token_urlsafe(_SESSION_ID_BYTES)
        return commerce.CheckoutRedirect(session_id=session_id, url="")


def _listeners(config: Mapping[str, Any], people: Mapping[str, User]) -> Iterator[_Listener]:
    """The demo listener, the fans, and anonymous browsers (each with its own cookie and
    address)."""
    for key in DEMO_SESSIONS:
        if key != "anonymous":
            yield _Listener(key, user=people[key])
    for number in range(1, DEMO_ANONYMOUS_LISTENERS + 1):
        yield _Listener(
            "anonymous",
            cookie=listeners.new_cookie(config),
            address=f"{DEMO_ADDRESS_PREFIX}{10 + number}",
        )


def _sessions(
    rng: random.Random,
    listener: _Listener,
    tracks: list[Track],
    last: tuple[datetime, datetime],
    this: tuple[datetime, datetime],
) -> Iterator[tuple[datetime, list[Track]]]:
    """When the listener listens, and to what: sessions on distinct days of last month, and
    this month's share of them (at least one, once this month is under way)."""
    taste = [rng.random() ** 2 + 0.05 for _ in tracks]  # a few favourites, the rest now and then
    count = DEMO_SESSIONS[listener.name]
    days = (last[1] - last[0]).days
    for day in sorted(rng.sample(range(days), min(count, days))):
        start = last[0] + timedelta(days=day, hours=rng.uniform(7, 23))
        yield start, _pick(rng, tracks, taste)
    elapsed = this[1] - this[0]
    if elapsed <= timedelta(0):
        return
    for _ in range(max(1, round(count * elapsed / (last[1] - last[0])))):
        yield this[0] + elapsed * rng.random(), _pick(rng, tracks, taste)


def _pick(rng: random.Random, tracks: list[Track], taste: list[float]) -> list[Track]:
    """A few different tracks, favourites more likely."""
    wanted = min(len(tracks), rng.randint(*SESSION_TRACKS))
    chosen: list[Track] = []
    while len(chosen) < wanted:
        track = rng.choices(tracks, weights=taste)[0]
        if track not in chosen:
            chosen.append(track)
    return chosen


def _listen(
    session: Session,
    config: Mapping[str, Any],
    listener: _Listener,
    chosen: Sequence[Track],
    at: datetime,
    tally: _Tally,
) -> None:
    """Play ``chosen`` one after another from ``at``, as the player would: start, show the
    ad, and send a heartbeat once each play is due."""
    identity = listeners.identify(
        session, config, user=listener.user, cookie=listener.cookie,
        remote_addr=listener.address, user_agent=DEMO_USER_AGENT, now=at,
    )  # fmt: skip
    for track in chosen:
        play = plays.start_play(
            session, config, track=track, identity=identity, viewer=listener.user, now=at
        )
        session.flush()  # the impression names the play by its row
        ads.record_impression(
            session, config, listener_id=identity.listener_id,
            address_listener_id=identity.address_listener_id,
            ad=ads.choose_ad(session, today=at.date()), play_token=play.token,
            now=at + timedelta(seconds=1),
        )  # fmt: skip
        due = at + timedelta(milliseconds=play.threshold_ms)
        decided = plays.heartbeat(
            session, config, token=play.token, position_ms=play.threshold_ms, now=due
        )
        if decided.outcome is PlayOutcome.COUNTED:
            tally.plays += 1
            tally.earning += int(decided.earns)
        at += timedelta(milliseconds=track.duration_ms or play.threshold_ms) + _GAP_BETWEEN_PLAYS


def _close_last_month(
    session: Session,
    config: Mapping[str, Any],
    admin: User,
    key: str,
    now: datetime,
    report: Callable[[str], None],
) -> None:
    """The admin enters last month's ad revenue and closes it (unless someone closed it)."""
    period = pools.find_period(session, key)
    if period is not None and period.status is PeriodStatus.CLOSED:
        report(f"Period {key} was closed already: left as it is.")
        return
    pools.set_revenue(session, config, key, DEMO_AD_REVENUE_MINOR)
    closed = pools.close_period(session, config, key, closed_by=admin, now=now)
    revenue = Money(int(closed.closed_revenue_minor or 0), closed.currency).format()
    pool = Money(int(closed.pool_minor or 0), closed.currency).format()
    report(
        f"Closed {key}: the admin entered {revenue} of ad revenue; {pool} went to the artists "
        f"over {closed.earning_plays:,} plays."
    )
