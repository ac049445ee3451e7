"""The admin's campaign pages: admins only, every field checked, images kept in the vault."""

from __future__ import annotations

import re
from datetime import date
from io import BytesIO
from typing import Any

import pytest
from PIL import Image, ImageChops
from sqlalchemy import func, select

from app.ads.models import Campaign, Impression
from app.extensions import db
from app.plays.models import Listener
from app.pools.periods import ensure_period
from app.vault.models import VaultObject
from tests.factories import UserFactory
from tests.functional.ads.conftest import image_bytes
from tests.functional.catalog.forms import field_errors

PNG = image_bytes("PNG")
NAME_CONTROLS = (
    "A name is one line of plain text: it cannot hold control characters such as tabs, line"
    " breaks, NUL or text-direction marks."
)
DAMAGED = "That image is incomplete or damaged. Save it again and choose it anew."
PAID_CPM = "Enter what the campaign pays per 1000 impressions (0 if it pays nothing)."


def pixels(data: bytes) -> tuple[str | None, tuple[int, int], bytes]:
    """An image's format, size and every pixel."""
    with Image.open(BytesIO(data)) as image:
        return image.format, image.size, image.convert("RGBA").tobytes()


def campaign_form(image: bytes | None = PNG, filename: str = "banner.png", **change: Any) -> dict:
    form: dict[str, Any] = {
        "name": "Spring Sale",
        "link_url": "https://shop.example/spring",
        "weight": "3",
        "starts_on": "2026-03-01",
        "ends_on": "2026-03-31",
        "cpm": "2.50",
        "active": "on",
    }
    if image is not None:
        form["image"] = (BytesIO(image), filename)
    form.update(change)
    return {key: value for key, value in form.items() if value is not None}


def post_new(client: Any, **kwargs: Any) -> Any:
    return client.post(
        "/admin/ads/new", data=campaign_form(**kwargs), content_type="multipart/form-data"
    )


def objects() -> int:
    return db.session.scalar(select(func.count()).select_from(VaultObject))


@pytest.mark.parametrize("path", ["/admin/ads", "/admin/ads/new", "/admin/ads/1/edit"])
def test_anonymous_visitors_are_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("path", ["/admin/ads", "/admin/ads/new", "/admin/ads/1/edit"])
def test_listeners_are_refused(client, auth, session, path):
    listener = UserFactory()
    auth.login(listener.email)
    assert client.get(path).status_code == 403
    assert post_new(client).status_code == 403
    assert session.scalar(select(Campaign)) is None


def test_an_admin_creates_a_campaign_with_an_image(client, session, admin):
    response = post_new(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/ads"
    campaign = session.scalars(select(Campaign)).one()
    assert (campaign.name, campaign.link_url, campaign.weight) == (
        "Spring Sale", "https://shop.example/spring", 3,
    )  # fmt: skip
    assert (campaign.starts_on, campaign.ends_on) == (date(2026, 3, 1), date(2026, 3, 31))
    assert (campaign.cpm_minor, campaign.currency) == (250, "USD")
    assert (campaign.is_house, campaign.active) == (False, True)
    assert campaign.image_mimetype == "image/png"

    image = client.get(f"/ads/{campaign.id}/image")
    assert image.status_code == 200
    assert image.mimetype == "image/png"
    assert pixels(image.data) == pixels(PNG)
    assert image.headers["X-Content-Type-Options"] == "nosniff"

    page = client.get("/admin/ads").get_data(as_text=True)
    assert "Spring Sale" in page and "$2.50" in page
    assert f'/ads/{campaign.id}/image?v=' in page


@pytest.mark.parametrize(
    ("fmt", "mimetype"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/png"), ("GIF", "image/png")],
)
def test_every_image_format_is_recognised_by_its_content(client, session, admin, fmt, mimetype):
    data = image_bytes(fmt, size=(40, 20))
    assert post_new(client, image=data, filename="no-extension").status_code == 302
    campaign = session.scalars(select(Campaign)).one()
    assert campaign.image_mimetype == mimetype
    served = client.get(f"/ads/{campaign.id}/image")
    assert served.mimetype == mimetype
    with Image.open(BytesIO(served.data)) as stored, Image.open(BytesIO(data)) as sent:
        assert (stored.format, stored.size) == (mimetype.split("/")[1].upper(), sent.size)
        difference = ImageChops.difference(stored.convert("RGB"), sent.convert("RGB"))
        assert max(high for _, high in difference.getextrema()) <= 8


def test_a_campaign_without_an_image_is_a_text_ad(client, session, admin):
    assert post_new(client, image=None).status_code == 302
    campaign = session.scalars(select(Campaign)).one()
    assert campaign.image_object_id is None
    assert client.get(f"/ads/{campaign.id}/image").status_code == 404


def test_typed_cpm_is_read_as_money(client, session, admin):
    assert post_new(client, cpm="7,00").status_code == 302
    assert session.scalar(select(Campaign.cpm_minor)) == 700


def test_the_list_shows_impressions_and_state(client, session, app, admin):
    post_new(client, starts_on="", ends_on="")
    campaign = session.scalars(select(Campaign)).one()
    listener = Listener(key="c:someone")
    period = ensure_period(session, app.config, "2026-12")
    session.add(listener)
    session.flush()
    for _ in range(3):
        session.add(
            Impression(campaign_id=campaign.id, listener_id=listener.id, period_id=period.id,
                       cpm_minor=250, currency="USD")
        )  # fmt: skip
    session.commit()
    page = client.get("/admin/ads").get_data(as_text=True)
    row = page[page.index("Spring Sale") :]
    row = row[: row.index("</tr>")]
    assert '<td class="track-price">3</td>' in row
    assert ">Running</span>" in row


def test_an_admin_edits_a_campaign_and_replaces_its_image(client, session, admin):
    post_new(client)
    campaign = session.scalars(select(Campaign)).one()
    old_image = campaign.image_object_id
    new_png = image_bytes("PNG", color="crimson")
    response = client.post(
        f"/admin/ads/{campaign.id}/edit",
        data=campaign_form(image=new_png, name="Summer Sale", weight="0", cpm="1", active=None),
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    session.expire_all()
    campaign = session.get(Campaign, campaign.id)
    assert (campaign.name, campaign.weight, campaign.cpm_minor, campaign.active) == (
        "Summer Sale", 0, 100, False,
    )  # fmt: skip
    assert campaign.image_object_id != old_image
    assert session.get(VaultObject, old_image) is None
    assert objects() == 1
    assert pixels(client.get(f"/ads/{campaign.id}/image").data) == pixels(new_png)


def test_editing_without_a_new_file_keeps_the_image_and_removing_drops_it(client, session, admin):
    post_new(client)
    campaign = session.scalars(select(Campaign)).one()
    image = campaign.image_object_id
    edit = f"/admin/ads/{campaign.id}/edit"
    assert client.post(edit, data=campaign_form(image=None, name="Kept")).status_code == 302
    session.expire_all()
    assert session.get(Campaign, campaign.id).image_object_id == image

    assert client.post(edit, data=campaign_form(image=None, remove_image="on")).status_code == 302
    session.expire_all()
    assert session.get(Campaign, campaign.id).image_object_id is None
    assert objects() == 0


def test_the_edit_form_shows_the_saved_values(client, session, admin):
    post_new(client, cpm="1234.5")
    campaign = session.scalars(select(Campaign)).one()
    page = client.get(f"/admin/ads/{campaign.id}/edit").get_data(as_text=True)
    assert 'value="Spring Sale"' in page
    assert 'value="1234.50"' in page
    assert 'value="2026-03-31"' in page


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"image": b"GIF89a but not really an image", "filename": "fake.gif"}, "image",
         DAMAGED),
        ({"image": b"%PDF-1.7 a document", "filename": "banner.png"}, "image",
         "That file is not an image Megabox shows: use PNG, JPEG, WebP or GIF."),
        ({"image": b"", "filename": "empty.png"}, "image", "The chosen file is empty."),
        ({"link_url": "javascript:alert(1)"}, "link_url",
         "Use a web address that starts with http:// or https://, like https://example.com."),
        ({"link_url": "ftp://files.example/x"}, "link_url",
         "Use a web address that starts with http:// or https://, like https://example.com."),
        ({"link_url": "https:///no-host"}, "link_url",
         "Use a web address that starts with http:// or https://, like https://example.com."),
        ({"link_url": ""}, "link_url", "Enter the address the ad links to."),
        ({"starts_on": "2026-03-10", "ends_on": "2026-03-09"}, "ends_on",
         "The end date cannot be before the start date."),
        ({"starts_on": "10/03/2026"}, "starts_on",
         "Use a date like 2026-11-22, or leave it empty."),
        ({"ends_on": "2026-02-30"}, "ends_on", "Use a date like 2026-11-22, or leave it empty."),
        ({"weight": "-1"}, "weight",
         "Write the weight as a whole number, like 1 or 10 (0 pauses it)."),
        ({"weight": "1000001"}, "weight", "The weight is a whole number from 0 to 1,000,000."),
        ({"cpm": "-5"}, "cpm", "The CPM cannot be negative."),
        ({"cpm": "100000.01"}, "cpm", "The CPM can be at most $100,000.00."),
        ({"cpm": "1,200"}, "cpm",
         "&#39;1,200&#39; is ambiguous: it could mean 1200 or 1.2. Write 1200 or 1.20 instead."),
        ({"is_house": "on", "cpm": "3"}, "cpm", "A house ad earns nothing: leave its CPM at 0."),
        ({"name": "  "}, "name",
         "Give the campaign a name; it is the image&#39;s text for screen readers too."),
        ({"name": "x" * 121}, "name", "A name is at most 120 characters long."),
        ({"name": "Spring\x00Sale"}, "name", NAME_CONTROLS),
        ({"name": "Spring\tSale"}, "name", NAME_CONTROLS),
        ({"name": "Spring\nSale"}, "name", NAME_CONTROLS),
        ({"name": "Spring \u202eelaS"}, "name", NAME_CONTROLS),
        ({"cpm": ""}, "cpm", PAID_CPM),
        ({"cpm": "  "}, "cpm", PAID_CPM),
    ],
)  # fmt: skip
def test_a_bad_field_is_explained_and_nothing_is_saved(
    client, session, admin, change, field, message
):
    objects_before = objects()
    response = post_new(client, **change)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in field_errors(page, field)
    assert session.scalar(select(Campaign)) is None
    assert objects() == objects_before == 0
    # What was typed comes back, so nothing has to be typed again.
    typed = {**campaign_form(image=None), **change}
    assert f'value="{typed["weight"]}"' in page
    if field != "name":
        assert 'value="Spring Sale"' in page


def test_every_problem_is_shown_at_once(client, session, admin):
    response = post_new(client, link_url="javascript:x", weight="many", cpm="abc", ends_on="x")
    page = response.get_data(as_text=True)
    for field in ("link_url", "weight", "cpm", "ends_on"):
        assert field_errors(page, field), field


def image_note(page: str) -> str:
    """The note at the image field saying the chosen file must be chosen again, or ""."""
    found = re.search(r'<p class="alert alert-info image-again"[^>]*>(.*?)</p>', page, re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)) if found else ""


def test_a_valid_image_beside_a_bad_field_asks_to_be_chosen_again(client, admin):
    page = post_new(client, link_url="javascript:x").get_data(as_text=True)
    note = image_note(page)
    assert note.startswith("Choose the image again.")
    assert "“banner.png”" in note and "the image itself was fine" in note
    assert 'aria-describedby="image-again hint-image"' in page


def test_a_bad_image_is_explained_and_asked_for_again(client, admin):
    page = post_new(client, image=b"GIF89a broken", filename="x.gif").get_data(as_text=True)
    note = image_note(page)
    assert note.startswith("Choose the image again.")
    assert "could not be used" in note
    assert field_errors(page, "image") == [DAMAGED]


def test_without_a_chosen_file_nothing_is_asked_for_again(client, admin):
    page = post_new(client, image=None, link_url="javascript:x").get_data(as_text=True)
    assert image_note(page) == ""
    assert "image-again" not in page
    # A form sent with the file input left empty has an image part with no file name.
    form = {**campaign_form(image=None, link_url="javascript:x"), "image": (BytesIO(b""), "")}
    empty_input = client.post("/admin/ads/new", data=form, content_type="multipart/form-data")
    assert empty_input.status_code == 422
    assert image_note(empty_input.get_data(as_text=True)) == ""


def test_a_name_loses_its_surrounding_spaces(client, session, admin):
    assert post_new(client, name="  \u00a0Spring Sale \u3000 ").status_code == 302
    assert session.scalar(select(Campaign.name)) == "Spring Sale"


def test_a_paid_campaign_may_pay_an_explicit_zero_and_a_house_ad_nothing(client, session, admin):
    assert post_new(client, cpm="0").status_code == 302
    assert post_new(client, cpm="", is_house="on", name="House").status_code == 302
    assert sorted(session.execute(select(Campaign.name, Campaign.cpm_minor))) == [
        ("House", 0), ("Spring Sale", 0),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "state"),
    [({}, "Running"), ({"weight": "0"}, "Never shown (weight 0)"),
     ({"active": None}, "Paused"), ({"active": None, "weight": "0"}, "Paused"),
     ({"starts_on": "2999-01-01", "ends_on": ""}, "Scheduled"),
     ({"starts_on": "2999-01-01", "ends_on": "", "weight": "0"}, "Never shown (weight 0)"),
     ({"starts_on": "2001-01-01", "ends_on": "2001-01-02"}, "Ended")],
)  # fmt: skip
def test_the_list_says_what_state_a_campaign_is_in(client, admin, change, state):
    post_new(client, **{"starts_on": "", "ends_on": "", **change})
    page = client.get("/admin/ads").get_data(as_text=True)
    badges = re.findall(r'<span class="badge badge-state[^"]*"[^>]*>([^<]*)</span>', page)
    assert badges == [state]


def test_an_image_over_the_limit_is_refused(make_app, session):
    app = make_app(AD_IMAGE_MAX_BYTES=len(PNG) - 1)
    client = app.test_client()
    with app.app_context():
        user = UserFactory(is_admin=True)
        client.post("/login", data={"email": user.email, "password": "correct-horse-battery"})
        response = post_new(client)
        assert response.status_code == 422
        assert "The image is larger than" in response.get_data(as_text=True)
        assert db.session.scalar(select(Campaign)) is None
        assert post_new(client, image=image_bytes("PNG", size=(1, 1))).status_code == 302


def test_an_unknown_campaign_is_not_found(client, admin):
    assert client.get("/admin/ads/999/edit").status_code == 404
    assert client.get("/ads/999/image").status_code == 404
