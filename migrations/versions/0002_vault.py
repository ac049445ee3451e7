"""Vault: one record per encrypted object, holding its wrapped data key.

Revision ID: 0002
Revises: 0001

"""
from alembic import op
import sqlalchemy as sa

import app.timestamps


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('vault_objects',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=True),
    sa.Column('backend_key', sa.String(length=255), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('header', sa.LargeBinary(length=64), nullable=False),
    sa.Column('wrapped_dek', sa.LargeBinary(length=60), nullable=False),
    sa.Column('kek_version', sa.Integer(), nullable=False),
    sa.Column('created_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('size >= 0', name=op.f('ck_vault_objects_size_non_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vault_objects')),
    sa.UniqueConstraint('backend_key', name=op.f('uq_vault_objects_backend_key'))
    )
    with op.batch_alter_table('vault_objects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vault_objects_kek_version'), ['kek_version'], unique=False)


def downgrade():
    with op.batch_alter_table('vault_objects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vault_objects_kek_version'))

    op.drop_table('vault_objects')
