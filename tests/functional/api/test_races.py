"""Writes that race to a unique key: one wins, the others get 409, nobody gets a 500."""

import threading

import pytest
from sqlalchemy import func, select

from app.accounts.service import issue_token
from app.catalog.models import Artist
from app.extensions import db
from tests.factories import UserFactory


@pytest.mark.postgres
def test_parallel_creates_of_one_artist_slug_make_one_artist(app, session):
    threads_count = 6
    headers = []
    for _ in range(threads_count):
        _, secret = issue_token(session, UserFactory(), "race")
        headers.append({"Authorization": f"Bearer {secret}"})
    session.commit()
    barrier = threading.Barrier(threads_count)
    responses: list[tuple[int, dict]] = []

    def create(n: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post("/api/v1/artists", json={"slug": "same-slug", "name": f"N{n}"}, headers=headers[n])
        responses.append((response.status_code, response.json))
        with app.app_context():
            db.session.remove()

    threads = [threading.Thread(target=create, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in responses)
    assert statuses == [201] + [409] * (threads_count - 1), responses
    assert all(set(body) == {"error", "message", "details"} for status, body in responses if status == 409)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Artist)) == 1
