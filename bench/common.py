"""What the PostgreSQL benchmarks share: the database they are pointed at."""

from __future__ import annotations

import os
import sys

POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def postgres_url(script: str) -> str:
    """``MEGABOX_DATABASE_URL``, which must name PostgreSQL; otherwise exit with one line."""
    url = os.environ.get("MEGABOX_DATABASE_URL", "")
    if not url.startswith(POSTGRES_SCHEMES):
        sys.exit(
            f"{script}: set MEGABOX_DATABASE_URL to a PostgreSQL database of its own "
            "(it is rebuilt)"
        )
    return url
