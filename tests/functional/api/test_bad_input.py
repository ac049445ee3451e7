"""Bad input never reaches a 500, and what goes wrong inside never reaches the user."""

import logging

import pytest
from sqlalchemy.exc import IntegrityError

from app.accounts.service import issue_token
from app.vault.errors import KekUnavailable, ObjectNotFound, StorageUnavailable
from tests.factories import ArtistFactory, ReleaseFactory, TrackFactory, UserFactory

INTEGER_MAX = 2**31 - 1  # an id column, on PostgreSQL
BIGINT_MAX = 2**63 - 1
ERROR_KEYS = {"error", "message", "details"}


@pytest.fixture
def bearer(session):
    _, secret = issue_token(session, ArtistFactory().owner, "tests")
    session.commit()
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize(
    "number", [INTEGER_MAX, INTEGER_MAX + 1, BIGINT_MAX, BIGINT_MAX + 1, 2**64, 99999999999999999999, 10**400]
)
@pytest.mark.parametrize(
    ("method", "template"),
    [("get", "/api/v1/releases/{}"), ("patch", "/api/v1/releases/{}"), ("delete", "/api/v1/releases/{}"),
     ("get", "/api/v1/releases/{}/tracks"), ("post", "/api/v1/releases/{}/tracks"),
     ("get", "/api/v1/tracks/{}"), ("delete", "/api/v1/tracks/{}"), ("delete", "/api/v1/tokens/{}"),
     ("get", "/api/v1/releases/{}/uploads"), ("post", "/api/v1/releases/{}/uploads")],
)  # fmt: skip
def test_ids_out_of_range_are_404_with_the_error_shape(client, bearer, method, template, number):
    response = getattr(client, method)(template.format(number), json={"title": "x"}, headers=bearer)
    assert response.status_code == 404
    assert set(response.json) == ERROR_KEYS


@pytest.mark.parametrize("number", [INTEGER_MAX + 1, BIGINT_MAX + 1])
@pytest.mark.parametrize("path", ["/releases/{}", "/studio/releases/{}/edit", "/tracks/{}/stream.mp3"])
def test_html_pages_take_out_of_range_ids_as_404(client, auth, path, number):
    auth.login(UserFactory().email)
    assert client.get(path.format(number)).status_code == 404


@pytest.mark.parametrize("digits", ["١٢", "1_0", "+1", " 1"])
def test_an_id_is_ascii_digits_only(client, digits):
    release = ReleaseFactory()
    assert client.get(f"/api/v1/releases/{release.id}").status_code == 200
    assert client.get(f"/api/v1/releases/{digits}").status_code == 404


@pytest.mark.parametrize(
    "query", ["limit=99999999999999999999", "offset=9223372036854775808", "offset=1_0", "limit=١", "limit= 5",
              "offset=" + "9" * 5000, "limit=abc"],
)  # fmt: skip
def test_bad_paging_numbers_are_400(client, query):
    response = client.get(f"/api/v1/artists?{query}")
    assert response.status_code == 400
    assert response.json["error"] == "invalid_body" and set(response.json) == ERROR_KEYS


def test_the_largest_offset_is_an_empty_page(client):
    ArtistFactory()
    assert client.get(f"/api/v1/artists?offset={BIGINT_MAX}").json == []
    assert len(client.get("/api/v1/artists?limit=99999999999&offset=-3").json) == 1


@pytest.mark.parametrize("body", ["[" * 100_000, "{\"a\":" * 100_000, "[" * 33 + "]" * 33, '{"a":' * 40 + "1" + "}" * 40])
def test_json_nested_too_deep_is_400_before_parsing(client, bearer, body):
    response = client.post("/api/v1/artists", data=body, headers={**bearer, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json["error"] == "invalid_body" and response.json["details"] == {"max_depth": 32}


def test_json_at_the_depth_limit_and_brackets_in_strings_are_parsed(client, bearer):
    nested = "[" * 31 + "]" * 31
    body = '{"slug": "deep", "name": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "bio": ' + f'"x", "links": {nested}' + "}"
    response = client.post("/api/v1/artists", data=body, headers={**bearer, "Content-Type": "application/json"})
    assert response.status_code in (201, 422), response.json
    assert response.json.get("error") != "invalid_body"


def test_every_response_carries_a_fresh_request_id(client):
    first, second = client.get("/api/v1/artists"), client.get("/")
    assert first.headers["X-Request-Id"] and second.headers["X-Request-Id"]
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]


def _failing_app(make_app, exc: Exception, path: str = "/api/v1/boom"):
    app = make_app()

    def boom() -> None:
        raise exc

    app.add_url_rule(path, "boom", boom)
    return app


def test_an_unexpected_error_shows_a_request_id_and_logs_the_detail(make_app, caplog):
    secret_path = "/srv/megabox/instance/vault/ab/cdef0123"
    app = _failing_app(make_app, OSError(28, "No space left on device", secret_path))
    with caplog.at_level(logging.ERROR, logger=app.logger.name):
        response = app.test_client().get("/api/v1/boom")
    request_id = response.headers["X-Request-Id"]
    assert response.status_code == 500 and response.json["error"] == "internal_error"
    assert response.json["details"] == {"request_id": request_id}
    body = response.get_data(as_text=True)
    assert secret_path not in body and "No space left" not in body
    logged = caplog.text
    assert request_id in logged and secret_path in logged


def test_an_unexpected_error_on_a_page_shows_the_request_id(make_app):
    app = _failing_app(make_app, OSError(2, "No such file", "/srv/secret/kek"), path="/boom")
    response = app.test_client().get("/boom")
    page = response.get_data(as_text=True)
    assert response.status_code == 500 and response.headers["X-Request-Id"] in page
    assert "/srv/secret/kek" not in page


@pytest.mark.parametrize(
    ("exc", "status", "secret"),
    [(StorageUnavailable("Reading /var/lib/megabox/vault/ab/cd failed: Permission denied."), 503,
      "/var/lib/megabox/vault/ab/cd"),
     (ObjectNotFound("No stored object has the key masters/2f/9a0b."), 404, "masters/2f/9a0b"),
     (KekUnavailable("KEK version 3 is not configured in /etc/megabox/kek-v2.key."), 500, "kek-v2.key")],
)  # fmt: skip
def test_storage_errors_keep_keys_and_paths_in_the_log(make_app, caplog, exc, status, secret):
    app = _failing_app(make_app, exc)
    with caplog.at_level(logging.ERROR, logger=app.logger.name):
        response = app.test_client().get("/api/v1/boom")
    assert response.status_code == status
    assert secret not in response.get_data(as_text=True)
    assert response.json["details"] == {"request_id": response.headers["X-Request-Id"]}
    assert secret in caplog.text and response.headers["X-Request-Id"] in caplog.text


def test_an_integrity_error_escaping_a_view_is_a_409_conflict(make_app, caplog):
    app = _failing_app(make_app, IntegrityError("INSERT ...", {}, Exception("duplicate key value")))
    with caplog.at_level(logging.WARNING, logger=app.logger.name):
        response = app.test_client().get("/api/v1/boom")
    assert response.status_code == 409 and response.json["error"] == "conflict"
    assert "duplicate key" not in response.get_data(as_text=True)
    assert "duplicate key" in caplog.text


def test_a_wrong_method_keeps_its_allow_header(client):
    response = client.put("/api/v1/artists")
    assert response.status_code == 405 and set(response.json) == ERROR_KEYS
    assert "GET" in response.headers["Allow"]


def test_a_track_id_and_an_existing_track_still_resolve(client):
    track = TrackFactory()
    assert client.get(f"/api/v1/tracks/{track.id}").status_code == 200
    assert client.get(f"/api/v1/tracks/{UserFactory().id + 10**6}").status_code == 404


@pytest.mark.parametrize(
    ("path", "body"),
    [("/api/v1/artists", '{"slug": "nul", "name": "a\\u0000b"}'), ("/api/v1/tokens", '{"name": "\\u0000"}'),
     ("/api/v1/artists", '{"slug": "nul", "name": "x", "a\\u0000": 1}'),
     ("/api/v1/artists", '{"slug": "nul", "name": "\\\\\\u0000"}')],
)  # fmt: skip
def test_json_text_holding_nul_is_400_on_every_database(client, bearer, path, body):
    response = client.post(path, data=body, headers={**bearer, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json["error"] == "invalid_body"
    assert "NUL" in response.json["message"]


def test_an_escaped_backslash_before_u0000_is_not_a_nul(client, bearer):
    body = '{"name": "C:\\\\u0000 band", "slug": "escaped"}'
    response = client.post("/api/v1/artists", data=body, headers={**bearer, "Content-Type": "application/json"})
    assert response.status_code == 201 and response.json["name"] == "C:\\u0000 band"


def test_a_value_the_database_refuses_escaping_a_view_is_422(make_app, caplog):
    from sqlalchemy.exc import DataError

    app = _failing_app(make_app, DataError("UPDATE ...", {}, Exception("integer out of range")))
    with caplog.at_level(logging.WARNING, logger=app.logger.name):
        response = app.test_client().get("/api/v1/boom")
    assert response.status_code == 422 and response.json["error"] == "invalid_input"
    assert "integer out of range" not in response.get_data(as_text=True)
    assert "integer out of range" in caplog.text and response.headers["X-Request-Id"] in caplog.text


@pytest.mark.parametrize(
    "path", ["/api/v1/artists/%00", "/api/v1/artists/a%09b/releases", "/api/v1/uploads/%00", "/api/v1/uploads/x%7F",
             "/artists/%00", "/studio/artists/%1B/edit"],
)  # fmt: skip
def test_text_url_segments_with_control_characters_are_404(client, bearer, path):
    response = client.get(path, headers={**bearer, "Tus-Resumable": "1.0.0"})
    assert response.status_code == 404


def test_text_url_segments_still_take_any_printable_text(client):
    ArtistFactory(slug="band-é")
    assert client.get("/api/v1/artists/band-%C3%A9").status_code == 200
