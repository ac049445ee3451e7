"""Statements: compress frozen statements' content with lz4 on PostgreSQL

Revision ID: 0012_statement_lz4
Revises: 0011_statements
Create Date: 2026-12-03 15:00:00

pglz took about 0.2 s to store a 100k-line statement (bench/statements.py); lz4 is several
times faster at a similar size. Debian's PostgreSQL 15 is built with it.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0012_statement_lz4'
down_revision = '0011_statements'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE statements ALTER COLUMN content SET COMPRESSION lz4')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE statements ALTER COLUMN content SET COMPRESSION pglz')
