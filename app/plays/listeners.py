"""Who is listening: the listener identity that plays and ad impressions are counted against.

- A signed-in user is ``u:<user id>``, whatever browser they use.
- An anonymous browser gets a first-party cookie (``LISTENER_COOKIE``) holding a random id,
  signed with the app's secret, and is ``c:<id>`` while it sends the cookie back. A cookie
  whose signature fails is ignored, so a listener cannot choose another's id.
- A request without a valid cookie (the first one, or a client that drops cookies) is
  ``h:<UTC day>:<hash>``: an HMAC of the IP address and user agent under a key derived from
  the secret and the day. The key changes every UTC day, so the stored value cannot be
  matched to an address by hashing guesses with a fixed key, and no value links two days. The
  raw address is never stored.

A client that drops cookies therefore stays one listener for the day, so it cannot escape the
dedupe window or the daily cap by forgetting its cookie. A client that takes a fresh cookie
for every play (or changes its user agent) is a new listener each time; so an anonymous
identity also names its ``address_listener_id``: ``a:<UTC day>:<hash>``, a keyed hash of the IP
address alone under the same daily key, which every cookie and user agent from that address
shares. Plays and impressions record it, and the per-address limits
(``PLAY_ADDRESS_DAILY_CAP``, the dedupe window, the ad frequency cap) are counted against it.
Signed-in listeners are limited per account only.

``identify`` is the service function (explicit arguments); ``request_listener`` and
``remember_listener`` are the view helpers that read the request and set the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Response, current_app, request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.current import viewer
from app.accounts.models import User
from app.database import insert_unless_exists
from app.plays.models import Listener
from app.timestamps import utcnow

LISTENER_COOKIE = "megabox_listener"
_COOKIE_SALT = "listener-cookie/v1"
_HASH_INFO = b"listener-address-hash/v1/"
_COOKIE_ID_BYTES = 16
_HASH_HEX_LENGTH = 32  # 128 bits of the HMAC


@dataclass(frozen=True)
class Identity:
    listener_id: int
    key: str
    user_id: int | None
    # A new signed cookie value the response should set, or None.
    new_cookie: str | None = None
    # Anonymous only: the day's address listener (``a:``), shared by every cookie from there.
    address_listener_id: int | None = None


def identify(
    session: Session,
    config: Mapping[str, Any],
    *,
    user: User | None,
    cookie: str | None,
    remote_addr: str | None,
    user_agent: str,
    now: datetime | None = None,
) -> Identity:
    """The listener for these request facts, created if new (also under a race).

    A signed-in user is always ``u:<id>``. An anonymous request with a valid cookie is
    ``c:<id>``; without one it is the day's address hash, and ``new_cookie`` holds a cookie to
    set so the browser's next requests are ``c:<id>``.
    """
    if user is not None:
        key = f"u:{user.id}"
        return Identity(_listener_id(session, key, user.id), key, user.id)
    now = now or utcnow()
    address_id = _listener_id(session, network_key(config, remote_addr, now), None)
    cookie_id = read_cookie(config, cookie)
    if cookie_id is not None:
        key = f"c:{cookie_id}"
        return Identity(_listener_id(session, key, None), key, None, None, address_id)
    key = address_key(config, remote_addr, user_agent, now)
    return Identity(_listener_id(session, key, None), key, None, new_cookie(config), address_id)


def address_key(
    config: Mapping[str, Any], remote_addr: str | None, user_agent: str, now: datetime
) -> str:
    """``h:<day>:<hmac>`` of the address and user agent, under the day's key."""
    message = f"{remote_addr or ''}\x00{user_agent}"
    return f"h:{now.date().isoformat()}:{_day_hash(config, now, message)}"


def network_key(config: Mapping[str, Any], remote_addr: str | None, now: datetime) -> str:
    """``a:<day>:<hmac>`` of the address alone: what the per-address limits count against."""
    return f"a:{now.date().isoformat()}:{_day_hash(config, now, remote_addr or '')}"


def _day_hash(config: Mapping[str, Any], now: datetime, message: str) -> str:
    day_key = hmac.new(
        config["SECRET_KEY"].encode(), _HASH_INFO + now.date().isoformat().encode(), hashlib.sha256
    ).digest()
    digest = hmac.new(day_key, message.encode("utf-8", "replace"), hashlib.sha256)
    return digest.hexdigest()[:_HASH_HEX_LENGTH]


def new_cookie(config: Mapping[str, Any]) -> str:
    return _serializer(config).dumps(secrets.token_hex(_COOKIE_ID_BYTES))


def read_cookie(config: Mapping[str, Any], value: str | None) -> str | None:
    """The id in a valid signed cookie, or None for a missing, forged or malformed one."""
    if not value or len(value) > 200:
        return None
    try:
        cookie_id = _serializer(config).loads(value)
    except BadSignature:
        return None
    if not isinstance(cookie_id, str) or len(cookie_id) != 2 * _COOKIE_ID_BYTES:
        return None
    return cookie_id


def _serializer(config: Mapping[str, Any]) -> URLSafeSerializer:
    return URLSafeSerializer(config["SECRET_KEY"], salt=_COOKIE_SALT)


def _listener_id(session: Session, key: str, user_id: int | None) -> int:
    found = session.scalar(select(Listener.id).where(Listener.key == key))
    if found is not None:
        return found
    session.execute(
        insert_unless_exists(session, Listener, ["key"]).values(
            key=key, user_id=user_id, created_at=utcnow()
        )
    )
    return session.scalars(select(Listener.id).where(Listener.key == key)).one()


# View helpers --------------------------------------------------------------------------------


def request_listener(session: Session) -> Identity:
    """The listener making the current request."""
    return identify(
        session,
        current_app.config,
        user=viewer(),
        cookie=request.cookies.get(LISTENER_COOKIE),
        remote_addr=request.remote_addr,
        user_agent=request.headers.get("User-Agent", ""),
    )


def remember_listener(response: Response, identity: Identity) -> Response:
    """Set the listener cookie on ``response`` when ``identity`` asks for a new one."""
    if identity.new_cookie is not None:
        response.set_cookie(
            LISTENER_COOKIE,
            identity.new_cookie,
            max_age=int(current_app.config["LISTENER_COOKIE_DAYS"]) * 86_400,
            secure=request.is_secure,
            httponly=True,
            samesite="Lax",
        )
    return response


def offer_listener_cookie(response: Response) -> Response:
    """Give an anonymous browser without a valid listener cookie a new one (no database write)."""
    cookie = request.cookies.get(LISTENER_COOKIE)
    if viewer() is None and read_cookie(current_app.config, cookie) is None:
        identity = Identity(0, "", None, new_cookie=new_cookie(current_app.config))
        remember_listener(response, identity)
    return response
