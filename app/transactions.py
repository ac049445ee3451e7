"""Acting on a transaction's outcome: the one mechanism for side effects outside the database.

Work that must not happen unless the database agrees (enqueueing a job, deleting a file or a
stored object) is registered with ``after_commit``; work that undoes something done ahead of
the commit (ciphertext written by a put, a spool file created) is registered with
``on_rollback``. Both follow savepoints: a callback registered inside a savepoint that rolls
back is settled with that savepoint (``on_rollback`` callbacks run, ``after_commit`` ones are
dropped), while one registered in a savepoint that is released waits for the outermost
transaction.

Callbacks take no arguments and run once at most. An ``after_commit`` callback that raises is
logged and the others still run: the commit has happened, so raising would tell the caller
that it had not. The same holds for ``on_rollback`` callbacks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, scoped_session

logger = logging.getLogger(__name__)

Callback = Callable[[], object]
_PENDING_KEY = "megabox.transaction_callbacks"


@dataclass(frozen=True, eq=False)
class _Pending:
    callback: Callback
    # True: run once the outermost transaction commits. False: run if the work is undone.
    on_commit: bool
    # The innermost transaction or savepoint that was open when it was registered.
    transaction: SessionTransaction


def within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    """Whether ``transaction`` is ``ancestor`` or a savepoint nested inside it."""
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def after_commit(session: Session | scoped_session[Any], callback: Callback) -> None:
    """Run ``callback()`` once the session's outermost transaction commits.

    It is dropped if that transaction, or the savepoint open now, rolls back, or if the
    session closes without committing. Opens a transaction when none is open, so that a
    rollback before any query still drops it.
    """
    _register(session, callback, on_commit=True)


def on_rollback(session: Session | scoped_session[Any], callback: Callback) -> None:
    """Run ``callback()`` if the work done now is undone: the transaction, or the savepoint
    open now, rolls back, or the session closes without committing. Dropped on commit."""
    _register(session, callback, on_commit=False)


def _register(session: Session | scoped_session[Any], callback: Callback, *, on_commit: bool) -> None:
    real = session() if isinstance(session, scoped_session) else session
    if not real.in_transaction():
        real.begin()
    transaction = real.get_nested_transaction() or real.get_transaction()
    assert transaction is not None  # begun above
    real.info.setdefault(_PENDING_KEY, []).append(_Pending(callback, on_commit, transaction))


def _run(item: _Pending, outcome: str) -> None:
    try:
        item.callback()
    except Exception:
        logger.exception("a callback after %s failed: %r", outcome, item.callback)


def _settle_undone(session: Session, ended: SessionTransaction) -> None:
    """``ended`` (a transaction or savepoint) rolled back: run its rollback callbacks."""
    pending: list[_Pending] = session.info.get(_PENDING_KEY, [])
    undone = [item for item in pending if within(item.transaction, ended)]
    if not undone:
        return
    session.info[_PENDING_KEY] = [item for item in pending if not within(item.transaction, ended)]
    for item in undone:
        if not item.on_commit:
            _run(item, "a rollback")


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released; the outermost transaction still decides
    for item in session.info.pop(_PENDING_KEY, []):
        if item.on_commit:
            _run(item, "a commit")


@event.listens_for(Session, "after_soft_rollback")
def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    _settle_undone(session, previous_transaction)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended without a commit (a commit has settled everything by
    # now): a rollback, or a close that rolled back.
    if transaction.parent is None:
        _settle_undone(session, transaction)
