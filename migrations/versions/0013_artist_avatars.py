"""Catalogue: artist avatars, stored in the vault as square JPEG thumbnails

Revision ID: 0013_artist_avatars
Revises: 0012_statement_lz4
Create Date: 2026-12-05 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_artist_avatars'
down_revision = '0012_statement_lz4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('artist_avatars',
    sa.Column('artist_id', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('object_id', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_artist_avatars_artist_id_artists'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['object_id'], ['vault_objects.id'], name=op.f('fk_artist_avatars_object_id_vault_objects')),
    sa.PrimaryKeyConstraint('artist_id', 'size', name=op.f('pk_artist_avatars'))
    )


def downgrade():
    op.drop_table('artist_avatars')
