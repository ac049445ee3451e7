from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.vault.s3_server import moto_s3


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url
