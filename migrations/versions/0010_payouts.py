"""Payouts: payout accounts, runs and payouts

Revision ID: 0010_payouts
Revises: 0009_period_listeners
Create Date: 2026-12-03 14:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_payouts'
down_revision = '0009_period_listeners'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
