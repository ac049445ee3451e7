"""Accounts: a session epoch per user, so sign-out and password changes end sessions.

A session or remember-me cookie names the user's epoch at sign-in; bumping it makes every
cookie that names an older one useless. Existing users start at 0 (their current cookies,
which name no epoch, are refused once: they sign in again).

Revision ID: 0004_session_epoch
Revises: 0003

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004_session_epoch'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), nullable=False, server_default='0'))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
