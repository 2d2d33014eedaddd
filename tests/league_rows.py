"""Hand-made quarters: issues, events, assignments, penalties and ratings written straight into
the read model, so each definition of docs/league.md can be checked on figures worked out by
hand. Rows look like those `record_transition` writes (tests/test_quarter.py runs the real
workflows end to end)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.period import period_bounds
from whistle.db import queries

PERIOD = "2025Q3"
START, END = period_bounds(PERIOD)
T0 = datetime(2025, 7, 10, 9, tzinfo=ZoneInfo("Asia/Shanghai"))
GRID = "heping-a1-c1-g1"


class Quarter:
    """Builds one quarter's rows; `await q.write(conn)` stores them."""

    def __init__(self) -> None:
        self.issues: list[tuple] = []
        self.events: list[tuple] = []
        self.assignments: list[tuple] = []
        self.penalties: list[tuple] = []
        self.ratings: list[tuple] = []

    def issue(self, issue_id: str, *, street: str = "heping", channel: str = "hotline", reporter: bool = True,
              at: datetime = T0, grid: str = GRID, category: str = "tree-trimming", stage: str = "closed") -> str:
        snapshot = {"has_reporter": reporter}
        self.issues.append((issue_id, f"issue-{issue_id}", channel, issue_id, category, grid, "heping-a1-c1",
                            "heping-a1", street, stage, None, False, None, None, 0, at, at, None, 99, snapshot))
        return issue_id

    def event(self, issue_id: str, kind: str, *, at: datetime = T0, stage_from: str | None = None,
              stage_to: str | None = None, unit: str | None = None, role: str | None = None, **detail) -> None:
        seq = sum(e[0] == issue_id for e in self.events) + 1
        self.events.append((issue_id, seq, at, kind, stage_from, stage_to, unit, role and f"{role}-1", role, detail))

    def reached_street(self, issue_id: str, *, handled: bool = True) -> None:
        self.event(issue_id, "escalated", stage_from="area", stage_to="street", unit="heping")
        if handled:
            self.event(issue_id, "dispatched", stage_from="street", stage_to="department", unit="heping")

    def assign(self, issue_id: str, dept: str, *, round: int = 1, accepted: bool | None = True, resolved: bool | None = True,
               at: datetime = T0, status: str = "resolved") -> None:
        """accepted / resolved: True on time, False late, None not yet."""
        accept_due, resolve_due = at + timedelta(days=3), at + timedelta(days=9)
        accepted_at = None if accepted is None else at + timedelta(days=1 if accepted else 5)
        resolved_at = None if resolved is None else at + timedelta(days=4 if resolved else 12)
        self.assignments.append((issue_id, dept, round, "lead", status, "heping", at, accept_due, accepted_at,
                                 resolve_due, resolved_at, 1))

    def penalty(self, issue_id: str, unit: str, kind: str, n: int = 1) -> None:
        for i in range(n):
            self.penalties.append((issue_id, f"{kind}:{unit}:{len(self.penalties)}", unit, kind, T0, T0))

    def feedback(self, issue_id: str, satisfied: bool, role: str = "resident") -> None:
        self.event(issue_id, "feedback", stage_from="feedback", role=role, satisfied=satisfied)

    def reopened(self, issue_id: str, *units: str) -> None:
        self.event(issue_id, "reopened", stage_to="department", units=list(units))

    def rating(self, community: str, target: str, r: int, q: int, a: int, pushed_down: bool = False) -> None:
        self.ratings.append((PERIOD, community, target, r, q, a, pushed_down, "证据" if pushed_down else None, T0))

    async def write(self, conn) -> None:
        await conn.executemany(queries.UPSERT_ISSUE, self.issues)
        await conn.executemany(queries.INSERT_EVENT, self.events)
        await conn.executemany(queries.UPSERT_ASSIGNMENT, self.assignments)
        await conn.executemany(queries.INSERT_PENALTY, self.penalties)
        await conn.executemany(queries.UPSERT_RATING, self.ratings)


async def league(conn, kind: str, weights: dict, adjustments: list | None = None) -> dict[str, dict]:
    sql = queries.LEAGUE_DEPARTMENTS if kind == "department" else queries.LEAGUE_STREETS
    rows = await conn.fetch(sql, START, END, [PERIOD], weights, adjustments or [])
    return {r["unit_id"]: dict(r) for r in rows}
