"""Work that follows a session's transaction: shared by the vault and the job queue."""

from __future__ import annotations

from sqlalchemy.orm import SessionTransaction


def within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    """Whether ``transaction`` is ``ancestor`` or a savepoint nested inside it."""
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False
