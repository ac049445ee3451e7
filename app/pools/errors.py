"""Pools' domain errors."""

from __future__ import annotations

from app.errors import Conflict, InvalidInput, NotFound


class PeriodClosed(Conflict):
    """The period is closed: its revenue, model and allocation are frozen."""

    code = "period_closed"


class PeriodNotOver(Conflict):
    """The period has not ended yet, and an early close was not asked for."""

    code = "period_not_over"


class InvalidRevenue(InvalidInput):
    code = "invalid_revenue"


class PeriodNotFound(NotFound):
    code = "period_not_found"
