"""An artist signs up, creates a profile with a picture and a priced release with a cover,
and a listener finds it."""

import pytest
from PIL import Image
from sqlalchemy import select

from app.catalog.models import Release

pytestmark = pytest.mark.browser


def test_artist_publishes_a_release_that_listeners_can_find(live_server, page, session, tmp_path):
    cover = tmp_path / "low-tide.png"
    Image.new("RGB", (1600, 1200), "steelblue").save(cover)
    portrait = tmp_path / "mara.jpg"
    Image.new("RGB", (400, 600), "salmon").save(portrait)

    page.goto(f"{live_server}/signup")
    page.fill("#f-display_name", "Mara")
    page.fill("#f-email", "mara@example.test")
    page.fill("#f-password", "a-long-password")
    page.click("main button[type=submit]")
    assert "Welcome to Megabox, Mara." in page.inner_text(".flashes")

    page.get_by_role("link", name="Studio", exact=True).first.click()
    page.get_by_role("link", name="Create an artist profile", exact=True).first.click()
    page.fill("#f-name", "Mara Quartet")
    page.fill("#f-slug", "mara-quartet")
    page.click("main button[type=submit]")
    page.get_by_role("link", name="Edit profile", exact=True).first.click()
    page.get_by_label("Artist picture").set_input_files(str(portrait))
    page.get_by_role("button", name="Upload picture").click()
    assert "Picture saved." in page.inner_text(".flashes")
    page.get_by_role("link", name="Cancel", exact=True).click()  # back to the Studio
    page.get_by_role("link", name="New release", exact=True).first.click()

    page.fill("#f-title", "Low Tide")
    page.select_option("#f-pricing_mode", "name_your_price")
    page.fill("#f-price", "8")
    page.fill("#f-minimum_price", "10")
    page.click("main button[type=submit]")
    assert "The minimum cannot be above the suggested price." in page.inner_text("#f-minimum_price + .field-error, .has-error")
    assert session.scalar(select(Release)) is None

    page.fill("#f-minimum_price", "3")
    page.check("input[name=published]")
    page.click("main button[type=submit]")
    page.get_by_label("Cover image").set_input_files(str(cover))
    page.get_by_role("button", name="Upload cover").click()
    assert "Cover saved." in page.inner_text(".flashes")
    page.get_by_role("link", name="Add track", exact=True).first.click()
    page.fill("#f-title", "Undertow")
    page.click("main button[type=submit]")
    assert "Undertow" in page.inner_text("#tracks")

    page.get_by_role("button", name="Sign out").click()
    page.fill("input[name=q]", "low tide")
    page.press("input[name=q]", "Enter")
    page.click(".card:has-text('Low Tide')")
    assert page.inner_text(".price") == "Suggested $8.00 · minimum $3.00"
    assert "Undertow" in page.inner_text(".tracklist")
    assert "Mara Quartet" in page.inner_text(".byline")
    art = page.locator(".release-art img")
    art.scroll_into_view_if_needed()
    assert art.evaluate("img => img.complete && img.naturalWidth") == 600
    page.click(".byline a")
    avatar = page.get_by_role("img", name="Picture of Mara Quartet")
    assert avatar.evaluate("img => img.complete && img.naturalWidth") == 300
