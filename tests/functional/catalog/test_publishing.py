"""A release is published only once listeners can play one of its tracks."""

import re

import pytest
from sqlalchemy import select

from app.catalog import service
from app.catalog.errors import NothingToPlay
from app.catalog.models import Release, TrackStatus
from tests.factories import ReleaseFactory, TrackFactory

NO_AUDIO = "Add a track with audio before publishing."
STILL_PROCESSING = "Wait until a track's audio is ready before publishing."
# The published checkbox's field, up to the end of its block (it has no id of its own).
PUBLISHED_FIELD = re.compile(
    r'<div class="field field-check">\s*<label><input type="checkbox" name="published".*?</div>', re.S
)


def draft(*statuses: TrackStatus) -> Release:
    release = ReleaseFactory(published=False, published_at=None, title="Low Tide")
    for status in statuses:
        TrackFactory(release=release, status=status)
    return release


# The rule, called directly ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "message"),
    [((), NO_AUDIO), ((TrackStatus.DRAFT,), NO_AUDIO), ((TrackStatus.FAILED, TrackStatus.DRAFT), NO_AUDIO),
     ((TrackStatus.PROCESSING,), STILL_PROCESSING), ((TrackStatus.FAILED, TrackStatus.PROCESSING), STILL_PROCESSING)],
)  # fmt: skip
def test_publishing_without_a_ready_track_is_refused_and_changes_nothing(session, statuses, message):
    release = draft(*statuses)
    with pytest.raises(NothingToPlay) as refused:
        service.update_release(release.artist.owner, release, {"published": True, "title": "Renamed"})
    assert refused.value.status == 422 and refused.value.code == "nothing_to_play"
    assert refused.value.message == message and refused.value.details == {"published": [message]}
    assert (release.published, release.published_at, release.title) == (False, None, "Low Tide")


def test_one_ready_track_among_others_is_enough_to_publish(session):
    release = draft(TrackStatus.FAILED, TrackStatus.READY, TrackStatus.PROCESSING)
    service.update_release(release.artist.owner, release, {"published": True})
    session.commit()
    session.expire_all()
    published = session.get(Release, release.id)
    assert published.published and published.published_at is not None


def test_a_published_release_without_a_ready_track_can_be_edited_and_unpublished(session):
    release = ReleaseFactory(title="Live Already")
    TrackFactory(release=release, status=TrackStatus.FAILED)
    owner = release.artist.owner
    service.update_release(owner, release, {"published": True, "title": "Still Live"})
    assert release.published and release.title == "Still Live"
    service.update_release(owner, release, {"published": False})
    session.commit()
    session.expire_all()
    assert session.get(Release, release.id).published is False


def test_a_draft_without_a_ready_track_can_still_be_edited(session):
    release = draft(TrackStatus.DRAFT)
    service.update_release(release.artist.owner, release, {"published": False, "title": "Renamed"})
    assert (release.title, release.published) == ("Renamed", False)


# The studio's form ------------------------------------------------------------------------


def _form(**change: str) -> dict[str, str]:
    return {"title": "Low Tide", "pricing_mode": "fixed", "price": "7", "currency": "USD", **change}


def test_the_form_explains_a_refused_publish_under_the_checkbox_and_keeps_what_was_typed(client, auth, session):
    release = draft(TrackStatus.DRAFT)
    auth.login(release.artist.owner.email)
    typed = _form(title="High Tide", price="9.50", description="Recorded by the sea.", published="on")
    response = client.post(f"/studio/releases/{release.id}/edit", data=typed)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    checkbox = PUBLISHED_FIELD.search(page).group(0)
    assert NO_AUDIO in checkbox and "checked" in checkbox
    assert 'value="High Tide"' in page and 'value="9.50"' in page and "Recorded by the sea." in page
    session.expire_all()
    saved = session.get(Release, release.id)
    assert (saved.published, saved.title, saved.price_minor, saved.description) == (False, "Low Tide", 700, "")


def test_the_form_publishes_a_release_with_a_ready_track(client, auth, session):
    release = draft(TrackStatus.READY)
    auth.login(release.artist.owner.email)
    response = client.post(f"/studio/releases/{release.id}/edit", data=_form(published="on"))
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Release, release.id).published
    assert client.get(f"/releases/{release.id}").status_code == 200


def test_the_form_unpublishes_a_release_without_a_ready_track(client, auth, session):
    release = ReleaseFactory(title="Low Tide")
    TrackFactory(release=release, status=TrackStatus.PROCESSING)
    auth.login(release.artist.owner.email)
    assert client.post(f"/studio/releases/{release.id}/edit", data=_form()).status_code == 302
    session.expire_all()
    assert session.scalar(select(Release.published).where(Release.id == release.id)) is False
