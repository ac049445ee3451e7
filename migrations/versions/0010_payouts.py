"""Payouts: payout accounts, runs and payouts

Revision ID: 0010_payouts
Revises: 0009_period_listeners
Create Date: 2026-12-03 14:10:00

"""
from alembic import op
import sqlalchemy as sa

import app.timestamps


# revision identifiers, used by Alembic.
revision = '0010_payouts'
down_revision = '0009_period_listeners'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('payout_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('artist_id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=20), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('status', sa.Enum('onboarding', 'active', name='payout_account_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('created_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.Column('activated_at', app.timestamps.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_payout_accounts_artist_id_artists'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_accounts')),
    sa.UniqueConstraint('artist_id', name=op.f('uq_payout_accounts_artist_id')),
    sa.UniqueConstraint('external_id', name=op.f('uq_payout_accounts_external_id'))
    )
    op.create_table('payout_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('started_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', app.timestamps.UTCDateTime(timezone=True), nullable=True),
    sa.Column('paid_count', sa.Integer(), nullable=False),
    sa.Column('failed_count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_runs'))
    )
    op.create_table('payouts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('artist_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=20), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'paid', 'failed', 'reversed', name='payout_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('transfer_reference', sa.String(length=255), nullable=True),
    sa.Column('failure_message', sa.String(length=500), nullable=True),
    sa.Column('ledger_transaction_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.Column('settled_at', app.timestamps.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_payouts_amount_positive')),
    sa.ForeignKeyConstraint(['account_id'], ['payout_accounts.id'], name=op.f('fk_payouts_account_id_payout_accounts')),
    sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_payouts_artist_id_artists'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['ledger_transaction_id'], ['ledger_transactions.id'], name=op.f('fk_payouts_ledger_transaction_id_ledger_transactions')),
    sa.ForeignKeyConstraint(['run_id'], ['payout_runs.id'], name=op.f('fk_payouts_run_id_payout_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payouts'))
    )
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payouts_artist_id'), ['artist_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payouts_run_id'), ['run_id'], unique=False)
        # At most one pending payout per artist and currency: two runs at once pay once.
        batch_op.create_index('uq_payouts_one_pending', ['artist_id', 'currency'], unique=True,
                              postgresql_where=sa.text("status = 'pending'"),
                              sqlite_where=sa.text("status = 'pending'"))


def downgrade():
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.drop_index('uq_payouts_one_pending')
        batch_op.drop_index(batch_op.f('ix_payouts_run_id'))
        batch_op.drop_index(batch_op.f('ix_payouts_artist_id'))

    op.drop_table('payouts')
    op.drop_table('payout_runs')
    op.drop_table('payout_accounts')
