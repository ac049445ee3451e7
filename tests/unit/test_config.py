import stat

import pytest

from config import ConfigurationError, load_settings


def test_environment_overrides_defaults(tmp_path):
    settings = load_settings(
        environ={"MEGABOX_INSTANCE_PATH": str(tmp_path), "MEGABOX_MAX_UPLOAD_BYTES": "1234"}
    )
    assert settings["MAX_UPLOAD_BYTES"] == 1234
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path / 'megabox.db'}"


def test_explicit_config_wins_over_environment(tmp_path):
    settings = load_settings(
        {"PAGE_SIZE": 3}, environ={"MEGABOX_INSTANCE_PATH": str(tmp_path), "MEGABOX_PAGE_SIZE": "9"}
    )
    assert settings["PAGE_SIZE"] == 3


def test_embedded_mode_generates_a_private_secret_key_once(tmp_path):
    first = load_settings(environ={"MEGABOX_INSTANCE_PATH": str(tmp_path)})["SECRET_KEY"]
    second = load_settings(environ={"MEGABOX_INSTANCE_PATH": str(tmp_path)})["SECRET_KEY"]
    assert first == second and len(first) >= 40
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_production_names_every_missing_secret_on_one_line(tmp_path):
    environ = {"MEGABOX_ENV": "production", "MEGABOX_INSTANCE_PATH": str(tmp_path),
               "MEGABOX_PAYMENT_GATEWAY": "stripe"}  # fmt: skip
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ=environ)
    message = str(caught.value)
    assert "\n" not in message
    for name in ("MEGABOX_SECRET_KEY", "MEGABOX_DATABASE_URL", "MEGABOX_KEK",
                 "MEGABOX_STRIPE_SECRET_KEY", "MEGABOX_STRIPE_WEBHOOK_SECRET"):  # fmt: skip
        assert name in message
    assert not (tmp_path / "secret_key").exists()


def test_unparsable_number_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigurationError, match="MEGABOX_PAGE_SIZE"):
        load_settings(environ={"MEGABOX_INSTANCE_PATH": str(tmp_path), "MEGABOX_PAGE_SIZE": "lots"})


def test_production_start_up_stops_with_one_line(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", "routes"],
        env={"MEGABOX_ENV": "production", "MEGABOX_INSTANCE_PATH": str(tmp_path), "PATH": ""},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "megabox: missing production settings: MEGABOX_SECRET_KEY, MEGABOX_DATABASE_URL, "
        "MEGABOX_KEK (or MEGABOX_KEK_FILE)"
    ]


@pytest.mark.parametrize("minimums", ["USD:abc", "usd:2500", "USD2500", "USD:-5,EUR:100"])
def test_a_malformed_payout_minimum_is_a_clear_error(tmp_path, minimums):
    environ = {"MEGABOX_INSTANCE_PATH": str(tmp_path), "MEGABOX_PAYOUT_MINIMUMS": minimums}
    with pytest.raises(ConfigurationError, match="MEGABOX_PAYOUT_MINIMUMS"):
        load_settings(environ=environ)


def test_payout_minimums_name_each_currency(tmp_path):
    environ = {"MEGABOX_INSTANCE_PATH": str(tmp_path), "MEGABOX_PAYOUT_MINIMUMS": "USD:1000, EUR:0"}
    assert load_settings(environ=environ)["PAYOUT_MINIMUMS"] == "USD:1000, EUR:0"
