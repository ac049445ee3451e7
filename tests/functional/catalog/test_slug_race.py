"""Two requests racing for one artist address: the database decides, the loser gets 409."""

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.accounts.service import issue_token
from app.catalog import service
from app.catalog.errors import SlugTaken
from app.catalog.models import Artist
from app.extensions import db
from tests.factories import UserFactory
from tests.functional.catalog.forms import field_errors


@pytest.fixture
def rival_takes_slug() -> Iterator[Callable[[str], None]]:
    """Arrange for another connection to insert and commit ``slug`` as our artist is flushed.

    That is after the service's "is it taken?" check has passed, so only the unique key can
    stop the second insert: the race two simultaneous requests run.
    """
    armed: list[Callable[[], None]] = []

    def take(slug: str) -> None:
        rival = UserFactory()

        def insert() -> None:
            with db.engine.begin() as other:
                other.execute(Artist.__table__.insert().values(owner_id=rival.id, slug=slug, name="Rival"))

        armed.append(insert)

    def before_flush(session: Session, flush_context: object, instances: object) -> None:
        # Only the flush that inserts our artist: earlier autoflushes (say, a token's
        # last-used time) run before the check, which would then see the rival's row.
        if any(isinstance(pending, Artist) for pending in session.new):
            while armed:
                armed.pop()()

    event.listen(Session, "before_flush", before_flush)
    yield take
    event.remove(Session, "before_flush", before_flush)


def test_service_turns_the_lost_race_into_slug_taken(session, rival_takes_slug):
    owner = UserFactory()
    rival_takes_slug("the-band")
    with pytest.raises(SlugTaken) as refused:
        service.create_artist(session, owner, {"slug": "the-band", "name": "Us"})
    assert refused.value.status == 409 and refused.value.details == {"slug": ["That address is taken."]}
    session.rollback()
    names = session.scalars(select(Artist.name).where(Artist.slug == "the-band")).all()
    assert names == ["Rival"]


def test_api_answers_a_lost_race_with_409_conflict(client, session, rival_takes_slug):
    owner = UserFactory()
    _, secret = issue_token(session, owner, "tests")
    session.commit()
    rival_takes_slug("the-band")
    response = client.post(
        "/api/v1/artists",
        json={"slug": "the-band", "name": "Us"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 409
    assert response.json["error"] == "slug_taken"
    assert response.json["details"] == {"slug": ["That address is taken."]}
    session.rollback()  # the request shares the test's session; a real request's ends with it
    assert session.scalar(select(func.count()).select_from(Artist)) == 1


def test_the_form_shows_a_lost_race_under_the_address_field(client, auth, session, rival_takes_slug):
    owner = UserFactory()
    auth.login(owner.email)
    rival_takes_slug("the-band")
    response = client.post("/studio/artists/new", data={"slug": "the-band", "name": "Us"})
    assert response.status_code == 422
    assert field_errors(response.get_data(as_text=True), "slug") == ["That address is taken."]
    assert session.scalar(select(func.count()).select_from(Artist)) == 1
