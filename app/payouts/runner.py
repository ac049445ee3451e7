"""One payout run: the unit of work that commits between its steps.

A run cannot be one transaction: each payout's claim (its pending row and ledger posting) must
be committed before the transfer is asked for, so that a run cut off after the transfer still
knows about it, and no transaction may stay open across a call to the gateway. So the runner
commits after each step, as a job runner does, and leaves the rules to ``app.payouts.service``:

1. write the run;
2. ask again for the transfers of payouts still pending (same idempotency keys: no second
   transfer);
3. for each balance ``plan_payouts`` finds: claim it, commit, transfer, record the outcome,
   commit;
4. count and close the run.

Two runs at once are safe: claims are serialised on the artist's payable account and the
unique pending index, and a transfer asked for twice is one transfer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.ledger.money import Money
from app.payouts import service
from app.payouts.errors import PayoutGatewayUnavailable, TransferRefused
from app.payouts.gateways import PayoutGateway
from app.payouts.models import Payout, PayoutRun
from app.timestamps import utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    payout_id: int
    artist_id: int
    money: Money
    status: str  # "paid", "failed", or "pending" (the gateway's answer is unknown)
    detail: str = ""


@dataclass
class RunReport:
    run_id: int
    outcomes: list[Outcome] = field(default_factory=list)

    def of(self, status: str) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status == status]


def run_payouts(
    session: Session,
    gateway: PayoutGateway,
    config: Mapping[str, Any],
    *,
    clock: Callable[[], datetime] = utcnow,
) -> RunReport:
    """Pay every balance that is due, committing after each step (module docstring).

    Raises ValueError for a malformed ``PAYOUT_MINIMUMS``, before anything is written.
    """
    service.payout_minimums(config)
    run = service.start_run(session, clock())
    session.commit()
    report = RunReport(run.id)
    for payout_id in service.pending_payout_ids(session, gateway.name):
        session.commit()  # nothing of ours stays open across the call to the gateway
        _transfer(session, gateway, run, session.get_one(Payout, payout_id), report, clock)
    for planned in service.plan_payouts(session, config, gateway.name):
        try:
            payout = service.claim_payout(session, config, run, planned, gateway.name, clock())
            session.commit()
        except IntegrityError:
            # Another run wrote the pending payout of this balance first; it pays it.
            session.rollback()
            continue
        if payout is not None:
            _transfer(session, gateway, run, payout, report, clock)
    service.finish_run(session, session.get_one(PayoutRun, run.id), clock())
    session.commit()
    return report


def _transfer(
    session: Session,
    gateway: PayoutGateway,
    run: PayoutRun,
    payout: Payout,
    report: RunReport,
    clock: Callable[[], datetime],
) -> None:
    payout_id, artist_id = payout.id, payout.artist_id
    money = Money(payout.amount_minor, payout.currency)
    destination = service.transfer_destination(session, payout)
    key = payout.idempotency_key
    session.commit()
    try:
        reference = gateway.transfer(
            amount_minor=money.minor, currency=money.currency, destination=destination,
            idempotency_key=key, payout_id=payout_id,
        )  # fmt: skip
    except TransferRefused as exc:
        if service.record_refusal(session, payout_id, exc.message, run, clock()):
            report.outcomes.append(Outcome(payout_id, artist_id, money, "failed", exc.message))
        session.commit()
        return
    except PayoutGatewayUnavailable:
        logger.warning("payout %s: the gateway did not answer; the next run asks again", payout_id)
        report.outcomes.append(Outcome(payout_id, artist_id, money, "pending", "no answer"))
        return
    if service.record_transfer(session, payout_id, reference, run, clock()):
        report.outcomes.append(Outcome(payout_id, artist_id, money, "paid", reference))
    session.commit()
