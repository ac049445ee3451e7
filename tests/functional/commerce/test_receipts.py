"""Receipts: one e-mail file per paid order in the outbox, and over SMTP when configured."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app.catalog.models import PricingMode
from app.commerce import receipts, service
from app.commerce.models import Order
from app.extensions import db
from app.jobs import TransientJobError, get_queue
from tests.factories import UserFactory

JOB_WAIT_SECONDS = 10


def paid_order(app: Flask, session: Any, pay: Any, *releases: Any, amounts: tuple[int | None, ...] = ()) -> Order:
    lines = [
        service.CartLine(release.id, amount_minor=amounts[i] if i < len(amounts) else None)
        for i, release in enumerate(releases)
    ]
    order = service.create_order(session, UserFactory(display_name="Ada Buyer"), lines, gateway="sandbox", config=app.config)
    session.commit()
    return pay(session, order, fee=30)


def read(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_a_paid_order_gets_one_receipt_with_its_items_and_total(
    app: Flask, session: Any, make_release: Any, pay: Any
) -> None:
    album = make_release(price=800, minimum=500, mode=PricingMode.NAME_YOUR_PRICE)
    single = make_release(price=199)
    order = paid_order(app, session, pay, album, single, amounts=(1200,))
    assert get_queue(app).wait_idle(JOB_WAIT_SECONDS)  # record_payment queued the receipt job

    outbox = Path(app.instance_path) / "outbox"
    assert [p.name for p in outbox.iterdir() if p.is_file()] == [f"{order.public_id}.eml"]
    message = read(outbox / f"{order.public_id}.eml")
    assert message["To"].addresses[0].addr_spec == order.email
    assert message["To"].addresses[0].display_name == "Ada Buyer"
    assert message["From"] == app.config["MAIL_FROM"]
    assert message["Subject"] == f"Your Megabox receipt for order {order.public_id}"
    assert message["Message-ID"] == f"<receipt.{order.public_id}@megabox.invalid>"
    body = message.get_content()
    assert message.get_content_type() == "text/plain"
    assert album.title in body and single.title in body
    assert "$12.00" in body and "including $7.00 you chose to add" in body and "$1.99" in body
    assert [line.split()[-1] for line in body.splitlines() if line.startswith("Total")] == ["$13.99"]
    assert f"/orders/{order.public_id}" in body


def test_sending_a_receipt_twice_leaves_one_file(app: Flask, session: Any, make_release: Any, pay: Any) -> None:
    order = paid_order(app, session, pay, make_release(price=500))
    assert get_queue(app).wait_idle(JOB_WAIT_SECONDS)
    path = receipts.receipt_path(app.config, order)
    first = path.read_bytes()
    for _ in range(2):
        receipts.send_receipt(session, app.config, order.id)
    assert path.read_bytes() == first
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary files left
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_unpaid_or_missing_orders_get_no_receipt(app: Flask, session: Any, make_release: Any) -> None:
    order = service.create_order(session, UserFactory(), [service.CartLine(make_release().id)], gateway="sandbox", config=app.config)
    session.commit()
    receipts.send_receipt(session, app.config, order.id)
    receipts.send_receipt(session, app.config, order.id + 1000)
    assert not receipts.outbox_path(app.config).exists()


def test_the_outbox_can_live_elsewhere_and_free_downloads_get_a_receipt_too(
    make_app: Any, tmp_path: Path, make_release: Any
) -> None:
    elsewhere = tmp_path / "mail" / "out"
    app = make_app(OUTBOX_PATH=str(elsewhere))
    with app.app_context():
        order = service.create_order(db.session, UserFactory(), [service.CartLine(make_release(price=0, mode=PricingMode.FREE).id)], gateway="sandbox", config=app.config)
        db.session.commit()
        assert get_queue(app).wait_idle(JOB_WAIT_SECONDS)
        body = read(elsewhere / f"{order.public_id}.eml").get_content()
        assert "Your free download is ready." in body and "$0.00" in body


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough of RFC 5321 for smtplib to hand over one message per connection."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 test ESMTP")
        while line := self.rfile.readline():
            command = line.decode().strip().upper()
            if command.startswith(("EHLO", "HELO")):
                self.reply("250 test")
            elif command.startswith(("MAIL", "RCPT", "RSET", "NOOP")):
                self.reply("250 OK")
            elif command == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                data = b"".join(iter(lambda: self.rfile.readline(), b".\r\n"))
                self.server.received.append(data)  # type: ignore[attr-defined]
                self.reply("250 queued")
            elif command == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_with_smtp_configured_the_receipt_is_also_sent_once(
    make_app: Any, make_release: Any, pay: Any, smtp_server: Any
) -> None:
    host, port = smtp_server.server_address
    app = make_app(SMTP_URL=f"smtp://{host}:{port}")
    with app.app_context():
        order = paid_order(app, db.session, pay, make_release(price=700))
        assert get_queue(app).wait_idle(JOB_WAIT_SECONDS)
        receipts.send_receipt(db.session, app.config, order.id)
        assert len(smtp_server.received) == 1
        sent = message_from_bytes(smtp_server.received[0], policy=policy.default)
        assert sent["Subject"] == f"Your Megabox receipt for order {order.public_id}"
        assert "$7.00" in sent.get_content()
        assert receipts.receipt_path(app.config, order).exists()


def test_an_unreachable_mail_server_is_retried_and_the_file_is_kept(
    make_app: Any, make_release: Any, pay: Any, smtp_server: Any
) -> None:
    host, port = smtp_server.server_address
    app = make_app(SMTP_URL=f"smtp://{host}:1", JOB_MAX_RETRIES=0)
    with app.app_context():
        order = paid_order(app, db.session, pay, make_release(price=700))
        assert get_queue(app).wait_idle(JOB_WAIT_SECONDS)
        with pytest.raises(TransientJobError):
            receipts.send_receipt(db.session, app.config, order.id)
        assert receipts.receipt_path(app.config, order).exists()
        assert smtp_server.received == []

        reachable = {**app.config, "SMTP_URL": f"smtp://{host}:{port}"}
        receipts.send_receipt(db.session, reachable, order.id)
        receipts.send_receipt(db.session, reachable, order.id)
        assert len(smtp_server.received) == 1
