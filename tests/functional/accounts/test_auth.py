import re

from sqlalchemy import select

from app.accounts.models import ApiToken, User
from tests.conftest import TEST_PASSWORD
from tests.factories import UserFactory


def test_signup_creates_an_account_with_an_argon2_hash_and_signs_in(client, session):
    response = client.post(
        "/signup",
        data={"email": "New@Example.test", "display_name": "Nova", "password": "long-enough-pw"},
    )
    assert response.status_code == 302
    user = session.scalar(select(User).where(User.email == "new@example.test"))
    assert user.password_hash.startswith("$argon2")
    assert "long-enough-pw" not in user.password_hash
    assert b"Nova" in client.get("/").data


def test_signup_shows_inline_errors_and_creates_nothing(client, session):
    response = client.post("/signup", data={"email": "not-an-email", "display_name": "", "password": "short"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Enter an e-mail address like name@example.com." in page
    assert "Use 1 to 120 characters." in page
    assert "Use 10 to 1024 characters." in page
    assert session.scalar(select(User)) is None


def test_signup_with_a_taken_email_is_refused(client):
    UserFactory(email="taken@example.test")
    response = client.post(
        "/signup", data={"email": "TAKEN@example.test", "display_name": "X", "password": "long-enough-pw"}
    )
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)


def test_login_and_logout(client, auth):
    user = UserFactory()
    assert auth.login(user.email).status_code == 302
    assert client.get("/account").status_code == 200
    auth.logout()
    assert client.get("/account").status_code == 302


def test_wrong_password_is_refused_without_saying_which_part(client, auth):
    user = UserFactory()
    response = auth.login(user.email, "wrong-password")
    assert response.status_code == 401
    assert "do not match an account" in response.get_data(as_text=True)
    assert auth.login("nobody@example.test").status_code == 401


def test_login_is_rate_limited(make_app):
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    codes = [
        client.post("/login", data={"email": "a@example.test", "password": "x"}).status_code
        for _ in range(5)
    ]
    assert codes == [401, 401, 401, 429, 429]


def test_login_redirects_only_to_local_paths(client):
    user = UserFactory()
    response = client.post("/login?next=//evil.example/", data={"email": user.email, "password": TEST_PASSWORD})
    assert response.headers["Location"] == "/"
    client.post("/logout")
    response = client.post("/login?next=/studio", data={"email": user.email, "password": TEST_PASSWORD})
    assert response.headers["Location"] == "/studio"


def test_csrf_is_enforced_on_forms(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    with app.app_context():
        email = UserFactory().email
    refused = client.post("/login", data={"email": email, "password": TEST_PASSWORD})
    assert refused.status_code == 400
    assert "CSRF" in refused.get_data(as_text=True)

    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    accepted = client.post("/login", data={"email": email, "password": TEST_PASSWORD, "csrf_token": token})
    assert accepted.status_code == 302


def test_api_token_is_shown_once_and_stored_hashed(client, auth, session):
    user = UserFactory()
    auth.login(user.email)
    page = client.post("/account/tokens", data={"name": "uploader"}).get_data(as_text=True)
    secret = re.search(r'id="new-token">([^<]+)<', page).group(1)
    token = session.scalar(select(ApiToken))
    assert secret not in token.token_hash and token.prefix == secret[:10]
    assert secret not in client.get("/account").get_data(as_text=True)

    client.post("/logout")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json["email"] == user.email


def test_revoked_token_no_longer_authenticates(client, auth, session):
    user = UserFactory()
    auth.login(user.email)
    created = client.post("/api/v1/tokens", json={"name": "ci"})
    assert created.status_code == 201
    secret, token_id = created.json["secret"], created.json["id"]
    client.post(f"/account/tokens/{token_id}/revoke")
    client.post("/logout")
    refused = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401
    assert refused.json["error"] == "unauthorized"
