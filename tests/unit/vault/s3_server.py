"""An S3 endpoint for tests: moto's server on 127.0.0.1, spoken to over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "vault-tests",
    "AWS_SECRET_ACCESS_KEY": "vault-tests",
}


@contextmanager
def moto_s3() -> Iterator[str]:
    """Run a moto server on a free port with test credentials in the environment; yield its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in CREDENTIALS.items():
                patch.setenv(name, value)
            yield f"http://{host}:{port}"
    finally:
        server.stop()
