"""Ad campaigns, the ad the player's slot shows, impressions under the frequency cap, and a
period's ad revenue.

Choosing an ad (``choose_ad``): among the active campaigns running on the UTC day (``starts_on``
and ``ends_on`` are inclusive; either may be open), paid campaigns come first, one picked at
random in proportion to its ``weight``. Only when no paid campaign runs are house campaigns
chosen, the same way; only when no campaign runs at all is the built-in house ad shown
(``BUILT_IN_AD``, no campaign row). A campaign of weight 0 is never shown.

Recording an impression (``record_impression``): a listener's impressions are counted over
the last ``AD_FREQUENCY_WINDOW_SECONDS`` (an impression shown exactly that long ago no longer
counts), and one more is recorded only while there are fewer than ``AD_FREQUENCY_CAP``. The
count and the insert run under a lock of the listener's row, so parallel requests of one
listener queue there and cannot pass the cap together. The impression snapshots the
campaign's CPM and lands in the period of its time (``app.pools.periods.landing_period``).
Campaigns are priced in ``DEFAULT_CURRENCY``; should a campaign's currency differ from its
period's (the setting changed since), the impression is recorded with a CPM of 0 rather than
mixing currencies. House ads always have a CPM of 0: a CPM typed on one is refused.
"""

from __future__ import annotations

import io
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.ads.errors import CampaignNotFound, InvalidCampaign
from app.ads.models import CAMPAIGN_NAME_MAX_LENGTH, LINK_MAX_LENGTH, Campaign, Impression
from app.catalog.service import max_price_minor, price_problem
from app.database import lock_row
from app.ledger.money import Money
from app.plays.models import Listener, Play
from app.pools.periods import landing_period
from app.timestamps import utcnow
from app.vault import service as vault
from media_worker.covers import image_mime

# A bound that keeps a weight far inside a 32-bit column; relative weights are what matter.
MAX_WEIGHT = 1_000_000
CPM_IMPRESSIONS = 1000  # a CPM is the price of this many impressions
IMAGE_KIND = "ad_image"
LINK_SCHEMES = ("http", "https")
# The formats an ad image may be, by the bytes it starts with (checked again by Pillow).
IMAGE_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),  # after "RIFF" and the chunk size
)
IMAGE_FORMATS_FOR_PEOPLE = "PNG, JPEG, WebP or GIF"


@dataclass(frozen=True)
class CampaignInput:
    """What the admin sets on a campaign. ``image`` None keeps the current image."""

    name: str
    link_url: str
    weight: int = 1
    starts_on: date | None = None
    ends_on: date | None = None
    cpm_minor: int = 0
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


def sniff_image(data: bytes) -> str | None:
    """The MIME type of an ad image by its first bytes, or None if it is none we take."""
    for signature, offset, mimetype in IMAGE_SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            if mimetype == "image/webp" and not data.startswith(b"RIFF"):
                continue
            return mimetype
    return None


def image_problem(config: Mapping[str, Any], data: bytes) -> str | None:
    """Why ``data`` cannot be an ad image, for people, or None."""
    limit = int(config["AD_IMAGE_MAX_BYTES"])
    if len(data) > limit:
        return f"The image is larger than {_bytes_for_people(limit)}. Choose a smaller file."
    if not data:
        return "The chosen file is empty."
    sniffed = sniff_image(data)
    if sniffed is None:
        return f"That file is not an image Megabox shows: use {IMAGE_FORMATS_FOR_PEOPLE}."
    if image_mime(data) != sniffed:
        return "That image is damaged and cannot be read. Save it again and choose it anew."
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
        "cpm": (
            "A house ad earns nothing: leave its CPM at 0."
            if values.is_house and values.cpm_minor != 0
            else price_problem(
                values.cpm_minor, config["DEFAULT_CURRENCY"], max_price_minor(config), "The CPM"
            )
        ),
        "image": image_problem(config, values.image) if values.image is not None else None,
    }  # fmt: skip
    return {field: [message] for field, message in problems.items() if message}


def create_campaign(
    session: Session, config: Mapping[str, Any], values: CampaignInput
) -> Campaign:
    """A new campaign in ``DEFAULT_CURRENCY``, its image stored in the vault.

    Raises InvalidCampaign naming each field that breaks a rule.
    """
    _check(config, values)
    campaign = Campaign(currency=config["DEFAULT_CURRENCY"], created_at=utcnow())
    _apply(campaign, config, values)
    if values.image is not None:
        _store_image(session, campaign, values.image)
    session.add(campaign)
    return campaign


def update_campaign(
    session: Session, config: Mapping[str, Any], campaign: Campaign, values: CampaignInput
) -> Campaign:
    """Change a campaign; a new image replaces the old, which is deleted once this commits.

    The CPM is read in ``DEFAULT_CURRENCY``, which the campaign takes. Raises InvalidCampaign.
    """
    _check(config, values)
    _apply(campaign, config, values)
    replaced = campaign.image_object_id
    if values.image is not None:
        _store_image(session, campaign, values.image)
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
    """``paused``, ``scheduled``, ``ended`` or ``running`` on ``today`` (UTC)."""
    if not campaign.active:
        return "paused"
    if campaign.starts_on is not None and today < campaign.starts_on:
        return "scheduled"
    if campaign.ends_on is not None and today > campaign.ends_on:
        return "ended"
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
    play_token: str | None = None,
    now: datetime | None = None,
) -> Impression | None:
    """Record that ``ad`` was shown to the listener, or None when the frequency cap is reached.

    ``play_token`` links the impression to one of the listener's plays; a token that names
    no play of theirs is ignored.
    """
    now = now or utcnow()
    lock_row(session, Listener.__table__, listener_id)
    since = now - timedelta(seconds=int(config["AD_FREQUENCY_WINDOW_SECONDS"]))
    recent = session.scalar(
        select(func.count())
        .select_from(Impression)
        .where(Impression.listener_id == listener_id, Impression.shown_at > since)
    )
    if recent >= int(config["AD_FREQUENCY_CAP"]):
        return None
    period = landing_period(session, config, now)
    impression = Impression(
        campaign_id=ad.campaign_id,
        listener_id=listener_id,
        period_id=period.id,
        play_id=_play_id(session, play_token, listener_id),
        shown_at=now,
        cpm_minor=ad.cpm_minor if ad.currency == period.currency else 0,
        currency=period.currency,
    )
    session.add(impression)
    return impression


def impression_revenue_minor(session: Session, period_id: int) -> int:
    """The period's revenue from impressions × CPM: floor(sum of the CPMs / 1000), in SQL."""
    total = select(
        func.coalesce(func.sum(Impression.cpm_minor), 0) // CPM_IMPRESSIONS
    ).where(Impression.period_id == period_id)
    return int(session.scalar(total) or 0)


# Helpers -------------------------------------------------------------------------------------


def _check(config: Mapping[str, Any], values: CampaignInput) -> None:
    problems = campaign_problems(config, values)
    if problems:
        first = next(iter(problems.values()))[0]
        raise InvalidCampaign(first, problems)


def _apply(campaign: Campaign, config: Mapping[str, Any], values: CampaignInput) -> None:
    campaign.name = values.name.strip()
    campaign.link_url = values.link_url
    campaign.weight = values.weight
    campaign.starts_on = values.starts_on
    campaign.ends_on = values.ends_on
    campaign.cpm_minor = 0 if values.is_house else values.cpm_minor
    campaign.currency = config["DEFAULT_CURRENCY"]
    campaign.is_house = values.is_house
    campaign.active = values.active


def _store_image(session: Session, campaign: Campaign, data: bytes) -> None:
    mimetype = sniff_image(data)
    stored = vault.put_stream(
        session, io.BytesIO(data), kind=IMAGE_KIND, content_type=mimetype, size=len(data)
    )
    # No relationship tells the unit of work that the campaign's row depends on the image's:
    # write the image's row first.
    session.flush()
    campaign.image_object_id = stored.id
    campaign.image_mimetype = mimetype


def _name_problem(name: str) -> str | None:
    name = name.strip()
    if not name:
        return "Give the campaign a name; it is the image's text for screen readers too."
    if len(name) > CAMPAIGN_NAME_MAX_LENGTH:
        return f"A name is at most {CAMPAIGN_NAME_MAX_LENGTH} characters long."
    return None


def _weighted_choice(campaigns: Sequence[Campaign], rng: random.Random) -> Campaign:
    return rng.choices(campaigns, weights=[campaign.weight for campaign in campaigns])[0]


def _play_id(session: Session, token: str | None, listener_id: int) -> int | None:
    if not token:
        return None
    return session.scalar(
        select(Play.id).where(Play.token == token, Play.listener_id == listener_id)
    )


def _bytes_for_people(size: int) -> str:
    for unit, scale in (("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} bytes"
