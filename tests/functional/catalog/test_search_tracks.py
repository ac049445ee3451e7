"""Search finds tracks of published releases, and reads % and _ as themselves."""

from __future__ import annotations

import re

from app.catalog import service
from tests.factories import ReleaseFactory, TrackFactory

LIMIT = 20


def tracks_section(page: str) -> str:
    """The search page's Tracks section, or "" when it has none."""
    found = re.search(r'<h2 class="section-title">Tracks</h2>(.*?)</ol>', page, re.S)
    return found.group(1) if found else ""


def test_a_track_is_found_by_title_with_its_release_and_artist(client):
    release = ReleaseFactory(title="Coastlines", artist__name="Ebb Collective")
    track = TrackFactory(release=release, title="Undertow Song")
    page = client.get("/search?q=UNDERTOW").get_data(as_text=True)
    section = tracks_section(page)
    assert "Undertow Song" in section and "Coastlines" in section and "Ebb Collective" in section
    assert f'href="/releases/{release.id}"' in section
    assert track.title not in page.split("Tracks</h2>")[0]  # not listed as a release or artist


def test_tracks_of_unpublished_releases_do_not_leak(client, auth, session):
    draft = ReleaseFactory(title="Secret Sessions", published=False, published_at=None)
    TrackFactory(release=draft, title="Hidden Undertow")
    TrackFactory(release=ReleaseFactory(title="Out Now"), title="Public Undertow")
    page = client.get("/search?q=undertow").get_data(as_text=True)
    assert "Public Undertow" in tracks_section(page)
    assert "Hidden Undertow" not in page and "Secret Sessions" not in page
    # Not even for the artist: search is the public catalogue; drafts live in the Studio.
    auth.login(draft.artist.owner.email)
    assert "Hidden Undertow" not in client.get("/search?q=undertow").get_data(as_text=True)
    found = service.search(session, "hidden", LIMIT)
    assert found.tracks == [] and not found


def test_percent_and_underscore_match_only_themselves(client, session):
    release = ReleaseFactory(title="Numbers")
    TrackFactory(release=release, title="100% Proof")
    TrackFactory(release=release, title="1000 Proof")
    TrackFactory(release=release, title="snake_case")
    TrackFactory(release=release, title="snakeXcase")
    assert [t.title for t in service.search(session, "100%", LIMIT).tracks] == ["100% Proof"]
    assert [t.title for t in service.search(session, "e_c", LIMIT).tracks] == ["snake_case"]
    assert service.search(session, "%", LIMIT).tracks[0].title == "100% Proof"
    assert service.search(session, "_", LIMIT).tracks[0].title == "snake_case"
    assert len(service.search(session, "_", LIMIT).tracks) == 1
    page = client.get("/search?q=%25%25").get_data(as_text=True)
    assert "Nothing matches" in page


def test_track_results_are_limited_and_ordered_by_release_then_position(session):
    older = ReleaseFactory(title="Older")
    newer = ReleaseFactory(title="Newer")
    for position in (2, 1):
        TrackFactory(release=older, title=f"Tide {position}", position=position)
        TrackFactory(release=newer, title=f"Tide {position} (live)", position=position)
    found = service.search(session, "tide", 3).tracks
    assert [(t.release.title, t.position) for t in found] == [("Newer", 1), ("Newer", 2), ("Older", 1)]


def test_an_empty_query_finds_nothing(client, session):
    TrackFactory(title="Anything")
    assert not service.search(session, "   ", LIMIT)
    assert "Type the name of an artist, a release or a track" in client.get("/search?q=").get_data(as_text=True)
    assert "Type the name of an artist, a release or a track" in client.get("/search?q=+++").get_data(as_text=True)


def test_letters_beyond_ascii_match_whatever_their_case(session):
    release = ReleaseFactory(title="Élan Vital", artist__name="Café Ünïcode")
    TrackFactory(release=release, title="Ölfjord Straße")
    for query in ("ÖLFJORD", "ölfjord", "straße"):
        assert [t.title for t in service.search(session, query, LIMIT).tracks] == ["Ölfjord Straße"]
    assert [r.title for r in service.search(session, "élan", LIMIT).releases] == ["Élan Vital"]
    assert [a.name for a in service.search(session, "ÜNÏCODE", LIMIT).artists] == ["Café Ünïcode"]


def test_spaces_typed_between_words_count_as_one(session):
    TrackFactory(title="Static Bloom")
    assert [t.title for t in service.search(session, "  static    bloom ", LIMIT).tracks] == ["Static Bloom"]
