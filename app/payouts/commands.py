"""``megabox payouts``: pay artists their balances, or see what a run would pay."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import click
from flask import current_app
from flask.cli import AppGroup

from app.cli import CommandError
from app.extensions import db
from app.ledger.money import Money
from app.payouts import service
from app.payouts.gateways import payout_gateway
from app.payouts.runner import RunReport, run_payouts

payouts_cli = AppGroup("payouts", help="Pay artists their balances.")


@payouts_cli.command("run")
@click.option("--dry-run", is_flag=True, help="Print what would be paid; write nothing.")
def run_command(dry_run: bool) -> None:
    """Pay every artist whose balance reaches the currency's minimum (PAYOUT_MINIMUMS).

    Each payout is a transfer with the idempotency key payout:<id>, posted to the ledger; a
    refused transfer is reversed there, so the artist's balance returns.
    """
    config = current_app.config
    gateway = payout_gateway(config)
    try:
        if dry_run:
            _print_plan(service.plan_payouts(db.session, config, gateway.name))
            return
        report = run_payouts(db.session, gateway, config)
    except ValueError as exc:  # a malformed PAYOUT_MINIMUMS
        raise CommandError(str(exc)) from None
    _print_report(report)


def _print_plan(planned: list[service.PlannedPayout]) -> None:
    for item in planned:
        click.echo(f"would pay {item.artist_slug} {item.currency} {item.money.format_plain()}")
    click.echo(f"dry run: {len(planned)} payout(s){_totals(p.money for p in planned)}; nothing written")


def _print_report(report: RunReport) -> None:
    for outcome in report.outcomes:
        click.echo(
            f"payout {outcome.payout_id} artist {outcome.artist_id} {outcome.money.currency} "
            f"{outcome.money.format_plain()}: {outcome.status} ({outcome.detail})"
        )
    paid, failed, pending = report.of("paid"), report.of("failed"), report.of("pending")
    click.echo(
        f"run {report.run_id}: {len(paid)} paid{_totals(o.money for o in paid)}, "
        f"{len(failed)} failed, {len(pending)} pending"
    )


def _totals(amounts: Iterable[Money]) -> str:
    sums: defaultdict[str, int] = defaultdict(int)
    for money in amounts:
        sums[money.currency] += money.minor
    parts = [f"{c} {Money(m, c).format_plain()}" for c, m in sorted(sums.items())]
    return f" ({', '.join(parts)})" if parts else ""
