"""Ledger: the double-entry journal (accounts, transactions, entries), append-only.

On PostgreSQL a trigger refuses UPDATE and DELETE of entries and transactions, and DELETE of
accounts: a correction is a reversal. TRUNCATE fires no row trigger, so the test suite can
still empty the tables. SQLite gets no trigger (the suite empties its tables with DELETE); the
ORM guard in app.ledger.models covers both.

Revision ID: 0005_ledger
Revises: 0004_session_epoch

"""
from alembic import op
import sqlalchemy as sa

import app.timestamps


# revision identifiers, used by Alembic.
revision = '0005_ledger'
down_revision = '0004_session_epoch'
branch_labels = None
depends_on = None

APPEND_ONLY_FUNCTION = 'ledger_refuse_change'
APPEND_ONLY_TRIGGERS = (
    ('ledger_entries_append_only', 'ledger_entries', 'UPDATE OR DELETE'),
    ('ledger_transactions_append_only', 'ledger_transactions', 'UPDATE OR DELETE'),
    ('ledger_accounts_never_deleted', 'ledger_accounts', 'DELETE'),
)


def upgrade():
    op.create_table('ledger_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.Enum('asset', 'liability', 'revenue', 'expense', name='ledger_account_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('artist_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_ledger_accounts_artist_id_artists'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_accounts')),
    sa.UniqueConstraint('code', name=op.f('uq_ledger_accounts_code')),
    sa.UniqueConstraint('id', 'currency', name=op.f('uq_ledger_accounts_id'))
    )
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_accounts_artist_id'), ['artist_id'], unique=False)

    op.create_table('ledger_transactions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('reverses_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.Column('effective_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['reverses_id'], ['ledger_transactions.id'], name=op.f('fk_ledger_transactions_reverses_id_ledger_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_transactions')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_ledger_transactions_idempotency_key'))
    )
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_transactions_effective_at'), ['effective_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_transactions_reverses_id'), ['reverses_id'], unique=False)

    op.create_table('ledger_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('transaction_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.ForeignKeyConstraint(['account_id', 'currency'], ['ledger_accounts.id', 'ledger_accounts.currency'], name=op.f('fk_ledger_entries_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transactions.id'], name=op.f('fk_ledger_entries_transaction_id_ledger_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries'))
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entries_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_transaction_id'), ['transaction_id'], unique=False)

    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            f"""
            CREATE FUNCTION {APPEND_ONLY_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the ledger is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
                    USING HINT = 'post a reversal instead';
            END
            $$
            """
        )
        for trigger, table, events in APPEND_ONLY_TRIGGERS:
            op.execute(
                f'CREATE TRIGGER {trigger} BEFORE {events} ON {table} '
                f'FOR EACH ROW EXECUTE FUNCTION {APPEND_ONLY_FUNCTION}()'
            )


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for trigger, table, _ in APPEND_ONLY_TRIGGERS:
            op.execute(f'DROP TRIGGER {trigger} ON {table}')
        op.execute(f'DROP FUNCTION {APPEND_ONLY_FUNCTION}()')

    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entries_transaction_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_account_id'))

    op.drop_table('ledger_entries')
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_transactions_reverses_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_transactions_effective_at'))

    op.drop_table('ledger_transactions')
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_accounts_artist_id'))

    op.drop_table('ledger_accounts')
