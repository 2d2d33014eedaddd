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

# A closed issue's last event: anything after it was written by a workflow task that never
# completed (its local activity landed, its task did not) and is no part of the issue.
DELETE_EVENTS_AFTER = "DELETE FROM issue_events WHERE issue_id = $1 AND seq > $2"
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
SELECT_ROUNDS = "SELECT quarter, status, opened_at, closes_at, closed_at FROM evaluation_rounds WHERE quarter = ANY($1) ORDER BY quarter"
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
# Metrics of one period [$1, $2), ratings of the quarters $3, weights $4 (jsonb, by metric),
# the supervisor's adjustments $5 (jsonb array, '[]' for none). Every rate is numerator ÷
# denominator (both returned as <rate>_num, <rate>_den), so it lies in 0..1, NULL when the
# denominator is 0; the score is 100 × the weighted mean of the terms present.
# docs/league.md shows these statements.
_LEAGUE_SCORE = """
SELECT m.*,
  round((100 * (
      coalesce(($4::jsonb->>'satisfaction')::float8 * m.satisfaction, 0)
    + coalesce(($4::jsonb->>'evaluation')::float8 * greatest(m.evaluation - 0.1 * m.pushed_down, 0), 0)
    + coalesce(($4::jsonb->>'on_time_accept')::float8 * m.on_time_accept, 0)
    + coalesce(($4::jsonb->>'on_time_resolve')::float8 * m.on_time_resolve, 0)
    + coalesce(($4::jsonb->>'low_reopen')::float8 * (1 - m.reopen_rate), 0)
    + coalesce(($4::jsonb->>'low_penalty')::float8 * (1 - m.penalty_rate), 0)
  ) / nullif(
      ($4::jsonb->>'satisfaction')::float8 * (m.satisfaction IS NOT NULL)::int
    + ($4::jsonb->>'evaluation')::float8 * (m.evaluation IS NOT NULL)::int
    + ($4::jsonb->>'on_time_accept')::float8 * (m.on_time_accept IS NOT NULL)::int
    + ($4::jsonb->>'on_time_resolve')::float8 * (m.on_time_resolve IS NOT NULL)::int
    + ($4::jsonb->>'low_reopen')::float8 * (m.reopen_rate IS NOT NULL)::int
    + ($4::jsonb->>'low_penalty')::float8 * (m.penalty_rate IS NOT NULL)::int, 0))::numeric, 2)::float8 AS score
FROM (
    SELECT r.*,
      r.on_time_accept_num::float8 / nullif(r.on_time_accept_den, 0) AS on_time_accept,
      r.on_time_resolve_num::float8 / nullif(r.on_time_resolve_den, 0) AS on_time_resolve,
      r.satisfaction_num::float8 / nullif(r.satisfaction_den, 0) AS satisfaction,
      r.reopen_rate_num::float8 / nullif(r.reopen_rate_den, 0) AS reopen_rate,
      r.penalty_rate_num::float8 / nullif(r.penalty_rate_den, 0) AS penalty_rate,
      r.evaluation_num::float8 / nullif(r.evaluation_den, 0) AS evaluation
    FROM counts r
) m
"""

# The supervisor's adjustments: issues taken out of a unit's figures, ratings voided or corrected.
_ADJUSTMENTS = """WITH adjustment AS (
    SELECT a.value AS a, a.ordinality AS n FROM jsonb_array_elements($5::jsonb) WITH ORDINALITY a
), excluded AS (
    SELECT a->>'unit_id' AS unit_id, a->>'issue_id' AS issue_id FROM adjustment WHERE a->>'kind' = 'exclude_issue'
), """

# Satisfaction is the residents' word: feedback by a resident on an issue that has one to ask
# (a reporter; not a grid patrol's own finding).
_RESIDENT_FEEDBACK = """), resident_feedback AS (
    SELECT e.issue_id, (e.detail->>'satisfied')::boolean AS satisfied
    FROM issue_events e JOIN issues i ON i.issue_id = e.issue_id
    WHERE e.kind = 'feedback' AND e.actor_role = 'resident'
      AND coalesce((i.snapshot->>'has_reporter')::boolean, false) AND i.channel <> 'patrol'
"""

# The communities' ratings of each unit in the period's quarters, as adjusted (the latest
# correction of a rating wins; a voided rating does not count).
_RATINGS = """), rated AS (
    SELECT r.target_id, coalesce((c.a->>'responsiveness')::int, r.responsiveness) AS responsiveness,
           coalesce((c.a->>'quality')::int, r.quality) AS quality, coalesce((c.a->>'attitude')::int, r.attitude) AS attitude,
           coalesce((c.a->>'pushed_down')::boolean, r.pushed_down) AS pushed_down
    FROM ratings r
    LEFT JOIN LATERAL (
        SELECT x.a FROM adjustment x
        WHERE x.a->>'kind' = 'correct_rating' AND x.a->>'unit_id' = r.target_id AND x.a->>'community_id' = r.community_id
          AND coalesce(x.a->>'quarter', r.quarter) = r.quarter
        ORDER BY x.n DESC LIMIT 1
    ) c ON true
    WHERE r.quarter = ANY($3) AND NOT EXISTS (
        SELECT 1 FROM adjustment x
        WHERE x.a->>'kind' = 'void_rating' AND x.a->>'unit_id' = r.target_id AND x.a->>'community_id' = r.community_id
          AND coalesce(x.a->>'quarter', r.quarter) = r.quarter)
), ev AS (
    SELECT target_id AS unit_id, sum(responsiveness + quality + attitude) AS points, count(*) AS ratings,
           stddev_samp((responsiveness + quality + attitude) / 15.0)::float8 AS spread,
           count(*) FILTER (WHERE pushed_down) AS pushed_down
    FROM rated GROUP BY target_id
), counts AS ("""

LEAGUE_DEPARTMENTS = _ADJUSTMENTS + """work AS (
    SELECT a.department_id AS unit_id, a.issue_id, a.status, a.accepted_at, a.accept_due, a.resolved_at, a.resolve_due
    FROM assignments a WHERE a.assigned_at >= $1 AND a.assigned_at < $2
      AND NOT EXISTS (SELECT 1 FROM excluded x WHERE x.unit_id = a.department_id AND x.issue_id = a.issue_id)
), issues_of AS (
    SELECT DISTINCT unit_id, issue_id FROM work
), pen AS (
    SELECT p.unit_id, count(*) AS penalties, count(DISTINCT p.issue_id) AS penalised,
           count(*) FILTER (WHERE p.kind = 'accept_overdue') AS accept_missed,
           count(*) FILTER (WHERE p.kind = 'resolve_overdue') AS resolve_missed
    FROM penalties p JOIN issues_of w ON w.issue_id = p.issue_id AND w.unit_id = p.unit_id
    GROUP BY p.unit_id
), vol AS (
    SELECT unit_id, count(DISTINCT issue_id) AS volume,
           count(*) FILTER (WHERE accepted_at <= accept_due) AS accepted_on_time,
           count(*) FILTER (WHERE resolved_at <= resolve_due) AS resolved_on_time
    FROM work GROUP BY unit_id
""" + _RESIDENT_FEEDBACK + """), fb AS (
    SELECT w.unit_id, count(*) AS answers, count(*) FILTER (WHERE f.satisfied) AS satisfied
    FROM (SELECT DISTINCT unit_id, issue_id FROM work WHERE status <> 'withdrawn') w
    JOIN resident_feedback f ON f.issue_id = w.issue_id
    GROUP BY w.unit_id
), reo AS (
    SELECT w.unit_id, count(*) AS resolved,
           count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM issue_events e
               WHERE e.issue_id = w.issue_id AND e.kind = 'reopened' AND e.detail->'units' ? w.unit_id)) AS reopened
    FROM (SELECT DISTINCT unit_id, issue_id FROM work WHERE resolved_at IS NOT NULL) w
    GROUP BY w.unit_id
""" + _RATINGS + """
    SELECT d.id AS unit_id, d.name, coalesce(vol.volume, 0)::int AS volume,
      coalesce(vol.accepted_on_time, 0)::int AS on_time_accept_num,
      (coalesce(vol.accepted_on_time, 0) + coalesce(pen.accept_missed, 0))::int AS on_time_accept_den,
      coalesce(vol.resolved_on_time, 0)::int AS on_time_resolve_num,
      (coalesce(vol.resolved_on_time, 0) + coalesce(pen.resolve_missed, 0))::int AS on_time_resolve_den,
      coalesce(fb.satisfied, 0)::int AS satisfaction_num, coalesce(fb.answers, 0)::int AS satisfaction_den,
      coalesce(reo.reopened, 0)::int AS reopen_rate_num, coalesce(reo.resolved, 0)::int AS reopen_rate_den,
      coalesce(pen.penalised, 0)::int AS penalty_rate_num, coalesce(vol.volume, 0)::int AS penalty_rate_den,
      coalesce(ev.points, 0)::int AS evaluation_num, (15 * coalesce(ev.ratings, 0))::int AS evaluation_den,
      ev.spread AS evaluation_sd,
      coalesce(pen.penalties, 0)::int AS penalties, coalesce(ev.pushed_down, 0)::int AS pushed_down
    FROM units d
    LEFT JOIN vol ON vol.unit_id = d.id LEFT JOIN pen ON pen.unit_id = d.id LEFT JOIN fb ON fb.unit_id = d.id
    LEFT JOIN reo ON reo.unit_id = d.id LEFT JOIN ev ON ev.unit_id = d.id
    WHERE d.level = 'department' AND (vol.volume > 0 OR pen.penalties > 0 OR ev.ratings > 0)
)
""" + _LEAGUE_SCORE + " ORDER BY score DESC, unit_id"

# A street is measured on what it controls: its own handling of the issues that reached it
# (dispatched, resolved or passed on by its handling deadline). Departments' work is theirs.
LEAGUE_STREETS = _ADJUSTMENTS + """reached AS (
    SELECT i.street_id AS unit_id, i.issue_id FROM issues i
    WHERE i.created_at >= $1 AND i.created_at < $2 AND i.street_id IS NOT NULL
      AND EXISTS (SELECT 1 FROM issue_events e WHERE e.issue_id = i.issue_id AND e.stage_to = 'street')
      AND NOT EXISTS (SELECT 1 FROM excluded x WHERE x.unit_id = i.street_id AND x.issue_id = i.issue_id)
), work AS (
    SELECT r.unit_id, r.issue_id,
      EXISTS (SELECT 1 FROM penalties p
              WHERE p.issue_id = r.issue_id AND p.unit_id = r.unit_id AND p.kind = 'handle_overdue') AS missed,
      EXISTS (SELECT 1 FROM issue_events e WHERE e.issue_id = r.issue_id AND e.stage_from = 'street') AS handled,
      EXISTS (SELECT 1 FROM issue_events e WHERE e.issue_id = r.issue_id AND e.stage_to = 'feedback') AS resolved,
      EXISTS (SELECT 1 FROM issue_events e WHERE e.issue_id = r.issue_id AND e.kind = 'reopened') AS reopened
    FROM reached r
), pen AS (
    SELECT p.unit_id, count(*) AS penalties, count(DISTINCT p.issue_id) AS penalised
    FROM penalties p JOIN work w ON w.issue_id = p.issue_id AND w.unit_id = p.unit_id
    GROUP BY p.unit_id
), vol AS (
    SELECT unit_id, count(*) AS volume,
           count(*) FILTER (WHERE handled AND NOT missed) AS handled_on_time,
           count(*) FILTER (WHERE handled OR missed) AS handling_done,
           count(*) FILTER (WHERE resolved) AS resolved, count(*) FILTER (WHERE resolved AND reopened) AS reopened
    FROM work GROUP BY unit_id
""" + _RESIDENT_FEEDBACK + """), fb AS (
    SELECT w.unit_id, count(*) AS answers, count(*) FILTER (WHERE f.satisfied) AS satisfied
    FROM work w JOIN resident_feedback f ON f.issue_id = w.issue_id GROUP BY w.unit_id
""" + _RATINGS + """
    SELECT s.id AS unit_id, s.name, coalesce(vol.volume, 0)::int AS volume,
      coalesce(vol.handled_on_time, 0)::int AS on_time_accept_num, coalesce(vol.handling_done, 0)::int AS on_time_accept_den,
      0 AS on_time_resolve_num, 0 AS on_time_resolve_den,
      coalesce(fb.satisfied, 0)::int AS satisfaction_num, coalesce(fb.answers, 0)::int AS satisfaction_den,
      coalesce(vol.reopened, 0)::int AS reopen_rate_num, coalesce(vol.resolved, 0)::int AS reopen_rate_den,
      coalesce(pen.penalised, 0)::int AS penalty_rate_num, coalesce(vol.volume, 0)::int AS penalty_rate_den,
      coalesce(ev.points, 0)::int AS evaluation_num, (15 * coalesce(ev.ratings, 0))::int AS evaluation_den,
      ev.spread AS evaluation_sd,
      coalesce(pen.penalties, 0)::int AS penalties, coalesce(ev.pushed_down, 0)::int AS pushed_down
    FROM units s
    LEFT JOIN vol ON vol.unit_id = s.id LEFT JOIN pen ON pen.unit_id = s.id LEFT JOIN fb ON fb.unit_id = s.id
    LEFT JOIN ev ON ev.unit_id = s.id
    WHERE s.level = 'street' AND (vol.volume > 0 OR pen.penalties > 0 OR ev.ratings > 0)
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
INSERT INTO league_publications (period, status, weights, comments, computed_at, draft, min_volume, adjustments, changes)
VALUES ($1, 'draft', $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (period) DO UPDATE SET weights = EXCLUDED.weights, comments = EXCLUDED.comments,
  computed_at = EXCLUDED.computed_at, draft = EXCLUDED.draft, min_volume = EXCLUDED.min_volume,
  adjustments = EXCLUDED.adjustments, changes = EXCLUDED.changes
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
# Ranked units first, by rank; then the unranked (样本不足), by id.
SELECT_LEAGUE_ROWS = "SELECT * FROM league_tables WHERE period = $1 ORDER BY unit_kind, rank = 0, rank, unit_id"

# --------------------------------------------------------------------------- monthly briefing
# The month [$1, $2), every figure as it stood at the month's end. docs/briefing.md shows these.
# Satisfaction is the residents' word (as in the league): a resident's answer on an issue with a
# reporter, not a grid patrol's own finding. A repeat complaint is an issue whose category was
# reported at the same grid within the 30 days before it.
_BRIEFING_ANSWERS = """
), answers AS (
    SELECT e.issue_id, bool_or(NOT (e.detail->>'satisfied')::boolean) AS dissatisfied
    FROM issue_events e JOIN issues i ON i.issue_id = e.issue_id
    WHERE e.kind = 'feedback' AND e.actor_role = 'resident' AND e.at < $2
      AND coalesce((i.snapshot->>'has_reporter')::boolean, false) AND i.channel <> 'patrol'
    GROUP BY e.issue_id
)
SELECT u.id AS unit_id, u.name, count(*)::int AS dispatched,
  count(*) FILTER (WHERE w.resolved AND NOT w.late)::int AS resolved_on_time,
  count(*) FILTER (WHERE w.resolved AND w.late)::int AS resolved_late,
  count(*) FILTER (WHERE NOT w.resolved)::int AS still_open,
  count(f.issue_id)::int AS answered,
  count(*) FILTER (WHERE f.dissatisfied)::int AS dissatisfied,
  count(*) FILTER (WHERE EXISTS (
      SELECT 1 FROM issues i JOIN issues o ON o.category = i.category AND o.grid_id = i.grid_id
        AND o.created_at < i.created_at AND o.created_at >= i.created_at - interval '30 days'
      WHERE i.issue_id = w.issue_id))::int AS repeat_complaints
FROM work w JOIN units u ON u.id = w.unit_id LEFT JOIN answers f ON f.issue_id = w.issue_id
GROUP BY u.id, u.name ORDER BY dispatched DESC, u.id
"""

# Departments: the issues dispatched to them in the month. Resolved: an assignment of the month
# resolved before its end; late: resolved after its deadline, or a missed resolve deadline.
BRIEFING_DEPARTMENTS = """
WITH work AS (
    SELECT a.department_id AS unit_id, a.issue_id,
      coalesce(bool_or(a.resolved_at < $2), false) AS resolved,
      coalesce(bool_or(a.resolved_at < $2 AND a.resolved_at > a.resolve_due), false)
        OR EXISTS (SELECT 1 FROM penalties p WHERE p.issue_id = a.issue_id AND p.unit_id = a.department_id
                   AND p.kind = 'resolve_overdue' AND p.recorded_at < $2) AS late
    FROM assignments a WHERE a.assigned_at >= $1 AND a.assigned_at < $2
    GROUP BY a.department_id, a.issue_id""" + _BRIEFING_ANSWERS

# Streets: the issues created in the month in the street's territory. Resolved: it reached
# feedback or was closed before the month's end; late: a deadline missed by the street or a
# unit under it (area, community, grid) — the departments' lateness is theirs.
BRIEFING_STREETS = """
WITH work AS (
    SELECT i.street_id AS unit_id, i.issue_id,
      EXISTS (SELECT 1 FROM issue_events e WHERE e.issue_id = i.issue_id
              AND e.stage_to IN ('feedback', 'closed') AND e.at < $2) AS resolved,
      EXISTS (SELECT 1 FROM penalties p JOIN units pu ON pu.id = p.unit_id
              WHERE p.issue_id = i.issue_id AND pu.level <> 'department' AND p.recorded_at < $2) AS late
    FROM issues i WHERE i.created_at >= $1 AND i.created_at < $2 AND i.street_id IS NOT NULL""" + _BRIEFING_ANSWERS

BRIEFING_ISSUES = "SELECT count(*)::int FROM issues WHERE created_at >= $1 AND created_at < $2"
# The month's most reported categories and the grids with most issues ($3: how many).
BRIEFING_TOP_CATEGORIES = """
SELECT i.category, coalesce(c.name, i.category) AS name, count(*)::int AS issues
FROM issues i LEFT JOIN categories c ON c.id = i.category
WHERE i.created_at >= $1 AND i.created_at < $2
GROUP BY i.category, c.name ORDER BY issues DESC, i.category LIMIT $3
"""
BRIEFING_HOT_SPOTS = """
SELECT i.grid_id, coalesce(g.name, i.grid_id) AS name, coalesce(c.name, '') AS community, count(*)::int AS issues
FROM issues i LEFT JOIN units g ON g.id = i.grid_id LEFT JOIN units c ON c.id = g.parent_id
WHERE i.created_at >= $1 AND i.created_at < $2
GROUP BY i.grid_id, g.name, c.name ORDER BY issues DESC, i.grid_id LIMIT $3
"""
UPSERT_BRIEFING = """
INSERT INTO briefings (month, body, computed_at) VALUES ($1, $2, $3)
ON CONFLICT (month) DO UPDATE SET body = EXCLUDED.body, computed_at = EXCLUDED.computed_at
"""
MARK_BRIEFING_ANNOUNCED = "UPDATE briefings SET announced_at = coalesce(announced_at, $2) WHERE month = $1"
SELECT_BRIEFING = "SELECT * FROM briefings WHERE month = $1"
