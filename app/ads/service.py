"""Ad campaigns, the ad the player's slot shows, impressions under the frequency cap, and a
period's ad revenue.

Choosing an ad (``choose_ad``): among the active campaigns running on the UTC day (``starts_on``
and ``ends_on`` are inclusive; either may be open), paid campaigns come first, one picked at
random in proportion to its ``weight``. Only when no paid campaign runs are house campaigns
chosen, the same way; only when no campaign runs at all is the built-in house ad shown
(``BUILT_IN_AD``, no campaign row). A campaign of weight 0 is never shown.

Recording an impression (``record_impression``): impressions are billable, so one is recorded
only for a play the listener is in the middle of. The request names the play (its token, from
``POST /api/v1/plays``), and an impression is recorded only when that play

- is the same listener's (a cookie, account or address hash that did not start it cannot
  bill for it),
- started within ``PLAY_SESSION_TTL_SECONDS``, as long as the play itself takes heartbeats, and
- has no impression yet: ``ad_impressions.play_id`` is unique, and the insert does nothing on
  a conflict, so two requests naming one play record one impression.

Then the frequency cap: a listener's impressions are counted over the last
``AD_FREQUENCY_WINDOW_SECONDS`` (an impression shown exactly that long ago no longer counts),
and one more is recorded only while there are fewer than ``AD_FREQUENCY_CAP``. An anonymous
listener's impressions also record the day's address listener (``Identity.address_listener_id``,
a hash of the IP address alone), and the same cap holds per address: fresh cookies from one
address do not buy fresh impressions. People sharing an address anonymously share its cap;
signed-in listeners are capped per account only. The counts and the insert run under row locks
of the address listener, then the listener (always in that order, as plays take them, so the
two never deadlock), so parallel requests queue there and cannot pass a cap together.

Whatever is recorded, the ad is still shown. An impression snapshots the campaign's CPM and
lands in the period of its time (``app.pools.periods.landing_period``).
Campaigns are priced in ``DEFAULT_CURRENCY``; should a campaign's currency differ from its
period's (the setting changed since), the impression is recorded with a CPM of 0 rather than
mixing currencies. House ads always have a CPM of 0: a CPM typed on one is refused, and a paid
campaign needs its CPM typed (0 is a valid answer, an empty field is not).

The admin's list shows each campaign's state (``campaign_state``): paused, ended, never shown
(weight 0), scheduled, or running.

Campaign names are one line of text: surrounding spaces are dropped, and control characters
(NUL, tabs, line breaks, text-direction overrides) are refused. Images are decoded whole and
re-encoded before they are stored (``app.ads.images``).
"""

from __future__ import annotations

import io
import random
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from app.ads import images
from app.ads.errors import CampaignNotFound, InvalidAdImage, InvalidCampaign
from app.ads.models import CAMPAIGN_NAME_MAX_LENGTH, LINK_MAX_LENGTH, Campaign, Impression
from app.catalog.service import max_price_minor, price_problem
from app.database import insert_unless_exists, lock_row
from app.ledger.money import Money
from app.plays.models import PLAY_TOKEN_LENGTH, Listener, Play
from app.pools.periods import count_landed, landing_period
from app.timestamps import utcnow
from app.vault import service as vault

# A bound that keeps a weight far inside a 32-bit column; relative weights are what matter.
MAX_WEIGHT = 1_000_000
CPM_IMPRESSIONS = 1000  # a CPM is the price of this many impressions
IMAGE_KIND = "ad_image"
LINK_SCHEMES = ("http", "https")
# Characters a name cannot hold besides control characters (category Cc): the ones that
# reorder the text around them, so a name could show differently from what it is.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# What ``campaign_state`` returns, as the admin's list shows it.
STATE_LABELS = {
    "paused": "Paused",
    "ended": "Ended",
    "unweighted": "Never shown (weight 0)",
    "scheduled": "Scheduled",
    "running": "Running",
}


@dataclass(frozen=True)
class CampaignInput:
    """What the admin sets on a campaign. ``image`` None keeps the current image;
    ``cpm_minor`` None is a CPM left empty (refused for a paid campaign)."""

    name: str
    link_url: str
    weight: int = 1
    starts_on: date | None = None
    ends_on: date | None = None
    cpm_minor: int | None = 0
    is_house: bool = False
    active: bool = True
    image: bytes | None = None
    remove_image: bool = False


@dataclass(frozen=True)
class Ad:
    """What the slot shows: a campaign, or the built-in house ad (``campaign_id`` None)."""

    campaign_id: int | None
    name: str
    link_url: str
    image_object_id: str | None
    is_house: bool
    cpm_minor: int
    currency: str | None


BUILT_IN_AD = Ad(
    campaign_id=None,
    name="Megabox — buy music straight from the artist",
    link_url="/",
    image_object_id=None,
    is_house=True,
    cpm_minor=0,
    currency=None,
)


@dataclass(frozen=True)
class CampaignRow:
    """A campaign as the admin's list shows it."""

    campaign: Campaign
    impressions: int

    @property
    def cpm(self) -> Money:
        return Money(self.campaign.cpm_minor, self.campaign.currency)


# Campaigns ----------------------------------------------------------------------------------


def image_problem(config: Mapping[str, Any], data: bytes) -> str | None:
    """Why ``data`` cannot be an ad image, for people, or None."""
    try:
        _prepared_image(config, data)
    except InvalidAdImage as exc:
        return exc.message
    return None


def link_problem(url: str) -> str | None:
    """Why ``url`` cannot be an ad's link, for people, or None."""
    if not url:
        return "Enter the address the ad links to."
    if len(url) > LINK_MAX_LENGTH:
        return f"A link is at most {LINK_MAX_LENGTH} characters long."
    parts = urlsplit(url)
    if parts.scheme.lower() not in LINK_SCHEMES or not parts.hostname:
        return "Use a web address that starts with http:// or https://, like https://example.com."
    if any(character.isspace() or ord(character) < 32 for character in url):
        return "A link cannot contain spaces or control characters."
    return None


def campaign_problems(config: Mapping[str, Any], values: CampaignInput) -> dict[str, list[str]]:
    """Every rule ``values`` breaks, as messages for people keyed by field; empty when valid."""
    return _examine(config, values)[0]


def create_campaign(
    session: Session, config: Mapping[str, Any], values: CampaignInput
) -> Campaign:
    """A new campaign in ``DEFAULT_CURRENCY``, its image re-encoded and stored in the vault.

    Raises InvalidCampaign naming each field that breaks a rule.
    """
    image = _checked(config, values)
    campaign = Campaign(currency=config["DEFAULT_CURRENCY"], created_at=utcnow())
    _apply(campaign, config, values)
    if image is not None:
        _store_image(session, campaign, image)
    session.add(campaign)
    return campaign


def update_campaign(
    session: Session, config: Mapping[str, Any], campaign: Campaign, values: CampaignInput
) -> Campaign:
    """Change a campaign; a new image replaces the old, which is deleted once this commits.

    The CPM is read in ``DEFAULT_CURRENCY``, which the campaign takes. Raises InvalidCampaign.
    """
    image = _checked(config, values)
    _apply(campaign, config, values)
    replaced = campaign.image_object_id
    if image is not None:
        _store_image(session, campaign, image)
    elif values.remove_image:
        campaign.image_object_id = campaign.image_mimetype = None
    if replaced is not None and replaced != campaign.image_object_id:
        session.flush()  # the campaign stops pointing at the old image before its row goes
        vault.delete(session, replaced)
    return campaign


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    """The campaign. Raises CampaignNotFound."""
    found = session.get(Campaign, campaign_id)
    if found is None:
        raise CampaignNotFound("There is no such campaign.")
    return found


def campaign_rows(session: Session) -> list[CampaignRow]:
    """Every campaign with its number of impressions so far: active first, newest first."""
    shown = (
        select(Impression.campaign_id, func.count().label("impressions"))
        .group_by(Impression.campaign_id)
        .subquery()
    )
    rows = session.execute(
        select(Campaign, func.coalesce(shown.c.impressions, 0))
        .outerjoin(shown, shown.c.campaign_id == Campaign.id)
        .order_by(Campaign.active.desc(), Campaign.created_at.desc(), Campaign.id.desc())
    )
    return [CampaignRow(campaign, impressions) for campaign, impressions in rows]


def campaign_state(campaign: Campaign, today: date) -> str:
    """A key of ``STATE_LABELS`` for the campaign on ``today`` (UTC): ``paused``, ``ended``,
    ``unweighted`` (weight 0: never shown), ``scheduled`` or ``running``."""
    if not campaign.active:
        return "paused"
    if campaign.ends_on is not None and today > campaign.ends_on:
        return "ended"
    if campaign.weight == 0:
        return "unweighted"
    if campaign.starts_on is not None and today < campaign.starts_on:
        return "scheduled"
    return "running"


# The slot ------------------------------------------------------------------------------------


def choose_ad(session: Session, *, today: date, rng: random.Random | None = None) -> Ad:
    """The ad to show on ``today`` (UTC), chosen as the module docstring says."""
    running = session.scalars(
        select(Campaign)
        .where(
            Campaign.active.is_(True),
            Campaign.weight > 0,
            or_(Campaign.starts_on.is_(None), Campaign.starts_on <= today),
            or_(Campaign.ends_on.is_(None), Campaign.ends_on >= today),
        )
        .order_by(Campaign.id)
    ).all()
    paid = [campaign for campaign in running if not campaign.is_house]
    candidates = paid or running  # without paid ones, every running campaign is a house ad
    if not candidates:
        return BUILT_IN_AD
    chosen = _weighted_choice(candidates, rng or random.SystemRandom())
    return Ad(
        campaign_id=chosen.id,
        name=chosen.name,
        link_url=chosen.link_url,
        image_object_id=chosen.image_object_id,
        is_house=chosen.is_house,
        cpm_minor=0 if chosen.is_house else chosen.cpm_minor,
        currency=chosen.currency,
    )


def record_impression(
    session: Session,
    config: Mapping[str, Any],
    *,
    listener_id: int,
    ad: Ad,
    play_token: str | None,
    address_listener_id: int | None = None,
    now: datetime | None = None,
) -> Impression | None:
    """Record that ``ad`` was shown to the listener during their play ``play_token``.

    ``address_listener_id`` is an anonymous listener's address listener (None when signed in).
    Returns None, recording nothing, unless the play is the listener's, started within
    ``PLAY_SESSION_TTL_SECONDS`` and has no impression yet, and neither the listener nor the
    address has reached the frequency cap (see the module docstring).
    """
    now = now or utcnow()
    play_id = _live_play_id(session, config, play_token, listener_id, now)
    if play_id is None:
        return None
    # The address first, then the listener: the order plays take them in too.
    if address_listener_id is not None and address_listener_id != listener_id:
        lock_row(session, Listener.__table__, address_listener_id)
    lock_row(session, Listener.__table__, listener_id)
    since = now - timedelta(seconds=int(config["AD_FREQUENCY_WINDOW_SECONDS"]))
    cap = int(config["AD_FREQUENCY_CAP"])
    if _shown_since(session, Impression.listener_id == listener_id, since, cap) >= cap:
        return None
    if address_listener_id is not None:
        by_address = Impression.address_listener_id == address_listener_id
        if _shown_since(session, by_address, since, cap) >= cap:
            return None
    period = landing_period(session, config, now)
    cpm_minor = ad.cpm_minor if ad.currency == period.currency else 0
    new_id = session.execute(
        insert_unless_exists(session, Impression, ["play_id"])
        .values(
            campaign_id=ad.campaign_id,
            listener_id=listener_id,
            address_listener_id=address_listener_id,
            period_id=period.id,
            play_id=play_id,
            shown_at=now,
            cpm_minor=cpm_minor,
            currency=period.currency,
        )
        .returning(Impression.id)
    ).scalar_one_or_none()
    if new_id is None:  # the play has its impression already
        return None
    count_landed(session, period.id, listener_id, impressions=1, cpm_minor=cpm_minor)
    return session.get(Impression, new_id)


def impression_revenue_minor(session: Session, period_id: int) -> int:
    """The period's revenue from impressions × CPM: floor(sum of the CPMs / 1000), in SQL."""
    return impression_totals(session, period_id)[1]


def impression_totals(session: Session, period_id: int) -> tuple[int, int]:
    """The period's impressions and their revenue (as ``impression_revenue_minor``), read in
    one pass."""
    count, revenue = session.execute(
        select(
            func.count(), func.coalesce(func.sum(Impression.cpm_minor), 0) // CPM_IMPRESSIONS
        ).where(Impression.period_id == period_id)
    ).one()
    return int(count), int(revenue)


# Helpers -------------------------------------------------------------------------------------


def _examine(
    config: Mapping[str, Any], values: CampaignInput
) -> tuple[dict[str, list[str]], images.AdImage | None]:
    """The problems of ``values`` by field, and its image as it would be stored."""
    image: images.AdImage | None = None
    image_message: str | None = None
    if values.image is not None:
        try:
            image = _prepared_image(config, values.image)
        except InvalidAdImage as exc:
            image_message = exc.message
    problems: dict[str, str | None] = {
        "name": _name_problem(values.name),
        "link_url": link_problem(values.link_url),
        "weight": (
            None if 0 <= values.weight <= MAX_WEIGHT
            else f"The weight is a whole number from 0 to {MAX_WEIGHT:,}."
        ),
        "ends_on": (
            "The end date cannot be before the start date."
            if values.starts_on and values.ends_on and values.ends_on < values.starts_on
            else None
        ),
        "cpm": _cpm_problem(config, values),
        "image": image_message,
    }  # fmt: skip
    return {field: [message] for field, message in problems.items() if message}, image


def _checked(config: Mapping[str, Any], values: CampaignInput) -> images.AdImage | None:
    """The image of valid ``values`` as it will be stored. Raises InvalidCampaign."""
    problems, image = _examine(config, values)
    if problems:
        first = next(iter(problems.values()))[0]
        raise InvalidCampaign(first, problems)
    return image


def _prepared_image(config: Mapping[str, Any], data: bytes) -> images.AdImage:
    return images.prepare(
        data,
        max_bytes=int(config["AD_IMAGE_MAX_BYTES"]),
        max_pixels=int(config["AD_IMAGE_MAX_PIXELS"]),
    )


def _cpm_problem(config: Mapping[str, Any], values: CampaignInput) -> str | None:
    if values.is_house:
        if values.cpm_minor:
            return "A house ad earns nothing: leave its CPM at 0."
        return None
    if values.cpm_minor is None:
        return "Enter what the campaign pays per 1000 impressions (0 if it pays nothing)."
    return price_problem(
        values.cpm_minor, config["DEFAULT_CURRENCY"], max_price_minor(config), "The CPM"
    )


def _apply(campaign: Campaign, config: Mapping[str, Any], values: CampaignInput) -> None:
    campaign.name = values.name.strip()
    campaign.link_url = values.link_url
    campaign.weight = values.weight
    campaign.starts_on = values.starts_on
    campaign.ends_on = values.ends_on
    campaign.cpm_minor = 0 if values.is_house else (values.cpm_minor or 0)
    campaign.currency = config["DEFAULT_CURRENCY"]
    campaign.is_house = values.is_house
    campaign.active = values.active


def _store_image(session: Session, campaign: Campaign, image: images.AdImage) -> None:
    stored = vault.put_stream(
        session,
        io.BytesIO(image.data),
        kind=IMAGE_KIND,
        content_type=image.mimetype,
        size=len(image.data),
    )
    # No relationship tells the unit of work that the campaign's row depends on the image's:
    # write the image's row first.
    session.flush()
    campaign.image_object_id = stored.id
    campaign.image_mimetype = image.mimetype


def _name_problem(name: str) -> str | None:
    name = name.strip()
    if not name:
        return "Give the campaign a name; it is the image's text for screen readers too."
    if len(name) > CAMPAIGN_NAME_MAX_LENGTH:
        return f"A name is at most {CAMPAIGN_NAME_MAX_LENGTH} characters long."
    if any(unicodedata.category(c) == "Cc" or c in BIDI_CONTROLS for c in name):
        return (
            "A name is one line of plain text: it cannot hold control characters such as"
            " tabs, line breaks, NUL or text-direction marks."
        )
    return None


def _weighted_choice(campaigns: Sequence[Campaign], rng: random.Random) -> Campaign:
    return rng.choices(campaigns, weights=[campaign.weight for campaign in campaigns])[0]


def _live_play_id(
    session: Session,
    config: Mapping[str, Any],
    token: str | None,
    listener_id: int,
    now: datetime,
) -> int | None:
    """The id of the listener's play ``token`` if it still takes heartbeats, else None."""
    if not token or len(token) > PLAY_TOKEN_LENGTH:
        return None
    oldest = now - timedelta(seconds=int(config["PLAY_SESSION_TTL_SECONDS"]))
    return session.scalar(
        select(Play.id).where(
            Play.token == token, Play.listener_id == listener_id, Play.started_at >= oldest
        )
    )


def _shown_since(
    session: Session, whose: ColumnElement[bool], since: datetime, cap: int
) -> int:
    """How many of the impressions ``whose`` names were shown after ``since``, up to ``cap``:
    counting stops there, so a listener far over the cap costs no more than one at it."""
    recent = select(Impression.id).where(whose, Impression.shown_at > since).limit(cap).subquery()
    return int(session.scalar(select(func.count()).select_from(recent)) or 0)
