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
ON CONFLICT (issue_id, seq) DO UPDATE SET at = EXCLUDED.at, kind = EXCLUDED.kind,
  stage_from = EXCLUDED.stage_from, stage_to = EXCLUDED.stage_to, unit_id = EXCLUDED.unit_id,
  actor_id = EXCLUDED.actor_id, actor_role = EXCLUDED.actor_role, detail = EXCLUDED.detail
RETURNING (xmax = 0) AS inserted
"""

# The snapshot only moves forward: an older (lower seq) write never overwrites a newer one.
# The same seq written again is a workflow task's retry (writes run as local activities, and a
# failed task's write is not in history): the retry's write is the one history keeps.
UPSERT_ISSUE = """
INSERT INTO issues (issue_id, workflow_id, channel, reference, category, grid_id, community_id, area_id,
  street_id, stage, owner_unit, overdue, due_at, outcome, reopens, created_at, updated_at, closed_at, seq, snapshot)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
ON CONFLICT (issue_id) DO UPDATE SET stage = EXCLUDED.stage, owner_unit = EXCLUDED.owner_unit,
  overdue = EXCLUDED.overdue, due_at = EXCLUDED.due_at, outcome = EXCLUDED.outcome, reopens = EXCLUDED.reopens,
  updated_at = EXCLUDED.updated_at, closed_at = EXCLUDED.closed_at, seq = EXCLUDED.seq, snapshot = EXCLUDED.snapshot
WHERE issues.seq <= EXCLUDED.seq
"""

# Like the snapshot, an assignment row only moves forward (a late retry of an older write loses).
UPSERT_ASSIGNMENT = """
INSERT INTO assignments (issue_id, department_id, round, role, status, street_id, assigned_at,
  accept_due, accepted_at, resolve_due, resolved_at, seq)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (issue_id, department_id, round) DO UPDATE SET status = EXCLUDED.status,
  accept_due = EXCLUDED.accept_due, accepted_at = EXCLUDED.accepted_at,
  resolve_due = EXCLUDED.resolve_due, resolved_at = EXCLUDED.resolved_at, seq = EXCLUDED.seq
WHERE assignments.seq <= EXCLUDED.seq
"""

INSERT_PENALTY = """
INSERT INTO penalties (issue_id, deadline_key, unit_id, kind, due_at, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (issue_id, deadline_key) DO NOTHING
"""

# whistle_open_issues, read on a metrics scrape (cached): one row per (stage, street, overdue).
OPEN_ISSUES = """
SELECT stage, coalesce(street_id, '') AS street, overdue, count(*) AS n
FROM issues WHERE stage <> 'closed' GROUP BY 1, 2, 3
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

# --------------------------------------------------------------------------- reverse evaluation
# The streets and departments that handled each community's issues created in [$1, $2).
EVALUATION_TARGETS = """
WITH period_issues AS (
    SELECT issue_id, community_id, street_id FROM issues
    WHERE created_at >= $1 AND created_at < $2 AND community_id IS NOT NULL
), handled AS (
    SELECT p.community_id, p.street_id AS target_id FROM period_issues p
    WHERE EXISTS (SELECT 1 FROM issue_events e WHERE e.issue_id = p.issue_id AND e.stage_to = 'street')
    UNION
    SELECT p.community_id, a.department_id FROM period_issues p JOIN assignments a ON a.issue_id = p.issue_id
)
SELECT community_id, array_agg(target_id ORDER BY target_id) AS targets
FROM handled GROUP BY community_id ORDER BY community_id
"""
UPSERT_ROUND = """
INSERT INTO evaluation_rounds (quarter, opened_at, closes_at, status) VALUES ($1, $2, $3, 'open')
ON CONFLICT (quarter) DO NOTHING
"""
INSERT_TARGET = "INSERT INTO evaluation_targets (quarter, community_id, target_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
SELECT_TARGETS = """
SELECT community_id, array_agg(target_id ORDER BY target_id) AS targets FROM evaluation_targets
WHERE quarter = $1 GROUP BY community_id ORDER BY community_id
"""
CLOSE_ROUND = "UPDATE evaluation_rounds SET status = 'closed', closed_at = coalesce(closed_at, $2) WHERE quarter = $1"
CLOSED_ROUNDS = "SELECT count(*) FROM evaluation_rounds WHERE quarter = ANY($1) AND status = 'closed'"
# Revisable until the round closes: the latest rating wins.
UPSERT_RATING = """
INSERT INTO ratings (quarter, community_id, target_id, responsiveness, quality, attitude, pushed_down, evidence, rated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (quarter, community_id, target_id) DO UPDATE SET responsiveness = EXCLUDED.responsiveness,
  quality = EXCLUDED.quality, attitude = EXCLUDED.attitude, pushed_down = EXCLUDED.pushed_down,
  evidence = EXCLUDED.evidence, rated_at = EXCLUDED.rated_at
WHERE ratings.rated_at <= EXCLUDED.rated_at
"""

# --------------------------------------------------------------------------- league table
# Metrics of one period [$1, $2), ratings of the quarters $3, weights $4 (jsonb, by metric).
# Each metric is 0..1, higher is better, NULL when there is nothing to measure; the score is
# the weighted mean of the metrics present, times 100. docs/league.md shows these statements.
_LEAGUE_SCORE = """
SELECT m.*,
  round((100 * (
      coalesce(($4::jsonb->>'satisfaction')::float8 * m.satisfaction, 0)
    + coalesce(($4::jsonb->>'evaluation')::float8 * greatest(m.evaluation - 0.1 * m.pushed_down, 0), 0)
    + coalesce(($4::jsonb->>'on_time_accept')::float8 * m.on_time_accept, 0)
    + coalesce(($4::jsonb->>'on_time_resolve')::float8 * m.on_time_resolve, 0)
    + coalesce(($4::jsonb->>'low_reopen')::float8 * (1 - least(m.reopen_rate, 1)), 0)
    + coalesce(($4::jsonb->>'low_penalty')::float8 * (1 - least(m.penalties::float8 / nullif(m.volume, 0), 1)), 0)
  ) / nullif(
      ($4::jsonb->>'satisfaction')::float8 * (m.satisfaction IS NOT NULL)::int
    + ($4::jsonb->>'evaluation')::float8 * (m.evaluation IS NOT NULL)::int
    + ($4::jsonb->>'on_time_accept')::float8 * (m.on_time_accept IS NOT NULL)::int
    + ($4::jsonb->>'on_time_resolve')::float8 * (m.on_time_resolve IS NOT NULL)::int
    + ($4::jsonb->>'low_reopen')::float8 * (m.reopen_rate IS NOT NULL)::int
    + ($4::jsonb->>'low_penalty')::float8 * (m.volume > 0)::int, 0))::numeric, 2)::float8 AS score
FROM metrics m
"""

# The communities' ratings of each unit in the period's quarters.
_RATINGS = """), ev AS (
    SELECT target_id AS unit_id, avg((responsiveness + quality + attitude) / 15.0)::float8 AS evaluation,
           count(*) FILTER (WHERE pushed_down) AS pushed_down
    FROM ratings WHERE quarter = ANY($3) GROUP BY target_id
), metrics AS ("""

LEAGUE_DEPARTMENTS = """
WITH work AS (
    SELECT department_id AS unit_id, issue_id, status, accepted_at, accept_due, resolved_at, resolve_due
    FROM assignments WHERE assigned_at >= $1 AND assigned_at < $2
), issues_of AS (
    SELECT DISTINCT unit_id, issue_id FROM work
), pen AS (
    SELECT p.unit_id, count(*) AS penalties,
           count(*) FILTER (WHERE p.kind = 'accept_overdue') AS accept_missed,
           count(*) FILTER (WHERE p.kind = 'resolve_overdue') AS resolve_missed
    FROM penalties p JOIN issues_of w ON w.issue_id = p.issue_id AND w.unit_id = p.unit_id
    GROUP BY p.unit_id
), vol AS (
    SELECT unit_id, count(DISTINCT issue_id) AS volume,
           count(*) FILTER (WHERE accepted_at <= accept_due) AS accepted_on_time,
           count(*) FILTER (WHERE resolved_at <= resolve_due) AS resolved_on_time
    FROM work GROUP BY unit_id
), fb AS (
    SELECT w.unit_id, count(*) AS answers, count(*) FILTER (WHERE (e.detail->>'satisfied')::boolean) AS satisfied
    FROM (SELECT DISTINCT unit_id, issue_id FROM work WHERE status <> 'withdrawn') w
    JOIN issue_events e ON e.issue_id = w.issue_id AND e.kind = 'feedback'
    GROUP BY w.unit_id
), reo AS (
    SELECT w.unit_id, count(*) AS reopens
    FROM issues_of w JOIN issue_events e
      ON e.issue_id = w.issue_id AND e.kind = 'reopened' AND e.detail->'units' ? w.unit_id
    GROUP BY w.unit_id
""" + _RATINGS + """
    SELECT d.id AS unit_id, d.name, coalesce(vol.volume, 0)::int AS volume,
      vol.accepted_on_time::float8 / nullif(vol.accepted_on_time + coalesce(pen.accept_missed, 0), 0) AS on_time_accept,
      vol.resolved_on_time::float8 / nullif(vol.resolved_on_time + coalesce(pen.resolve_missed, 0), 0) AS on_time_resolve,
      fb.satisfied::float8 / nullif(fb.answers, 0) AS satisfaction,
      coalesce(reo.reopens, 0)::float8 / nullif(vol.volume, 0) AS reopen_rate,
      coalesce(pen.penalties, 0)::int AS penalties,
      ev.evaluation, coalesce(ev.pushed_down, 0)::int AS pushed_down
    FROM units d
    LEFT JOIN vol ON vol.unit_id = d.id LEFT JOIN pen ON pen.unit_id = d.id LEFT JOIN fb ON fb.unit_id = d.id
    LEFT JOIN reo ON reo.unit_id = d.id LEFT JOIN ev ON ev.unit_id = d.id
    WHERE d.level = 'department' AND (vol.volume > 0 OR pen.penalties > 0 OR ev.evaluation IS NOT NULL)
)
""" + _LEAGUE_SCORE + " ORDER BY score DESC, unit_id"

LEAGUE_STREETS = """
WITH work AS (
    SELECT i.street_id AS unit_id, i.issue_id, i.overdue, i.stage IN ('feedback', 'review', 'closed') AS resolved
    FROM issues i
    WHERE i.created_at >= $1 AND i.created_at < $2
      AND EXISTS (SELECT 1 FROM issue_events e WHERE e.issue_id = i.issue_id AND e.stage_to = 'street')
), pen AS (
    SELECT p.unit_id, count(*) AS penalties, count(*) FILTER (WHERE p.kind = 'handle_overdue') AS handle_missed
    FROM penalties p JOIN work w ON w.issue_id = p.issue_id AND w.unit_id = p.unit_id
    GROUP BY p.unit_id
), vol AS (
    SELECT unit_id, count(*) AS volume, count(*) FILTER (WHERE resolved) AS resolved,
           count(*) FILTER (WHERE resolved AND NOT overdue) AS resolved_on_time
    FROM work GROUP BY unit_id
), fb AS (
    SELECT w.unit_id, count(*) AS answers, count(*) FILTER (WHERE (e.detail->>'satisfied')::boolean) AS satisfied
    FROM work w JOIN issue_events e ON e.issue_id = w.issue_id AND e.kind = 'feedback' GROUP BY w.unit_id
), reo AS (
    SELECT w.unit_id, count(*) AS reopens
    FROM work w JOIN issue_events e ON e.issue_id = w.issue_id AND e.kind = 'reopened' GROUP BY w.unit_id
""" + _RATINGS + """
    SELECT s.id AS unit_id, s.name, coalesce(vol.volume, 0)::int AS volume,
      greatest(1 - coalesce(pen.handle_missed, 0)::float8 / nullif(vol.volume, 0), 0) AS on_time_accept,
      vol.resolved_on_time::float8 / nullif(vol.resolved, 0) AS on_time_resolve,
      fb.satisfied::float8 / nullif(fb.answers, 0) AS satisfaction,
      coalesce(reo.reopens, 0)::float8 / nullif(vol.volume, 0) AS reopen_rate,
      coalesce(pen.penalties, 0)::int AS penalties,
      ev.evaluation, coalesce(ev.pushed_down, 0)::int AS pushed_down
    FROM units s
    LEFT JOIN vol ON vol.unit_id = s.id LEFT JOIN pen ON pen.unit_id = s.id LEFT JOIN fb ON fb.unit_id = s.id
    LEFT JOIN reo ON reo.unit_id = s.id LEFT JOIN ev ON ev.unit_id = s.id
    WHERE s.level = 'street' AND (vol.volume > 0 OR pen.penalties > 0 OR ev.evaluation IS NOT NULL)
)
""" + _LEAGUE_SCORE + " ORDER BY score DESC, unit_id"

UPSERT_LEAGUE_ROW = """
INSERT INTO league_tables (period, unit_id, unit_kind, status, rank, listed, score, metrics, computed_at, name)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (period, unit_id) DO UPDATE SET unit_kind = EXCLUDED.unit_kind, status = EXCLUDED.status,
  rank = EXCLUDED.rank, listed = EXCLUDED.listed, score = EXCLUDED.score, metrics = EXCLUDED.metrics,
  computed_at = EXCLUDED.computed_at, name = EXCLUDED.name
WHERE league_tables.status = 'draft'
"""
DELETE_LEAGUE_DRAFT = "DELETE FROM league_tables WHERE period = $1 AND status = 'draft'"
UPSERT_PUBLICATION = """
INSERT INTO league_publications (period, status, weights, comments, computed_at)
VALUES ($1, 'draft', $2, $3, $4)
ON CONFLICT (period) DO UPDATE SET weights = EXCLUDED.weights, comments = EXCLUDED.comments,
  computed_at = EXCLUDED.computed_at
WHERE league_publications.status = 'draft'
"""
PUBLISH_LEAGUE = """
WITH pub AS (
    UPDATE league_publications SET status = 'published', published_at = coalesce(published_at, $2)
    WHERE period = $1 RETURNING period
)
UPDATE league_tables SET status = 'published' WHERE period = (SELECT period FROM pub)
"""
MARK_ANNOUNCED = "UPDATE league_publications SET announced_at = coalesce(announced_at, $2) WHERE period = $1"
SELECT_PUBLICATION = "SELECT * FROM league_publications WHERE period = $1"
SELECT_LEAGUE_ROWS = "SELECT * FROM league_tables WHERE period = $1 ORDER BY unit_kind, rank"
