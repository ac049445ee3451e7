"""Ingest: uploads, track media, release covers, and fields the artist typed.

Revision ID: 0003
Revises: 0002

"""
from alembic import op
import sqlalchemy as sa

import app.timestamps


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('release_covers',
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('object_id', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['object_id'], ['vault_objects.id'], name=op.f('fk_release_covers_object_id_vault_objects')),
    sa.ForeignKeyConstraint(['release_id'], ['releases.id'], name=op.f('fk_release_covers_release_id_releases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('release_id', 'size', name=op.f('pk_release_covers'))
    )
    op.create_table('track_media',
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('artist_id', sa.Integer(), nullable=False),
    sa.Column('master_sha256', sa.String(length=64), nullable=False),
    sa.Column('master_object_id', sa.String(length=32), nullable=False),
    sa.Column('opus_object_id', sa.String(length=32), nullable=False),
    sa.Column('mp3_object_id', sa.String(length=32), nullable=False),
    sa.Column('original_filename', sa.String(length=255), nullable=False),
    sa.Column('container', sa.String(length=32), nullable=False),
    sa.Column('codec', sa.String(length=32), nullable=False),
    sa.Column('sample_rate', sa.Integer(), nullable=False),
    sa.Column('bit_depth', sa.Integer(), nullable=True),
    sa.Column('channels', sa.Integer(), nullable=False),
    sa.Column('loudness_lufs', sa.Float(), nullable=True),
    sa.Column('true_peak_dbtp', sa.Float(), nullable=True),
    sa.Column('gain_db', sa.Float(), nullable=True),
    sa.Column('waveform', sa.JSON(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('created_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_track_media_artist_id_artists'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['master_object_id'], ['vault_objects.id'], name=op.f('fk_track_media_master_object_id_vault_objects')),
    sa.ForeignKeyConstraint(['mp3_object_id'], ['vault_objects.id'], name=op.f('fk_track_media_mp3_object_id_vault_objects')),
    sa.ForeignKeyConstraint(['opus_object_id'], ['vault_objects.id'], name=op.f('fk_track_media_opus_object_id_vault_objects')),
    sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], name=op.f('fk_track_media_track_id_tracks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('track_id', name=op.f('pk_track_media')),
    sa.UniqueConstraint('artist_id', 'master_sha256', name=op.f('uq_track_media_artist_id'))
    )
    op.create_table('uploads',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('artist_id', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('track_id', sa.Integer(), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('received', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Enum('uploading', 'processing', 'ready', 'failed', name='upload_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('error_code', sa.String(length=40), nullable=True),
    sa.Column('error_message', sa.String(length=500), nullable=True),
    sa.Column('created_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.timestamps.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_uploads_artist_id_artists'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['release_id'], ['releases.id'], name=op.f('fk_uploads_release_id_releases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], name=op.f('fk_uploads_track_id_tracks'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_uploads_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_uploads'))
    )
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_uploads_artist_id'), ['artist_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_uploads_release_id'), ['release_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_uploads_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_fields', sa.JSON(), nullable=False, server_default='[]'))

    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_fields', sa.JSON(), nullable=False, server_default='[]'))



def downgrade():
    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.drop_column('locked_fields')

    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_column('locked_fields')

    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_uploads_user_id'))
        batch_op.drop_index(batch_op.f('ix_uploads_release_id'))
        batch_op.drop_index(batch_op.f('ix_uploads_artist_id'))

    op.drop_table('uploads')
    op.drop_table('track_media')
    op.drop_table('release_covers')
