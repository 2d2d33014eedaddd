"""Every SQL statement of the read model, in one place (the schema is in migrations/)."""

UPSERT_UNIT = """
INSERT INTO units (id, name, name_en, level, parent_id, households, lat, long)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, name_en = EXCLUDED.name_en,
  level = EXCLUDED.level, parent_id = EXCLUDED.parent_id, households = EXCLUDED.households,
  lat = EXCLUDED.lat, long = EXCLUDED.long
"""

UPSERT_CATEGORY = """
INSERT INTO categories (id, name, name_en, owning_level, lead_department, cooperating_departments, urgent)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, name_en = EXCLUDED.name_en,
  owning_level = EXCLUDED.owning_level, lead_department = EXCLUDED.lead_department,
  cooperating_departments = EXCLUDED.cooperating_departments, urgent = EXCLUDED.urgent
"""

# Event first: a retried activity finds its row and writes nothing twice.
INSERT_EVENT = """
INSERT INTO issue_events (issue_id, seq, at, kind, stage_from, stage_to, unit_id, actor_id, actor_role, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (issue_id, seq) DO NOTHING
"""

# The snapshot only moves forward: an older (lower seq) write never overwrites a newer one.
UPSERT_ISSUE = """
INSERT INTO issues (issue_id, workflow_id, channel, reference, category, grid_id, community_id, area_id,
  street_id, stage, owner_unit, overdue, due_at, outcome, reopens, created_at, updated_at, closed_at, seq, snapshot)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
ON CONFLICT (issue_id) DO UPDATE SET stage = EXCLUDED.stage, owner_unit = EXCLUDED.owner_unit,
  overdue = EXCLUDED.overdue, due_at = EXCLUDED.due_at, outcome = EXCLUDED.outcome, reopens = EXCLUDED.reopens,
  updated_at = EXCLUDED.updated_at, closed_at = EXCLUDED.closed_at, seq = EXCLUDED.seq, snapshot = EXCLUDED.snapshot
WHERE issues.seq < EXCLUDED.seq
"""

UPSERT_ASSIGNMENT = """
INSERT INTO assignments (issue_id, department_id, round, role, status, street_id, assigned_at,
  accept_due, accepted_at, resolve_due, resolved_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (issue_id, department_id, round) DO UPDATE SET status = EXCLUDED.status,
  accept_due = EXCLUDED.accept_due, accepted_at = EXCLUDED.accepted_at,
  resolve_due = EXCLUDED.resolve_due, resolved_at = EXCLUDED.resolved_at
"""

INSERT_PENALTY = """
INSERT INTO penalties (issue_id, deadline_key, unit_id, kind, due_at, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (issue_id, deadline_key) DO NOTHING
"""

SELECT_EVENTS = "SELECT * FROM issue_events WHERE issue_id = $1 ORDER BY seq"
SELECT_ISSUE = "SELECT * FROM issues WHERE issue_id = $1"
SELECT_PENALTIES = "SELECT * FROM penalties WHERE issue_id = $1 ORDER BY deadline_key"
SELECT_ASSIGNMENTS = "SELECT * FROM assignments WHERE issue_id = $1 ORDER BY department_id, round"
