"""Statements: each closed period's frozen statement per artist and currency

Revision ID: 0011_statements
Revises: 0010_payouts
Create Date: 2026-12-03 14:30:00

"""
from alembic import op
import sqlalchemy as sa

import app.timestamps


# revision identifiers, used by Alembic.
revision = '0011_statements'
down_revision = '0010_payouts'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('statements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('artist_id', sa.Integer(), nullable=False),
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_statements_artist_id_artists'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['period_id'], ['periods.id'], name=op.f('fk_statements_period_id_periods')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statements')),
    sa.UniqueConstraint('artist_id', 'period_id', 'currency', name=op.f('uq_statements_artist_id'))
    )
    with op.batch_alter_table('statements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_statements_period_id'), ['period_id'], unique=False)


def downgrade():
    with op.batch_alter_table('statements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_statements_period_id'))

    op.drop_table('statements')
