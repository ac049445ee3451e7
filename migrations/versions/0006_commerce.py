"""Commerce: orders and their items.

Revision ID: 0006_commerce
Revises: 0005_ledger


"""
from alembic import op
import sqlalchemy as sa

import app.timestamps


# revision identifiers, used by Alembic.
revision = '0006_commerce'
down_revision = '0005_ledger'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('buyer_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total_minor', sa.BigInteger(), nullable=False),
    sa.Column('fee_minor', sa.BigInteger(), nullable=False),
    sa.Column('refunded_minor', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'paid', 'partially_refunded', 'refunded', 'disputed', 'failed', 'expired', name='order_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('gateway', sa.String(length=20), nullable=False),
    sa.Column('checkout_session_id', sa.String(length=255), nullable=True),
    sa.Column('payment_reference', sa.String(length=255), nullable=True),
    sa.Column('charge_reference', sa.String(length=255), nullable=True),
    sa.Column('failure_reason', sa.String(length=500), nullable=False),
    sa.Column('dispute_reference', sa.String(length=255), nullable=True),
    sa.Column('dispute_state', sa.Enum('open', 'won', 'lost', name='dispute_state', native_enum=False, create_constraint=True, length=20), nullable=True),
    sa.Column('created_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.Column('paid_at', app.timestamps.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('fee_minor >= 0', name=op.f('ck_orders_fee_not_negative')),
    sa.CheckConstraint('refunded_minor >= 0 AND refunded_minor <= total_minor', name=op.f('ck_orders_refund_within_total')),
    sa.CheckConstraint('total_minor >= 0', name=op.f('ck_orders_total_not_negative')),
    sa.ForeignKeyConstraint(['buyer_id'], ['users.id'], name=op.f('fk_orders_buyer_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('checkout_session_id', name=op.f('uq_orders_checkout_session_id')),
    sa.UniqueConstraint('public_id', name=op.f('uq_orders_public_id'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_buyer_id'), ['buyer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_charge_reference'), ['charge_reference'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_payment_reference'), ['payment_reference'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_status'), ['status'], unique=False)

    op.create_table('order_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('artist_id', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('track_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.Enum('release', 'track', name='order_item_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('list_price_minor', sa.BigInteger(), nullable=False),
    sa.Column('minimum_minor', sa.BigInteger(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('extra_minor', sa.BigInteger(), nullable=False),
    sa.Column('artist_share_minor', sa.BigInteger(), nullable=False),
    sa.Column('platform_share_minor', sa.BigInteger(), nullable=False),
    sa.Column('fee_minor', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount_minor >= 0', name=op.f('ck_order_items_amount_not_negative')),
    sa.CheckConstraint('artist_share_minor + platform_share_minor = amount_minor', name=op.f('ck_order_items_split_is_whole')),
    sa.CheckConstraint('extra_minor >= 0 AND extra_minor <= amount_minor', name=op.f('ck_order_items_extra_within')),
    sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_order_items_artist_id_artists'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_items_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['release_id'], ['releases.id'], name=op.f('fk_order_items_release_id_releases'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], name=op.f('fk_order_items_track_id_tracks'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_items'))
    )
    with op.batch_alter_table('order_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_items_artist_id'), ['artist_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_items_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_items_release_id'), ['release_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_items_track_id'), ['track_id'], unique=False)



def downgrade():
    with op.batch_alter_table('order_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_items_track_id'))
        batch_op.drop_index(batch_op.f('ix_order_items_release_id'))
        batch_op.drop_index(batch_op.f('ix_order_items_order_id'))
        batch_op.drop_index(batch_op.f('ix_order_items_artist_id'))

    op.drop_table('order_items')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_status'))
        batch_op.drop_index(batch_op.f('ix_orders_payment_reference'))
        batch_op.drop_index(batch_op.f('ix_orders_created_at'))
        batch_op.drop_index(batch_op.f('ix_orders_charge_reference'))
        batch_op.drop_index(batch_op.f('ix_orders_buyer_id'))

    op.drop_table('orders')
