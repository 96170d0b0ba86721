"""The target schema (DESIGN §5): one SQLAlchemy Core definition shared by every dialect.

It is a public contract: admins query these tables. Bump SCHEMA_VERSION on any change and teach
`Loader.prepare` how to get there from the previous version (so far: add nullable columns).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

# 2: cm_runs.host and cm_runs.pid (a killed run's row is found and marked `interrupted`). Columns added
# by a version are nullable, so Loader.prepare upgrades an older schema with ALTER TABLE ADD COLUMN.
SCHEMA_VERSION = 2

# MySQL needs an explicit fractional-seconds precision to keep microseconds (Slack ts has them).
Timestamp = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
# jsonb on PostgreSQL so admins can index and query props; JSON elsewhere.
Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
Id = sa.String(36)
Name = sa.String(255)
# MEDIUMTEXT on MySQL: TEXT stops at 64 KiB, which long messages and props exceed.
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
RowHash = sa.String(32)


def build_metadata(prefix: str = "cm_") -> sa.MetaData:
    """All cm_* tables; `prefix` lets an admin keep several migrations apart in one database."""
    md = sa.MetaData()
    p = prefix

    def record_table(name: str, *columns: sa.Column, indexes: tuple[tuple[str, ...], ...] = ()) -> sa.Table:
        table = sa.Table(
            f"{p}{name}",
            md,
            sa.Column("id", Id, primary_key=True),
            sa.Column("source", sa.String(32), nullable=False),
            sa.Column("source_id", Name, nullable=False),
            *columns,
            sa.Column("props", Json),
            # Hash of every other column: lets upserts skip rows whose content did not change.
            sa.Column("row_hash", RowHash, nullable=False),
        )
        for cols in indexes:
            sa.Index(f"ix_{p}{name}_{'_'.join(cols)}", *(table.c[c] for c in cols))
        return table

    record_table("teams", sa.Column("name", Name, nullable=False), sa.Column("display_name", Name),
                 sa.Column("description", LongText))
    record_table(
        "users",
        sa.Column("username", Name, nullable=False),
        sa.Column("email", Name),
        sa.Column("display_name", Name),
        sa.Column("first_name", Name),
        sa.Column("last_name", Name),
        sa.Column("is_bot", sa.Boolean, nullable=False),
        sa.Column("is_deleted", sa.Boolean, nullable=False),
        sa.Column("role", sa.String(64)),
        sa.Column("timezone", sa.String(64)),
        indexes=(("username",),),
    )
    record_table(
        "channels",
        sa.Column("team_id", Id),
        sa.Column("name", Name, nullable=False),
        sa.Column("display_name", Name),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("topic", LongText),
        sa.Column("purpose", LongText),
        sa.Column("created_at", Timestamp),
        sa.Column("creator_id", Id),
        sa.Column("archived_at", Timestamp),
    )
    sa.Table(
        f"{p}channel_members",
        md,
        sa.Column("channel_id", Id, primary_key=True),
        sa.Column("user_id", Id, primary_key=True),
        sa.Column("row_hash", RowHash, nullable=False),
    )
    record_table(
        "messages",
        sa.Column("channel_id", Id, nullable=False),
        sa.Column("user_id", Id),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("text", LongText, nullable=False),
        sa.Column("thread_root_id", Id),
        sa.Column("edited_at", Timestamp),
        sa.Column("deleted_at", Timestamp),
        sa.Column("is_pinned", sa.Boolean, nullable=False),
        indexes=(("channel_id", "created_at"), ("thread_root_id",)),
    )
    sa.Table(
        f"{p}reactions",
        md,
        sa.Column("message_id", Id, primary_key=True),
        sa.Column("emoji", sa.String(191), primary_key=True),
        sa.Column("user_id", Id, primary_key=True),
        sa.Column("created_at", Timestamp),
        sa.Column("row_hash", RowHash, nullable=False),
    )
    record_table(
        "files",
        sa.Column("message_id", Id),
        sa.Column("name", LongText, nullable=False),
        sa.Column("mime_type", Name),
        sa.Column("size", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
        sa.Column("source_url", LongText),
        sa.Column("path", LongText),
        sa.Column("created_at", Timestamp),
        indexes=(("message_id",),),
    )
    record_table(
        "emoji",
        sa.Column("name", Name, nullable=False),
        sa.Column("creator_id", Id),
        sa.Column("file_id", Id),
    )
    sa.Table(
        f"{p}runs",
        md,
        sa.Column("id", Id, primary_key=True),
        sa.Column("command", sa.String(32), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("location", LongText, nullable=False),
        sa.Column("target", LongText, nullable=False),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("finished_at", Timestamp),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("counts", Json),
        # The process that runs it: lets a later run tell a killed run (status left `running`) from a live one.
        sa.Column("host", Name),
        sa.Column("pid", sa.Integer),
    )
    sa.Table(
        f"{p}sync_state",
        md,
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(191), primary_key=True),
        sa.Column("channel_id", Id, primary_key=True),
        sa.Column("cursor", sa.String(255), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
    )
    sa.Table(
        f"{p}schema_version",
        md,
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("applied_at", Timestamp, nullable=False),
    )
    return md
