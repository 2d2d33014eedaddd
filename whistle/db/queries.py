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

# GET /v1/issues: $1 stage, $2 owner, $3 overdue, $4 street, $5 category, $6 scope unit,
# $7 scope is a department, $8 scope channel; then limit, offset.
_ISSUE_FILTER = """
WHERE ($1::text IS NULL OR stage = $1) AND ($2::text IS NULL OR owner_unit = $2)
  AND ($3::boolean IS NULL OR overdue = $3) AND ($4::text IS NULL OR street_id = $4)
  AND ($5::text IS NULL OR category = $5) AND ($8::text IS NULL OR channel = $8)
  AND ($6::text IS NULL
       OR (NOT $7 AND $6 IN (grid_id, community_id, area_id, street_id))
       OR ($7 AND EXISTS (SELECT 1 FROM assignments a WHERE a.issue_id = issues.issue_id AND a.department_id = $6)))
"""
LIST_ISSUES = f"""
SELECT issue_id, channel, category, stage, owner_unit, street_id, overdue, due_at, created_at, updated_at, outcome
FROM issues {_ISSUE_FILTER} ORDER BY created_at DESC, issue_id LIMIT $9 OFFSET $10
"""
COUNT_ISSUES = f"SELECT count(*) FROM issues {_ISSUE_FILTER}"

# Open311 GET requests: $1 ids, $2 service codes, $3 statuses (open|closed), $4 start, $5 end,
# then limit, offset.
OPEN311_REQUESTS = """
SELECT snapshot FROM issues
WHERE ($1::text[] IS NULL OR issue_id = ANY($1))
  AND ($2::text[] IS NULL OR category = ANY($2))
  AND ($3::text[] IS NULL OR (CASE WHEN stage = 'closed' THEN 'closed' ELSE 'open' END) = ANY($3))
  AND ($4::timestamptz IS NULL OR created_at >= $4)
  AND ($5::timestamptz IS NULL OR created_at <= $5)
ORDER BY created_at DESC, issue_id
LIMIT $6 OFFSET $7
"""
