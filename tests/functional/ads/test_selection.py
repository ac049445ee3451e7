"""Which ad the slot shows: paid campaigns by weight, then house ones, then the built-in ad."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta
from typing import Any

from app.ads import service
from app.ads.models import Campaign
from app.timestamps import utcnow

TODAY = date(2026, 12, 3)
DRAWS = 4000


def campaign(session: Any, name: str, weight: int, **fields: Any) -> Campaign:
    made = Campaign(
        name=name, link_url=f"https://{name}.example/", weight=weight, currency="USD",
        cpm_minor=fields.pop("cpm_minor", 1000), **fields,
    )  # fmt: skip
    session.add(made)
    session.commit()
    return made


def shown(session: Any, draws: int = DRAWS, today: date = TODAY) -> Counter[str]:
    rng = random.Random(20261203)
    return Counter(service.choose_ad(session, today=today, rng=rng).name for _ in range(draws))


def test_paid_campaigns_are_chosen_in_proportion_to_their_weight(session):
    campaign(session, "one", 1)
    campaign(session, "three", 3)
    campaign(session, "zero", 0)
    campaign(session, "house", 50, is_house=True)
    counts = shown(session)
    assert set(counts) == {"one", "three"}  # never weight 0, never a house ad beside paid ones
    # Expected 1000 and 3000; the binomial standard deviation is about 27.
    assert abs(counts["one"] - DRAWS / 4) < 5 * 27
    assert counts["one"] + counts["three"] == DRAWS


def test_only_active_campaigns_running_today_are_shown(session):
    campaign(session, "paused", 5, active=False)
    campaign(session, "ended", 5, ends_on=TODAY - timedelta(days=1))
    campaign(session, "scheduled", 5, starts_on=TODAY + timedelta(days=1))
    campaign(session, "today-only", 1, starts_on=TODAY, ends_on=TODAY)
    campaign(session, "open-ended", 1, starts_on=TODAY - timedelta(days=30))
    assert set(shown(session, draws=400)) == {"today-only", "open-ended"}


def test_house_campaigns_fill_in_by_weight_when_no_paid_one_runs(session):
    campaign(session, "paid-but-over", 9, ends_on=TODAY - timedelta(days=1))
    campaign(session, "house-a", 1, is_house=True)
    campaign(session, "house-b", 1, is_house=True)
    campaign(session, "house-off", 0, is_house=True)
    counts = shown(session, draws=1000)
    assert set(counts) == {"house-a", "house-b"}
    assert abs(counts["house-a"] - 500) < 5 * 16


def test_a_house_ad_earns_nothing_whatever_its_row_says(session):
    campaign(session, "house", 1, is_house=True, cpm_minor=5000)
    ad = service.choose_ad(session, today=TODAY)
    assert (ad.name, ad.is_house, ad.cpm_minor) == ("house", True, 0)


def test_the_built_in_ad_shows_when_nothing_runs(session):
    assert service.choose_ad(session, today=TODAY) == service.BUILT_IN_AD
    campaign(session, "zero", 0)
    campaign(session, "paused", 3, active=False)
    ad = service.choose_ad(session, today=TODAY)
    assert ad == service.BUILT_IN_AD
    assert (ad.campaign_id, ad.link_url, ad.image_object_id, ad.is_house) == (None, "/", None, True)
    assert ad.name.startswith("Megabox")


def test_without_a_seed_the_choice_still_respects_the_rules(session):
    campaign(session, "only", 2)
    campaign(session, "never", 0)
    names = {service.choose_ad(session, today=utcnow().date()).name for _ in range(50)}
    assert names == {"only"}
