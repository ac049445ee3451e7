"""Megabox settings.

Every setting has an embedded default that needs no server, and every one can be overridden
by an environment variable of the same name with a ``MEGABOX_`` prefix
(``MEGABOX_DATABASE_URL``, ``MEGABOX_MAX_UPLOAD_BYTES`` ...). ``create_app(config)`` takes a
mapping that wins over both, which is what the tests use.

In embedded mode (the default) a secret key is generated into the instance folder on the first
run. With ``MEGABOX_ENV=production`` nothing is generated: missing secrets stop start-up with
one line naming each of them.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ENV_PREFIX = "MEGABOX_"


class ConfigurationError(Exception):
    """Raised when the settings cannot make a working application."""


def _to_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {raw!r}")


# name -> (default, parser). A default of None means "derived" or "not set".
SETTINGS: dict[str, tuple[Any, Callable[[str], Any]]] = {
    "ENV": ("development", str),
    "INSTANCE_PATH": ("instance", str),
    "DATABASE_URL": (None, str),
    "REDIS_URL": ("", str),
    "STORAGE_URL": ("", str),
    "S3_ENDPOINT_URL": ("", str),
    "S3_REGION": ("us-east-1", str),
    "SECRET_KEY": (None, str),
    "KEK": ("", str),
    "KEK_FILE": ("", str),
    "FFMPEG": ("", str),
    "PAYMENT_GATEWAY": ("sandbox", str),
    "STRIPE_SECRET_KEY": ("", str),
    "STRIPE_WEBHOOK_SECRET": ("", str),
    # Any Stripe-compatible API server (empty: Stripe's own); the webhook's clock-skew tolerance.
    "STRIPE_API_BASE": ("", str),
    "STRIPE_WEBHOOK_TOLERANCE_SECONDS": (300, int),
    # The sandbox gateway's pretend processor fee (basis points plus a fixed part), and how
    # long its "pay later" option waits before the payment clears.
    "SANDBOX_FEE_BPS": (290, int),
    "SANDBOX_FEE_FIXED_MINOR": (30, int),
    "SANDBOX_PAYMENT_DELAY_SECONDS": (5.0, float),
    # Receipts: written to OUTBOX_PATH (default instance/outbox); sent by SMTP if SMTP_URL is set.
    "OUTBOX_PATH": ("", str),
    "SMTP_URL": ("", str),
    "MAIL_FROM": ("Megabox <receipts@megabox.invalid>", str),
    # The site's address as people reach it, for links in e-mails (jobs have no request).
    "PUBLIC_URL": ("http://127.0.0.1:5000", str),
    # How long a signed download or zip link works after it is made.
    "DOWNLOAD_LINK_TTL_SECONDS": (86400, int),
    # Free plays: a play counts once PLAY_COUNT_SECONDS (or the whole track, if shorter) have
    # passed on the server's clock; one count per listener and track per dedupe window, and
    # at most PLAY_DAILY_CAP counted plays per listener per UTC day. A play id takes
    # heartbeats for PLAY_SESSION_TTL_SECONDS. The anonymous listener cookie lasts
    # LISTENER_COOKIE_DAYS.
    "PLAY_COUNT_SECONDS": (30.0, float),
    "PLAY_DEDUPE_WINDOW_SECONDS": (3600, int),
    "PLAY_DAILY_CAP": (200, int),
    # Anonymous listeners from one IP address (whatever their cookies) share this daily cap.
    "PLAY_ADDRESS_DAILY_CAP": (500, int),
    "PLAY_SESSION_TTL_SECONDS": (6 * 3600, int),
    "LISTENER_COOKIE_DAYS": (365, int),
    # Ads: at most AD_FREQUENCY_CAP impressions per listener per AD_FREQUENCY_WINDOW_SECONDS;
    # the largest campaign image accepted.
    "AD_FREQUENCY_CAP": (6, int),
    "AD_FREQUENCY_WINDOW_SECONDS": (3600, int),
    "AD_IMAGE_MAX_BYTES": (2 * 1024 * 1024, int),
    "AD_IMAGE_MAX_PIXELS": (4096 * 4096, int),
    # Pools: the artists' share of a period's ad revenue, and the model a new period starts with
    # ("pro_rata" or "user_centric"; the admin may change it until the period is closed).
    "AD_POOL_SHARE_BPS": (9000, int),
    "POOL_MODEL": ("pro_rata", str),
    # Payouts: the smallest balance paid out, per currency, in minor units; a currency not
    # named is not paid out.
    "PAYOUT_MINIMUMS": ("USD:2500,EUR:2500,GBP:2500", str),
    # Statements: beyond this many lines, HTML and PDF group them by item (the CSV has all).
    "STATEMENT_DETAIL_LINES_MAX": (2000, int),
    # Limits.
    "LOGIN_RATE_LIMIT": ("10 per minute", str),
    "RATELIMIT_ENABLED": (True, _to_bool),
    "MAX_REQUEST_BYTES": (64 * 1024 * 1024, int),
    "SEARCH_RESULTS_LIMIT": (50, int),
    "PAGE_SIZE": (24, int),
    "API_PAGE_SIZE_MAX": (100, int),
    "DEFAULT_CURRENCY": ("USD", str),
    "MAX_PRICE_MINOR": (100_000_00, int),
    "MAX_JSON_DEPTH": (32, int),
    "MAX_CART_ITEMS": (50, int),
    # Money: the artist's share of a sale in basis points, and who pays the processor's fee
    # ("platform_absorbs" or "deduct_before_split").
    "ARTIST_SHARE_BPS": (9000, int),
    "FEE_POLICY": ("platform_absorbs", str),
    # Vault.
    "VAULT_SEGMENT_SIZE_LOG2": (16, int),
    "S3_MULTIPART_THRESHOLD_BYTES": (16 * 1024 * 1024, int),
    "S3_MULTIPART_CHUNK_BYTES": (16 * 1024 * 1024, int),
    "KEK_ROTATE_BATCH": (500, int),
    # Ingest and media work.
    "MAX_UPLOAD_BYTES": (4 * 1024**3, int),
    "UPLOAD_CHUNK_BYTES": (8 * 1024 * 1024, int),
    "UPLOAD_SPOOL_PATH": ("", str),
    "ARTIST_STORAGE_QUOTA_BYTES": (50 * 1024**3, int),
    # The largest release cover or artist picture an artist may upload (JPEG, PNG or WebP).
    "COVER_UPLOAD_MAX_BYTES": (10 * 1024 * 1024, int),
    "MAX_AUDIO_SECONDS": (4 * 3600, int),
    "UPLOAD_EXPIRY_HOURS": (72, int),
    "UPLOAD_PROCESSING_TIMEOUT_MINUTES": (120, int),
    "MAX_AUDIO_CHANNELS": (16, int),
    "MIN_SAMPLE_RATE_HZ": (8000, int),
    "MAX_SAMPLE_RATE_HZ": (768_000, int),
    "JOB_QUEUE_NAME": ("megabox", str),
    "JOB_TIMEOUT_SECONDS": (3600, int),
    "JOB_MAX_RETRIES": (3, int),
    "JOB_RETRY_BACKOFF_SECONDS": (5.0, float),
    "WORKER_THREADS": (2, int),
    "FFMPEG_CONCURRENCY": (2, int),
    "LOUDNESS_TARGET_LUFS": (-14.0, float),
    "TRUE_PEAK_LIMIT_DBTP": (-1.0, float),
    "WAVEFORM_BUCKETS": (1500, int),
    "DEFAULT_TRACK_PRICE_MINOR": (100, int),
    "PROGRESS_INTERVAL_SECONDS": (0.5, float),
}

# Settings that must be given explicitly when MEGABOX_ENV=production.
PRODUCTION_SECRETS = ("SECRET_KEY", "DATABASE_URL")


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Resolve every setting: explicit overrides, then ``MEGABOX_*`` variables, then defaults.

    Raises ConfigurationError for an unparsable value or, in production, missing secrets.
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    settings: dict[str, Any] = {}
    for name, (default, parser) in SETTINGS.items():
        if name in overrides:
            settings[name] = overrides.pop(name)
        elif ENV_PREFIX + name in environ:
            raw = environ[ENV_PREFIX + name]
            try:
                settings[name] = parser(raw)
            except ValueError as exc:
                raise ConfigurationError(f"{ENV_PREFIX}{name}: {exc}") from None
        else:
            settings[name] = default
    settings.update(overrides)

    _check_money(settings)
    instance = Path(settings["INSTANCE_PATH"]).expanduser().resolve()
    settings["INSTANCE_PATH"] = str(instance)
    production = settings["ENV"] == "production"

    if production:
        missing = [ENV_PREFIX + n for n in PRODUCTION_SECRETS if not settings.get(n)]
        if not (settings.get("KEK") or settings.get("KEK_FILE")):
            missing.append(f"{ENV_PREFIX}KEK (or {ENV_PREFIX}KEK_FILE)")
        if settings["PAYMENT_GATEWAY"] == "stripe":
            missing += [
                ENV_PREFIX + n
                for n in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET")
                if not settings.get(n)
            ]
        if missing:
            raise ConfigurationError("missing production settings: " + ", ".join(missing))

    if not settings["DATABASE_URL"]:
        settings["DATABASE_URL"] = f"sqlite:///{instance / 'megabox.db'}"
    if not settings["SECRET_KEY"]:
        settings["SECRET_KEY"] = _instance_secret(instance / "secret_key")
    return settings


FEE_POLICIES = ("platform_absorbs", "deduct_before_split")
PAYMENT_GATEWAYS = ("sandbox", "stripe")
POOL_MODELS = ("pro_rata", "user_centric")
_PAYOUT_MINIMUM = re.compile(r"^[A-Z]{3}:[0-9]{1,15}$", re.ASCII)
BPS_WHOLE = 10_000


def _check_money(settings: Mapping[str, Any]) -> None:
    if not 0 <= int(settings["ARTIST_SHARE_BPS"]) <= BPS_WHOLE:
        raise ConfigurationError(f"{ENV_PREFIX}ARTIST_SHARE_BPS: use 0 to {BPS_WHOLE} (basis points)")
    if settings["FEE_POLICY"] not in FEE_POLICIES:
        raise ConfigurationError(f"{ENV_PREFIX}FEE_POLICY: use one of {', '.join(FEE_POLICIES)}")
    if settings["PAYMENT_GATEWAY"] not in PAYMENT_GATEWAYS:
        raise ConfigurationError(
            f"{ENV_PREFIX}PAYMENT_GATEWAY: use one of {', '.join(PAYMENT_GATEWAYS)}"
        )
    if int(settings["MAX_CART_ITEMS"]) < 1:
        raise ConfigurationError(f"{ENV_PREFIX}MAX_CART_ITEMS: must be at least 1")
    if not 0 <= int(settings["AD_POOL_SHARE_BPS"]) <= BPS_WHOLE:
        raise ConfigurationError(f"{ENV_PREFIX}AD_POOL_SHARE_BPS: use 0 to {BPS_WHOLE} (basis points)")
    if settings["POOL_MODEL"] not in POOL_MODELS:
        raise ConfigurationError(f"{ENV_PREFIX}POOL_MODEL: use one of {', '.join(POOL_MODELS)}")
    if float(settings["PLAY_COUNT_SECONDS"]) <= 0:
        raise ConfigurationError(f"{ENV_PREFIX}PLAY_COUNT_SECONDS: must be above 0")
    for name in ("PLAY_DAILY_CAP", "PLAY_ADDRESS_DAILY_CAP", "AD_FREQUENCY_CAP"):
        if int(settings[name]) < 0:
            raise ConfigurationError(f"{ENV_PREFIX}{name}: cannot be negative")
    if int(settings["MAX_PRICE_MINOR"]) < 1:
        raise ConfigurationError(f"{ENV_PREFIX}MAX_PRICE_MINOR: must be at least 1")
    for part in filter(None, (p.strip() for p in str(settings["PAYOUT_MINIMUMS"]).split(","))):
        if not _PAYOUT_MINIMUM.match(part):
            raise ConfigurationError(
                f"{ENV_PREFIX}PAYOUT_MINIMUMS: write currency:minor_units pairs separated by "
                f"commas (USD:2500,EUR:2500), not {part!r}"
            )
    if int(settings["STATEMENT_DETAIL_LINES_MAX"]) < 0:
        raise ConfigurationError(f"{ENV_PREFIX}STATEMENT_DETAIL_LINES_MAX: cannot be negative")


def _instance_secret(path: Path) -> str:
    """Read the embedded-mode secret key, generating it (mode 0600) on the first run."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
