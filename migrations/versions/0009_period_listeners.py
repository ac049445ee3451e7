"""Pools: each period's listeners with their earning plays and impressions, plays by listener, and each track's counted plays by day

Revision ID: 0009_period_listeners
Revises: 0008_plays_ads_pools
Create Date: 2026-12-03 14:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_period_listeners'
down_revision = '0008_plays_ads_pools'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('period_listeners',
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('listener_id', BIG_ID, nullable=False),
    sa.Column('earning_plays', sa.BigInteger(), nullable=False),
    sa.Column('impressions', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('earning_plays >= 0', name=op.f('ck_period_listeners_earning_plays_non_negative')),
    sa.CheckConstraint('impressions >= 0', name=op.f('ck_period_listeners_impressions_non_negative')),
    sa.ForeignKeyConstraint(['listener_id'], ['listeners.id'], name=op.f('fk_period_listeners_listener_id_listeners'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['period_id'], ['periods.id'], name=op.f('fk_period_listeners_period_id_periods')),
    sa.PrimaryKeyConstraint('period_id', 'listener_id', name=op.f('pk_period_listeners'))
    )
    op.create_table('track_play_days',
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('plays', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('plays >= 0', name=op.f('ck_track_play_days_plays_non_negative')),
    sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], name=op.f('fk_track_play_days_track_id_tracks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('track_id', 'day', name=op.f('pk_track_play_days'))
    )
    op.create_index('ix_plays_period_listener', 'plays', ['period_id', 'listener_id'],
                    unique=False, postgresql_include=['track_id'],
                    postgresql_where=sa.text('earns'), sqlite_where=sa.text('earns'))
    # A closed period's allocation is a frozen record of the tracks and artists as they were.
    with op.batch_alter_table('period_allocations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_period_allocations_track_id_tracks'), type_='foreignkey')
        batch_op.drop_constraint(op.f('fk_period_allocations_artist_id_artists'), type_='foreignkey')
        batch_op.drop_index('ix_period_allocations_artist_id')
        batch_op.drop_index('ix_period_allocations_period_id')
        batch_op.drop_index('ix_period_allocations_track_id')
        batch_op.create_index('ix_period_allocations_period_track', ['period_id', 'track_id'], unique=False)
        batch_op.create_index('ix_period_allocations_artist_period', ['artist_id', 'period_id'], unique=False)
    # The counters of what landed before this revision.
    op.execute(
        "INSERT INTO period_listeners (period_id, listener_id, earning_plays, impressions) "
        "SELECT period_id, listener_id, sum(plays), sum(impressions) FROM ("
        " SELECT period_id, listener_id, count(*) AS plays, 0 AS impressions FROM plays"
        " WHERE earns AND period_id IS NOT NULL GROUP BY period_id, listener_id"
        " UNION ALL"
        " SELECT period_id, listener_id, 0, count(*) FROM ad_impressions"
        " GROUP BY period_id, listener_id"
        ") AS landed GROUP BY period_id, listener_id"
    )


    # Counted plays by track and UTC day (SQLite keeps UTC times as text).
    if op.get_bind().dialect.name == 'sqlite':
        day = "date(counted_at)"
    else:
        day = "CAST(timezone('UTC', counted_at) AS date)"
    op.execute(
        "INSERT INTO track_play_days (track_id, day, plays) "
        f"SELECT track_id, {day}, count(*) FROM plays WHERE outcome = 'counted' "
        f"GROUP BY track_id, {day}"
    )


def downgrade():
    with op.batch_alter_table('period_allocations', schema=None) as batch_op:
        batch_op.drop_index('ix_period_allocations_artist_period')
        batch_op.drop_index('ix_period_allocations_period_track')
        batch_op.create_index('ix_period_allocations_track_id', ['track_id'], unique=False)
        batch_op.create_index('ix_period_allocations_period_id', ['period_id'], unique=False)
        batch_op.create_index('ix_period_allocations_artist_id', ['artist_id'], unique=False)
        batch_op.create_foreign_key(op.f('fk_period_allocations_artist_id_artists'), 'artists', ['artist_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(op.f('fk_period_allocations_track_id_tracks'), 'tracks', ['track_id'], ['id'], ondelete='SET NULL')
    op.drop_table('track_play_days')
    op.drop_index('ix_plays_period_listener', table_name='plays')
    op.drop_table('period_listeners')
