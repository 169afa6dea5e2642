"""Retention by tier (L2): org tiers, signed purge records, and `purge_segment`, the one path
that may delete audit rows: whole expired segments covered by a checkpoint, with a purge record
written first in the same transaction; their Merkle nodes are kept."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "audit"
ROLE = "helios_audit"

# The periods of helios.audit.domain.retention.RETENTION, enforced again in the database so the
# service role cannot purge what its org's tier still keeps.
_RETENTION_PERIOD = f"""
CREATE FUNCTION "{S}".retention_period(tier text) RETURNS interval
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE tier
    WHEN 'free' THEN interval '90 days'
    WHEN 'starter' THEN interval '366 days'
    WHEN 'business' THEN interval '1096 days'
    WHEN 'enterprise' THEN interval '2557 days'
  END
$$
"""

# The append-only trigger (audit_log and purges) lets one thing through: a DELETE of audit_log
# rows while `helios.audit_purge` is on (only purge_segment turns it on, for its own duration)
# and a purge record covering the row exists. TRUNCATE and UPDATE are refused for everyone.
_REFUSE_CHANGE = f"""
CREATE OR REPLACE FUNCTION "{S}".refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW' AND TG_TABLE_NAME = 'audit_log'
     AND current_setting('helios.audit_purge', true) = 'on' THEN
    IF EXISTS (
      SELECT 1 FROM "{S}".purges p
      WHERE p.org_id = OLD.org_id AND p.first_index <= OLD.org_seq AND OLD.org_seq < p.end_index
    ) THEN
      RETURN OLD;
    END IF;
  END IF;
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$
"""  # noqa: S608 - constant schema name

_REFUSE_CHANGE_0001 = f"""
CREATE OR REPLACE FUNCTION "{S}".refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$
"""

# Refusals use two SQLSTATEs the store maps to gRPC codes: 55000 (the log is not in a state that
# allows the purge: FAILED_PRECONDITION) and 42501 (the tier does not allow it: PERMISSION_DENIED).
_PURGE_SEGMENT = f"""
CREATE FUNCTION "{S}".purge_segment(
  p_org text, p_level integer, p_idx bigint, p_cutoff timestamptz
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET helios.audit_purge = 'off'
AS $$
DECLARE
  v_first bigint;
  v_end bigint;
  v_tier text;
  v_rows bigint;
  v_newest timestamptz;
  v_node bytea;
  v_deleted bigint;
BEGIN
  IF p_org IS NULL OR p_level IS NULL OR p_idx IS NULL OR p_cutoff IS NULL
     OR p_level < 1 OR p_level > 30 OR p_idx < 0 THEN
    RAISE EXCEPTION 'purge refused: no such segment (level %, idx %)', p_level, p_idx
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  v_first := p_idx << p_level;
  v_end := (p_idx + 1) << p_level;
  -- one purger per org at a time (reentrant: the service takes it first in the same transaction)
  PERFORM pg_advisory_xact_lock(hashtext('helios.audit.purge'), hashtext(p_org));

  SELECT tier INTO v_tier FROM "{S}".org_retention WHERE org_id = p_org;
  IF v_tier IS NULL THEN
    RAISE EXCEPTION 'purge refused: org % has no retention tier', p_org
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF p_cutoff > clock_timestamp() - "{S}".retention_period(v_tier) THEN
    RAISE EXCEPTION 'purge refused: cutoff % is more recent than tier % allows', p_cutoff, v_tier
      USING ERRCODE = 'insufficient_privilege';
  END IF;

  SELECT count(*), max(occurred_at) INTO v_rows, v_newest
  FROM "{S}".audit_log
  WHERE org_id = p_org AND org_seq >= v_first AND org_seq < v_end;
  IF v_rows <> v_end - v_first THEN
    RAISE EXCEPTION 'purge refused: segment [%, %) of org % is not whole in the log (% rows)',
      v_first, v_end, p_org, v_rows
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF v_newest >= p_cutoff THEN
    RAISE EXCEPTION 'purge refused: segment [%, %) has events at or after the cutoff %',
      v_first, v_end, p_cutoff
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NOT EXISTS (
    SELECT 1 FROM "{S}".checkpoints WHERE org_id = p_org AND tree_size >= v_end
  ) THEN
    RAISE EXCEPTION 'purge refused: no checkpoint of org % covers [%, %)', p_org, v_first, v_end
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  SELECT hash INTO v_node FROM "{S}".merkle_nodes
  WHERE org_id = p_org AND level = p_level AND idx = p_idx;
  IF v_node IS NULL THEN
    RAISE EXCEPTION 'purge refused: Merkle node (%, %) of org % is missing', p_level, p_idx, p_org
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF NOT EXISTS (
    SELECT 1 FROM "{S}".purges
    WHERE org_id = p_org AND first_index = v_first AND end_index = v_end AND level = p_level
      AND idx = p_idx AND range_hash = v_node AND newest_occurred_at = v_newest
      AND cutoff = p_cutoff AND tier = v_tier
  ) THEN
    RAISE EXCEPTION 'purge refused: no purge record of org % matches [%, %)', p_org, v_first, v_end
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;

  PERFORM set_config('helios.audit_purge', 'on', true);
  DELETE FROM "{S}".audit_log WHERE org_id = p_org AND org_seq >= v_first AND org_seq < v_end;
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  PERFORM set_config('helios.audit_purge', 'off', true);
  RETURN v_deleted;
END $$
"""  # noqa: S608 - constant schema name

_PURGE_SIGNATURE = f'"{S}".purge_segment(text, integer, bigint, timestamptz)'


def upgrade() -> None:
    op.create_table(
        "org_retention",
        sa.Column("org_id", sa.String(64), primary_key=True),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "tier IN ('free', 'starter', 'business', 'enterprise')", name="org_retention_tier"
        ),
        schema=S,
    )
    op.create_table(
        "purges",
        sa.Column("org_id", sa.String(64), primary_key=True),
        sa.Column("first_index", sa.BigInteger, primary_key=True),
        sa.Column("end_index", sa.BigInteger, nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("idx", sa.BigInteger, nullable=False),
        sa.Column("range_hash", sa.LargeBinary, nullable=False),
        sa.Column("newest_occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(200), nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.CheckConstraint(
            "level BETWEEN 1 AND 30 AND idx >= 0 AND first_index = idx << level "
            "AND end_index = (idx + 1) << level",
            name="purges_segment",
        ),
        sa.CheckConstraint("newest_occurred_at < cutoff", name="purges_before_cutoff"),
        schema=S,
    )
    op.execute(_RETENTION_PERIOD)
    op.execute(_REFUSE_CHANGE)
    op.execute(
        f'CREATE TRIGGER purges_append_only BEFORE UPDATE OR DELETE ON "{S}".purges '
        f'FOR EACH ROW EXECUTE FUNCTION "{S}".refuse_change()'
    )
    op.execute(
        f'CREATE TRIGGER purges_no_truncate BEFORE TRUNCATE ON "{S}".purges '
        f'FOR EACH STATEMENT EXECUTE FUNCTION "{S}".refuse_change()'
    )
    op.execute(_PURGE_SEGMENT)
    op.execute(f"REVOKE ALL ON FUNCTION {_PURGE_SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {_PURGE_SIGNATURE} TO {ROLE}")
    # Explicit grants (not grant_statements, which grants UPDATE and DELETE on every table):
    # tiers are upserted; purge records, like the log, are only inserted and read.
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON "{S}".org_retention TO {ROLE}')
    op.execute(f'GRANT SELECT, INSERT ON "{S}".purges TO {ROLE}')


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {_PURGE_SIGNATURE}")
    op.execute(_REFUSE_CHANGE_0001)
    op.drop_table("purges", schema=S)
    op.drop_table("org_retention", schema=S)
    op.execute(f'DROP FUNCTION "{S}".retention_period(text)')
