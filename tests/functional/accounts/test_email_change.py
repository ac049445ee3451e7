"""Changing the e-mail address: on the account page and through PATCH /api/v1/me."""

import threading
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from app.accounts import service
from app.accounts.errors import EmailTaken, WrongPassword
from app.accounts.models import User
from app.extensions import db
from tests.conftest import TEST_PASSWORD
from tests.factories import UserFactory


def _sign_in(app, email):
    client = app.test_client()
    assert client.post("/login", data={"email": email, "password": TEST_PASSWORD}).status_code == 302
    return client


def _email_of(session, user_id):
    session.expire_all()
    return session.scalar(select(User.email).where(User.id == user_id))


def test_a_new_address_is_stored_normalised_and_shown(app, session):
    user = UserFactory(email="old@example.test")
    client = _sign_in(app, user.email)
    response = client.post("/account/email", data={"email": "New.Me@Example.TEST", "password": TEST_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    page = client.get("/account").get_data(as_text=True)
    assert "Your e-mail address is now new.me@example.test." in page
    assert "You sign in with <strong>new.me@example.test</strong>" in page
    assert _email_of(session, user.id) == "new.me@example.test"
    assert _sign_in(app, "NEW.ME@example.test")
    refused = app.test_client().post("/login", data={"email": "old@example.test", "password": TEST_PASSWORD})
    assert refused.status_code == 401


def test_spaces_around_a_pasted_address_are_dropped(app, session):
    user = UserFactory(email="old@example.test")
    client = _sign_in(app, user.email)
    response = client.post("/account/email", data={"email": "  pasted@example.test ", "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert _email_of(session, user.id) == "pasted@example.test"


def test_the_same_address_again_says_nothing_changed(app, session):
    user = UserFactory(email="same@example.test")
    client = _sign_in(app, user.email)
    client.post("/account/email", data={"email": "Same@Example.test", "password": TEST_PASSWORD})
    page = client.get("/account").get_data(as_text=True)
    assert "same@example.test is already your e-mail address; nothing changed." in page
    assert "is now" not in page


def test_password_guesses_on_the_account_page_and_the_api_are_limited(make_app):
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    with app.app_context():
        user = UserFactory()
        client = _sign_in(app, user.email)
        wrong = {"email": "thief@example.test", "password": "a-guess"}
        codes = [client.post("/account/email", data=wrong).status_code for _ in range(4)]
        assert codes == [422, 422, 422, 429]
        guesses = {"current_password": "a-guess", "new_password": "another-long-password"}
        codes = [client.post("/account/password", data=guesses).status_code for _ in range(4)]
        assert codes == [422, 422, 422, 429]
        codes = [client.patch("/api/v1/me", json=wrong).status_code for _ in range(4)]
        assert codes == [422, 422, 422, 429]
        assert _email_of(db.session, user.id) == user.email


def test_the_change_keeps_the_user_signed_in(app):
    user = UserFactory()
    client = _sign_in(app, user.email)
    client.post("/account/email", data={"email": "moved@example.test", "password": TEST_PASSWORD})
    assert client.get("/account").status_code == 200


def test_a_wrong_password_changes_nothing(app, session):
    user = UserFactory(email="kept@example.test")
    client = _sign_in(app, user.email)
    response = client.post("/account/email", data={"email": "other@example.test", "password": "not-my-password"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "That is not your current password." in page
    assert 'value="other@example.test"' in page  # what was typed is kept
    assert _email_of(session, user.id) == "kept@example.test"


def test_an_address_of_another_account_is_refused_whatever_its_case(app, session):
    UserFactory(email="taken@example.test")
    user = UserFactory(email="mine@example.test")
    client = _sign_in(app, user.email)
    response = client.post("/account/email", data={"email": "TAKEN@Example.test", "password": TEST_PASSWORD})
    assert response.status_code == 422
    assert "An account with that e-mail address already exists." in response.get_data(as_text=True)
    assert _email_of(session, user.id) == "mine@example.test"
    assert session.scalar(select(func.count()).where(User.email == "taken@example.test")) == 1


@pytest.mark.parametrize(
    ("data", "field_messages"),
    [
        ({"email": "not-an-address", "password": TEST_PASSWORD}, ["Enter an e-mail address like name@example.com."]),
        ({"email": "", "password": ""}, ["Enter an e-mail address like name@example.com.", "Fill in this field."]),
        ({"email": "a" * 250 + "@example.test", "password": TEST_PASSWORD}, ["Use at most 254 characters."]),
    ],
)
def test_a_bad_form_says_what_to_fix(app, session, data, field_messages):
    user = UserFactory(email="same@example.test")
    response = _sign_in(app, user.email).post("/account/email", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for message in field_messages:
        assert f'<p class="field-error" role="alert">{message}</p>' in page
    assert _email_of(session, user.id) == "same@example.test"


def test_the_own_address_in_another_case_is_no_change(app, session):
    user = UserFactory(email="me@example.test")
    response = _sign_in(app, user.email).post("/account/email", data={"email": "ME@example.test", "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert _email_of(session, user.id) == "me@example.test"


def test_the_service_leaves_the_user_and_the_transaction_usable_after_a_taken_address(session):
    UserFactory(email="first@example.test")
    user = UserFactory(email="second@example.test")
    with pytest.raises(EmailTaken) as taken:
        service.change_email(session, user, "First@example.test", TEST_PASSWORD)
    assert taken.value.details == {"email": ["An account with that e-mail address already exists."]}
    assert user.email == "second@example.test"
    user.display_name = "Still Writable"
    session.commit()
    assert _email_of(session, user.id) == "second@example.test"


def test_the_service_refuses_a_wrong_password(session):
    user = UserFactory(email="svc@example.test")
    with pytest.raises(WrongPassword):
        service.change_email(session, user, "elsewhere@example.test", "wrong-password")
    assert user.email == "svc@example.test"


# The API --------------------------------------------------------------------------------------


@pytest.fixture
def token_for(session):
    def make(user):
        _, secret = service.issue_token(session, user, "tests")
        session.commit()
        return {"Authorization": f"Bearer {secret}"}

    return make


def test_patch_me_changes_the_address(client, session, token_for):
    user = UserFactory()
    response = client.patch("/api/v1/me", json={"email": "Api@Example.test", "password": TEST_PASSWORD},
                            headers=token_for(user))  # fmt: skip
    assert response.status_code == 200 and response.json["email"] == "api@example.test"
    assert "password" not in response.json
    assert _email_of(session, user.id) == "api@example.test"


def test_patch_me_with_a_taken_address_is_a_conflict(client, session, token_for):
    UserFactory(email="owned@example.test")
    user = UserFactory()
    response = client.patch("/api/v1/me", json={"email": "owned@example.test", "password": TEST_PASSWORD},
                            headers=token_for(user))  # fmt: skip
    assert response.status_code == 409
    assert response.json["error"] == "email_taken"
    assert response.json["details"] == {"email": ["An account with that e-mail address already exists."]}


def test_patch_me_needs_the_password(client, session, token_for):
    user = UserFactory(email="guarded@example.test")
    headers = token_for(user)
    wrong = client.patch("/api/v1/me", json={"email": "x@example.test", "password": "nope"}, headers=headers)
    assert wrong.status_code == 422 and wrong.json["error"] == "wrong_password"
    assert wrong.json["details"] == {"password": ["That is not your current password."]}
    missing = client.patch("/api/v1/me", json={"email": "x@example.test"}, headers=headers)
    assert missing.status_code == 422 and missing.json["details"] == {"password": ["Fill in this field."]}
    assert _email_of(session, user.id) == "guarded@example.test"


def test_patch_me_needs_a_signed_in_user(client):
    response = client.patch("/api/v1/me", json={"email": "x@example.test", "password": TEST_PASSWORD})
    assert response.status_code == 401


# The page -------------------------------------------------------------------------------------


class _FormFields(HTMLParser):
    """The ids of the page's visible form fields, the ids labels point at, and every id."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[str | None] = []
        self.labelled: set[str] = set()
        self.ids: list[str] = []
        self._open_labels = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.append(attributes["id"])
        if tag == "label":
            self._open_labels += 1
            if attributes.get("for"):
                self.labelled.add(attributes["for"])
        elif tag in ("input", "select", "textarea") and attributes.get("type") != "hidden":
            if self._open_labels or attributes.get("aria-label"):
                return  # labelled by the label around it, or by its aria-label
            self.fields.append(attributes.get("id"))

    def handle_endtag(self, tag):
        if tag == "label":
            self._open_labels -= 1


def test_every_field_of_the_account_page_has_a_label(app, session):
    user = UserFactory()
    client = _sign_in(app, user.email)
    client.post("/account/tokens", data={"name": "script"})
    parsed = _FormFields()
    parsed.feed(client.get("/account").get_data(as_text=True))
    assert len(parsed.fields) == 5  # new e-mail, its password, current and new password, token name
    assert all(field in parsed.labelled for field in parsed.fields), parsed.fields
    assert len(parsed.ids) == len(set(parsed.ids)), "an id is used twice"


# PostgreSQL: the unique key decides ------------------------------------------------------------


@pytest.mark.postgres
def test_parallel_changes_to_one_address_give_it_to_one_account(app, session):
    racers = 4
    users = [UserFactory(email=f"racer{n}@example.test") for n in range(racers)]
    clients = [_sign_in(app, user.email) for user in users]
    barrier = threading.Barrier(racers)
    statuses: list[int] = []

    def change(client, address) -> None:
        barrier.wait()
        response = client.post("/account/email", data={"email": address, "password": TEST_PASSWORD})
        statuses.append(response.status_code)
        with app.app_context():
            db.session.remove()

    # The same address, in different cases.
    addresses = ["Prize@Example.test", "prize@example.TEST", "PRIZE@example.test", "prize@example.test"]
    threads = [threading.Thread(target=change, args=pair) for pair in zip(clients, addresses, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [302] + [422] * (racers - 1)
    session.expire_all()
    emails = list(session.scalars(select(User.email).where(User.id.in_([user.id for user in users]))))
    assert emails.count("prize@example.test") == 1
    assert sum(email.startswith("racer") for email in emails) == racers - 1
