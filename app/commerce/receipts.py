"""Receipts: one RFC 5322 message per paid order, in the outbox folder and optionally by SMTP.

Embedded mode has no mail server, so every receipt is written to the outbox
(``OUTBOX_PATH``, default ``<instance>/outbox``) as ``<order public id>.eml``, a file any mail
client opens. The file is written to a temporary name and linked into place, which fails if
the name exists: a receipt appears whole or not at all, and a job that runs twice (or twice at
once) leaves one file.

With ``SMTP_URL`` set (``smtp://[user:password@]host[:port]``, or ``smtps://`` for TLS from the
first byte) the receipt is also sent. A marker ``sent/<public id>`` records the delivery, so
a retried job sends only what was not sent yet. Delivery is at least once: two runs racing
may both send, and the fixed ``Message-ID`` lets mail clients fold the copies into one.
"""

from __future__ import annotations

import os
import smtplib
import tempfile
from collections.abc import Mapping
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy.orm import Session

from app.commerce.models import ItemKind, Order
from app.jobs import TransientJobError
from app.ledger.money import Money

OUTBOX_DIR_MODE = 0o700
RECEIPT_FILE_MODE = 0o600
RECEIPT_SUFFIX = ".eml"
SENT_DIR = "sent"
SMTP_TIMEOUT_SECONDS = 30
SMTP_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
# Where order links point when the site's public address is not configured: the development
# server's own address.


def outbox_path(config: Mapping[str, Any]) -> Path:
    """The folder receipts are written to."""
    configured = config.get("OUTBOX_PATH") or ""
    return Path(configured) if configured else Path(config["INSTANCE_PATH"]) / "outbox"


def receipt_path(config: Mapping[str, Any], order: Order) -> Path:
    return outbox_path(config) / f"{order.public_id}{RECEIPT_SUFFIX}"


def order_url(config: Mapping[str, Any], order: Order) -> str:
    """The order's page, as a link that works from a mail client."""
    base = str(config["PUBLIC_URL"]).rstrip("/")
    return f"{base}/orders/{order.public_id}"


def send_receipt(session: Session, config: Mapping[str, Any], order_id: int) -> None:
    """Write the paid order's receipt to the outbox once, and send it if SMTP is configured.

    An order that has gone, or was never paid, gets nothing. Raises TransientJobError when the
    mail server cannot be reached or refuses the message (the job retries), and OSError when
    the outbox cannot be written.
    """
    order = session.get(Order, order_id)
    if order is None or order.paid_at is None:
        return
    path = receipt_path(config, order)
    if not path.exists():
        _write_once(path, receipt_message(order, config).as_bytes())
    if config.get("SMTP_URL"):
        _send_once(path, config)


def receipt_message(order: Order, config: Mapping[str, Any]) -> EmailMessage:
    """The receipt for ``order`` as an e-mail: plain text, items, amounts, total and link."""
    sender_name, sender_address = parseaddr(config["MAIL_FROM"])
    domain = sender_address.rpartition("@")[2] or "megabox.invalid"
    message = EmailMessage()
    message["Subject"] = f"Your Megabox receipt for order {order.public_id}"
    message["From"] = Address(sender_name, addr_spec=sender_address)
    message["To"] = Address(order.buyer.display_name, addr_spec=order.email)
    message["Date"] = format_datetime(order.paid_at or order.created_at)
    message["Message-ID"] = f"<receipt.{order.public_id}@{domain}>"
    message.set_content(receipt_text(order, config))
    return message


def receipt_text(order: Order, config: Mapping[str, Any]) -> str:
    """The receipt's body: a line per item, what was added above the minimum, the total."""

    def money(minor: int) -> str:
        return Money(minor, order.currency).format()

    rows: list[tuple[str, str]] = []
    for item in order.items:
        kind = "track" if item.kind is ItemKind.TRACK else "release"
        rows.append((f"{item.title} ({kind})", money(item.amount_minor)))
        if 0 < item.extra_minor < item.amount_minor:
            rows.append((f"  including {money(item.extra_minor)} you chose to add", ""))
    rows.append(("Total", money(order.total_minor)))
    width = max(len(label) for label, _ in rows) + 2
    amount_width = max(len(amount) for _, amount in rows)
    table = [f"{label:<{width}}{amount:>{amount_width}}".rstrip() for label, amount in rows]
    table.insert(-1, "-" * (width + amount_width))
    paid_on = (order.paid_at or order.created_at).strftime("%B %-d, %Y")
    opening = (
        "Your free download is ready."
        if order.total_minor == 0
        else f"Thank you for your purchase. We received your payment on {paid_on}."
    )
    return "\n".join(
        [
            f"Hello {order.buyer.display_name},",
            "",
            opening,
            "",
            f"Order {order.public_id}",
            "",
            *table,
            "",
            "Your order, and your downloads once they are ready:",
            order_url(config, order),
            "",
            "Megabox: artist-direct music.",
            "",
        ]
    )


def _write_once(path: Path, content: bytes) -> None:
    """Create ``path`` with ``content`` atomically; leave it alone if it exists already."""
    path.parent.mkdir(mode=OUTBOX_DIR_MODE, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, RECEIPT_FILE_MODE)
        try:
            # A hard link never replaces an existing name, unlike a rename: the first writer wins.
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)


def _send_once(path: Path, config: Mapping[str, Any]) -> None:
    marker = path.parent / SENT_DIR / path.stem
    if marker.exists():
        return
    _smtp_send(path.read_bytes(), config)
    marker.parent.mkdir(mode=OUTBOX_DIR_MODE, exist_ok=True)
    marker.touch(mode=RECEIPT_FILE_MODE)


def _smtp_send(raw: bytes, config: Mapping[str, Any]) -> None:
    """Hand the message to the SMTP server of ``SMTP_URL``. Raises TransientJobError."""
    url = urlsplit(config["SMTP_URL"])
    if url.scheme not in SMTP_DEFAULT_PORTS or not url.hostname:
        raise ValueError("SMTP_URL must look like smtp://host:port or smtps://host:port")
    message = message_from_bytes(raw, policy=policy.default)
    connect = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
    try:
        with connect(
            url.hostname, url.port or SMTP_DEFAULT_PORTS[url.scheme], timeout=SMTP_TIMEOUT_SECONDS
        ) as server:
            if url.username:
                server.login(unquote(url.username), unquote(url.password or ""))
            server.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise TransientJobError(f"the mail server did not take the receipt: {exc}") from exc
