"""Sign-up and sign-in rules: usable passwords, duplicate e-mails, safe redirects, rate limits."""

import threading

import pytest
from sqlalchemy import func, select

from app.accounts import service
from app.accounts.errors import EmailTaken, UnusablePassword
from app.accounts.models import User
from app.extensions import db
from tests.conftest import TEST_PASSWORD
from tests.factories import UserFactory

UNUSABLE_PASSWORDS = [" " * 12, "\t\n\r\x0b\x0c" * 3, "\x00" * 12, "\u200b" * 10, "\u3000 \u00a0" * 4, "\x7f\x1b" * 6]


@pytest.mark.parametrize("password", UNUSABLE_PASSWORDS)
def test_signup_refuses_a_password_of_whitespace_or_control_characters(client, session, password):
    response = client.post("/signup", data={"email": "blank@example.test", "display_name": "B", "password": password})
    assert response.status_code == 422
    assert "not only spaces or control characters" in response.get_data(as_text=True)
    assert session.scalar(select(User)) is None


@pytest.mark.parametrize("password", UNUSABLE_PASSWORDS)
def test_a_password_change_refuses_whitespace_or_control_characters(client, auth, password):
    user = UserFactory()
    auth.login(user.email)
    response = client.post("/account/password", data={"current_password": TEST_PASSWORD, "new_password": password})
    assert response.status_code == 422
    assert "not only spaces or control characters" in response.get_data(as_text=True)
    assert client.get("/account").status_code == 200


@pytest.mark.parametrize("password", UNUSABLE_PASSWORDS)
def test_the_service_enforces_the_password_rule_itself(session, password):
    with pytest.raises(UnusablePassword):
        service.create_user(session, "svc@example.test", password, "Svc")
    with pytest.raises(UnusablePassword):
        service.change_password(session, UserFactory(), TEST_PASSWORD, password)


def test_a_password_with_spaces_and_letters_is_fine(session):
    assert service.create_user(session, "ok@example.test", "  correct horse  ", "Ok").id


def test_a_signup_that_loses_the_race_to_the_unique_key_is_a_form_error(client, session, monkeypatch):
    UserFactory(email="race@example.test")
    # As if the other sign-up committed between this one's check and its insert.
    monkeypatch.setattr(service, "find_user_by_email", lambda session, email: None)
    response = client.post("/signup", data={"email": "race@example.test", "display_name": "R", "password": "long-enough-pw"})
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(User)) == 1


def test_create_user_turns_the_unique_key_into_email_taken_and_keeps_the_transaction(session, monkeypatch):
    UserFactory(email="race@example.test")
    monkeypatch.setattr(service, "find_user_by_email", lambda session, email: None)
    kept = service.create_user(session, "kept@example.test", "long-enough-pw", "Kept")
    with pytest.raises(EmailTaken):
        service.create_user(session, "Race@Example.test", "long-enough-pw", "R")
    session.commit()
    assert session.scalar(select(User).where(User.email == "kept@example.test")) is kept


@pytest.mark.postgres
def test_parallel_signups_with_one_email_make_one_account(app, session):
    threads_count = 6
    barrier = threading.Barrier(threads_count)
    statuses: list[int] = []

    def sign_up(n: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            "/signup", data={"email": "Same@Example.test", "display_name": f"N{n}", "password": "long-enough-pw"}
        )
        statuses.append(response.status_code)
        with app.app_context():
            db.session.remove()

    threads = [threading.Thread(target=sign_up, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [302] + [422] * (threads_count - 1)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(User)) == 1


@pytest.mark.parametrize(
    "target",
    ["/%09/evil.test", "//evil.test", "/\\evil.test", "https://evil.test", "\t//evil.test", "/%2F%2Fevil.test",
     "/%252F%252Fevil.test", "/%5Cevil.test", "/%0a/evil.test", "http:/evil.test", "///evil.test", "javascript:alert(1)"],
)  # fmt: skip
def test_login_refuses_to_redirect_off_site(client, target):
    user = UserFactory()
    response = client.post(f"/login?next={target}", data={"email": user.email, "password": TEST_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/\t/evil.test", "//evil.test", "/\\evil.test", "/%2F%2Fevil.test"])
def test_login_refuses_decoded_off_site_targets(client, target):
    user = UserFactory()
    response = client.post("/login", query_string={"next": target},
                           data={"email": user.email, "password": TEST_PASSWORD})  # fmt: skip
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/studio", "/releases/3?tab=tracks", "/search?q=a%20b"])
def test_login_follows_local_paths(client, target):
    user = UserFactory()
    response = client.post("/login", query_string={"next": target}, data={"email": user.email, "password": TEST_PASSWORD})
    assert response.headers["Location"] == target


def test_every_429_carries_retry_after(make_app):
    app = make_app(LOGIN_RATE_LIMIT="2 per minute")
    client = app.test_client()
    responses = [client.post("/login", data={"email": "a@example.test", "password": "x"}) for _ in range(3)]
    limited = responses[-1]
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    api_style = client.post("/login", data={"email": "a@example.test", "password": "x"}, headers={"Accept": "application/json"})
    assert api_style.status_code == 429 and api_style.json["error"] == "too_many_requests"
    assert int(api_style.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(("bps", "shown"), [(9000, "90%"), (8750, "87.5%"), (10000, "100%")])
def test_the_footer_shows_the_configured_artist_share(make_app, bps, shown):
    page = make_app(ARTIST_SHARE_BPS=bps).test_client().get("/login").get_data(as_text=True)
    assert f"{shown} of every sale goes to the artist" in page


@pytest.mark.parametrize(("field", "value"), [("display_name", "Nul\x00Name"), ("display_name", "Bell\x07")])
def test_signup_refuses_control_characters_in_names(client, session, field, value):
    data = {"email": "ctl@example.test", "display_name": "Fine", "password": "long-enough-pw", field: value}
    response = client.post("/signup", data=data)
    assert response.status_code == 422
    assert session.scalar(select(User)) is None


def test_login_with_a_nul_in_the_email_is_a_plain_refusal(client):
    response = client.post("/login", data={"email": "a\x00@example.test", "password": "whatever-it-is"})
    assert response.status_code == 401
