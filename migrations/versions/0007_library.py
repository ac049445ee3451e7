"""Library: the download cache (a track in a format, per delivered tags) and key-in-link rows.

Revision ID: 0007_library
Revises: 0006_commerce


"""
from alembic import op
import sqlalchemy as sa

import app.timestamps


# revision identifiers, used by Alembic.
revision = '0007_library'
down_revision = '0006_commerce'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('download_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('tags_digest', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Enum('pending', 'processing', 'ready', 'failed', name='download_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('object_id', sa.String(length=32), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('progress >= 0 AND progress <= 1', name=op.f('ck_download_files_progress_fraction')),
    sa.CheckConstraint('size IS NULL OR size >= 0', name=op.f('ck_download_files_size_non_negative')),
    sa.ForeignKeyConstraint(['object_id'], ['vault_objects.id'], name=op.f('fk_download_files_object_id_vault_objects')),
    sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], name=op.f('fk_download_files_track_id_tracks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_download_files')),
    sa.UniqueConstraint('track_id', 'format', 'tags_digest', name=op.f('uq_download_files_track_id'))
    )
    op.create_table('key_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=43), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('order_item_id', sa.Integer(), nullable=False),
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('object_id', sa.String(length=32), nullable=False),
    sa.Column('wrapped_key', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', app.timestamps.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['object_id'], ['vault_objects.id'], name=op.f('fk_key_links_object_id_vault_objects')),
    sa.ForeignKeyConstraint(['order_item_id'], ['order_items.id'], name=op.f('fk_key_links_order_item_id_order_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_key_links_owner_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], name=op.f('fk_key_links_track_id_tracks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_key_links')),
    sa.UniqueConstraint('token', name=op.f('uq_key_links_token'))
    )
    with op.batch_alter_table('key_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_key_links_object_id'), ['object_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_key_links_order_item_id'), ['order_item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_key_links_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_key_links_track_id'), ['track_id'], unique=False)



def downgrade():
    with op.batch_alter_table('key_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_key_links_track_id'))
        batch_op.drop_index(batch_op.f('ix_key_links_owner_id'))
        batch_op.drop_index(batch_op.f('ix_key_links_order_item_id'))
        batch_op.drop_index(batch_op.f('ix_key_links_object_id'))

    op.drop_table('key_links')
    op.drop_table('download_files')
