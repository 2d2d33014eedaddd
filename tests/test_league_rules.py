"""Each definition of docs/league.md on hand-made quarters (tests/league_rows.py), worked out by
hand: rates with numerator and denominator within 0..1, the street measured on its own handling,
satisfaction from residents only, the supervisor's adjustments; then the ranking rules (minimum
volume, intervals, the middle band, hard rules) on hand-made rows."""

from __future__ import annotations

import pytest

from domain.league import changes, composite, mean_interval, rank, rates_of, score_interval, wilson
from activities.quarterly import row_of
from schemas.league import PRESETS, ComputeRequest, LeagueRow, Rate
from tests.league_rows import Quarter, league

W = PRESETS["7+3"]


def test_wilson_interval_known_values():
    assert wilson(0, 0) is None
    lo, hi = wilson(0, 1)
    assert lo == 0.0 and hi == pytest.approx(0.7935, abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    lo, hi = wilson(95, 100)
    assert lo == pytest.approx(0.8882, abs=1e-4) and hi == pytest.approx(0.9785, abs=1e-4)


async def test_reopen_rate_counts_issues_not_reopenings(pool):
    """Two reopenings of one issue are one reopened issue: 1 of 2 resolved, never 200%."""
    q = Quarter()
    for i in ("a", "b"):
        q.issue(i)
        q.reached_street(i)
        q.assign(i, "lvhua")
    q.reopened("a", "lvhua")
    q.reopened("a", "lvhua")
    q.reopened("b", "chengguan")  # counted against another unit, not lvhua
    async with pool.acquire() as conn:
        await q.write(conn)
        lvhua = (await league(conn, "department", W))["lvhua"]
    assert (lvhua["reopen_rate_num"], lvhua["reopen_rate_den"], lvhua["reopen_rate"]) == (1, 2, 0.5)


async def test_department_rates_have_numerators_and_denominators(pool):
    q = Quarter()
    for i, (acc, res) in enumerate([(True, True), (True, False), (False, None), (None, None)]):
        q.issue(f"d{i}")
        q.reached_street(f"d{i}")
        q.assign(f"d{i}", "chengguan", accepted=acc, resolved=res, status="accepted" if res is None else "resolved")
    q.penalty("d1", "chengguan", "resolve_overdue")
    q.penalty("d2", "chengguan", "accept_overdue")
    q.penalty("d3", "chengguan", "accept_overdue", n=3)  # three deadlines missed on one issue
    async with pool.acquire() as conn:
        await q.write(conn)
        row = (await league(conn, "department", W))["chengguan"]
    # accepted on time: d0, d1 (2); missed: d2, d3×3 → 2 of 6
    assert (row["on_time_accept_num"], row["on_time_accept_den"]) == (2, 6)
    # resolved on time: d0 (1); missed: d1 → 1 of 2
    assert (row["on_time_resolve_num"], row["on_time_resolve_den"]) == (1, 2)
    # penalised issues d1, d2, d3 of 4: a rate per issue, within 0..1 though there are 5 penalties
    assert (row["penalty_rate_num"], row["penalty_rate_den"], row["penalties"]) == (3, 4, 5)
    assert row["volume"] == 4
    for rate in ("on_time_accept", "on_time_resolve", "satisfaction", "reopen_rate", "penalty_rate", "evaluation"):
        assert row[rate] is None or 0 <= row[rate] <= 1
    r = row_of("department", row)
    assert r.rates["on_time_accept"] == Rate(value=2 / 6, numerator=2, denominator=6, interval=wilson(2, 6))


async def test_satisfaction_only_from_residents_with_a_reporter(pool):
    q = Quarter()
    q.issue("r1")
    q.issue("r2")
    q.issue("patrol", channel="patrol", reporter=False)  # a patrol's own finding
    q.issue("self", reporter=False)  # a handler entered it for itself: nobody to ask
    for i in ("r1", "r2", "patrol", "self"):
        q.reached_street(i)
        q.assign(i, "lvhua")
    q.feedback("r1", True)
    q.feedback("r2", False)
    q.feedback("patrol", True)
    q.feedback("self", True)
    async with pool.acquire() as conn:
        await q.write(conn)
        lvhua = (await league(conn, "department", W))["lvhua"]
        heping = (await league(conn, "street", W))["heping"]
    assert (lvhua["satisfaction_num"], lvhua["satisfaction_den"]) == (1, 2)
    assert (heping["satisfaction_num"], heping["satisfaction_den"]) == (1, 2)


async def test_a_street_is_measured_on_its_own_handling(pool):
    """The street dispatched both on time; the department then resolved one late: the street's
    on-time figure stays 2 of 2, and it has no resolve figure of its own."""
    q = Quarter()
    for i in ("s1", "s2"):
        q.issue(i)
        q.reached_street(i)
        q.assign(i, "chengguan", resolved=(i == "s1"))
    q.penalty("s2", "chengguan", "resolve_overdue")
    q.issue("s3")
    q.reached_street("s3", handled=False)
    q.penalty("s3", "heping", "handle_overdue")  # the street let its own deadline pass
    q.issue("s4")
    q.reached_street("s4", handled=False)  # still within its deadline: not counted yet
    async with pool.acquire() as conn:
        await q.write(conn)
        heping = (await league(conn, "street", W))["heping"]
    assert (heping["on_time_accept_num"], heping["on_time_accept_den"]) == (2, 3)
    assert heping["on_time_resolve"] is None and heping["volume"] == 4
    assert (heping["penalty_rate_num"], heping["penalty_rate_den"]) == (1, 4)


async def test_adjustments_exclude_an_issue_and_void_or_correct_a_rating(pool):
    q = Quarter()
    for i in ("x1", "x2"):
        q.issue(i)
        q.reached_street(i)
        q.assign(i, "chengguan", accepted=(i == "x1"))
    q.penalty("x2", "chengguan", "accept_overdue")
    q.rating("heping-a1-c1", "chengguan", 1, 1, 1, pushed_down=True)
    q.rating("heping-a1-c2", "chengguan", 5, 5, 5)
    async with pool.acquire() as conn:
        await q.write(conn)
        before = (await league(conn, "department", W))["chengguan"]
        after = (await league(conn, "department", W, [
            {"kind": "exclude_issue", "unit_id": "chengguan", "issue_id": "x2"},
            {"kind": "void_rating", "unit_id": "chengguan", "community_id": "heping-a1-c1"},
        ]))["chengguan"]
        corrected = (await league(conn, "department", W, [
            {"kind": "correct_rating", "unit_id": "chengguan", "community_id": "heping-a1-c1",
             "responsiveness": 4, "quality": 4, "attitude": 4, "pushed_down": False},
        ]))["chengguan"]
    assert (before["volume"], before["on_time_accept"], before["penalties"], before["pushed_down"]) == (2, 0.5, 1, 1)
    assert (before["evaluation_num"], before["evaluation_den"]) == (18, 30)
    assert (after["volume"], after["on_time_accept"], after["penalties"], after["pushed_down"]) == (1, 1.0, 0, 0)
    assert (after["evaluation_num"], after["evaluation_den"]) == (15, 15)
    assert (corrected["evaluation_num"], corrected["evaluation_den"], corrected["pushed_down"]) == (27, 30, 0)
    assert after["score"] > before["score"]


async def test_the_score_interval_contains_the_sql_score(pool):
    q = Quarter()
    for i in range(12):
        q.issue(f"c{i}")
        q.reached_street(f"c{i}")
        q.assign(f"c{i}", "lvhua", accepted=i % 4 != 0, resolved=i % 3 != 0)
        q.feedback(f"c{i}", i % 5 != 0)
    q.rating("heping-a1-c1", "lvhua", 4, 5, 3)
    async with pool.acquire() as conn:
        await q.write(conn)
        record = (await league(conn, "department", W))["lvhua"]
    row = row_of("department", record)
    values = {k: record[k] for k in ("on_time_accept", "on_time_resolve", "satisfaction", "reopen_rate",
                                     "penalty_rate", "evaluation")}
    assert composite(values, W, row.pushed_down, True) == pytest.approx(record["score"], abs=0.01)
    lo, hi = score_interval(row, W)
    assert lo < record["score"] < hi


# ------------------------------------------------------------------------------ ranking rules
def _row(unit: str, score: float, volume: int = 50, spread: float = 2.0, penalties: int = 0, pushed_down: int = 0) -> LeagueRow:
    """A row of two equally weighted terms each score ± spread: its score interval is
    score ± spread / √2 (independent errors)."""
    p = score / 100
    rate = Rate(value=p, numerator=round(p * volume), denominator=volume, interval=(p - spread / 100, p + spread / 100))
    rates = {"satisfaction": rate, "on_time_accept": rate}
    return LeagueRow(unit_id=unit, unit_kind="department", volume=volume, on_time_accept=p, on_time_resolve=None,
                     satisfaction=p, reopen_rate=None, penalties=penalties, evaluation=None, pushed_down=pushed_down,
                     score=score, rates=rates)


def _request(**kw) -> ComputeRequest:
    base = dict(period="2025Q3", weights={"satisfaction": 0.5, "on_time_accept": 0.5}, red_size=3, black_size=3,
                black_if_penalties_at_least=5, black_if_pushed_down_at_least=2, min_volume=10)
    return ComputeRequest(**base | kw)


def test_small_units_are_not_ranked_nor_listed_by_score():
    rows = rank([_row("big1", 90), _row("big2", 50), _row("big3", 10), _row("tiny", 100, volume=1)], _request())
    by = {r.unit_id: r for r in rows}
    assert not by["tiny"].ranked and by["tiny"].rank == 0 and by["tiny"].listed is None
    assert "样本不足" in by["tiny"].reasons[0]
    assert [by[u].rank for u in ("big1", "big2", "big3")] == [1, 2, 3]
    assert (by["big1"].listed, by["big2"].listed, by["big3"].listed) == ("red", None, "black")


def test_a_middle_band_always_remains_and_overlapping_intervals_are_not_listed():
    six = [_row(f"u{i}", s) for i, s in enumerate([95, 90, 85, 20, 15, 10])]
    rows = rank(six, _request())
    listed = [r.listed for r in sorted(rows, key=lambda r: r.rank)]
    assert listed == ["red", "red", None, None, "black", "black"]  # (6 − 1) // 2 = 2 per list at most
    close = rank([_row("a", 80.3), _row("b", 80.2), _row("c", 79.3)], _request())
    assert all(r.listed is None for r in close)  # a 0.9-point gap inside ±1.4 intervals lists no one
    assert close[0].score_interval == pytest.approx((80.3 - 2 / 2 ** 0.5, 80.3 + 2 / 2 ** 0.5), abs=0.01)
    two = rank([_row("a", 99), _row("b", 1)], _request())
    assert all(r.listed is None for r in two)


def test_hard_rules_list_whatever_the_volume_and_are_named():
    rows = rank([_row("a", 90), _row("b", 50), _row("tiny", 99, volume=2, penalties=6),
                 _row("pusher", 95, pushed_down=2)], _request())
    by = {r.unit_id: r for r in rows}
    assert by["tiny"].listed == "black" and any("硬性规则：罚单 6 张" in x for x in by["tiny"].reasons)
    assert by["pusher"].listed == "black" and any("随意下放任务 2 次" in x for x in by["pusher"].reasons)


def test_the_penalty_rule_weighs_penalties_against_the_units_volume():
    """5 penalties on 300 issues is not 5 on 6: the count and the share per issue must both be met."""
    big, small = _row("big", 50, volume=300, penalties=12), _row("small", 50, volume=20, penalties=5)
    rows = {r.unit_id: r for r in rank([big, small, _row("c", 50)], _request(black_if_penalties_per_issue_at_least=0.2))}
    assert rows["big"].listed is None and not any("罚单" in x for x in rows["big"].reasons)  # 0.04 per issue
    assert rows["small"].listed == "black"
    assert any(x == "硬性规则：罚单 5 张 (≥ 5)，每件 0.25 张 (≥ 0.20)" for x in rows["small"].reasons)
    # Without a share (runs begun before it), the count alone lists.
    rows = {r.unit_id: r for r in rank([_row("big", 50, volume=300, penalties=12), _row("c", 50)], _request())}
    assert rows["big"].listed == "black"


def test_changes_against_the_previous_draft():
    old = rank([_row("a", 90), _row("b", 50), _row("c", 10)], _request())
    new = rank([_row("a", 90), _row("b", 50), _row("c", 40, spread=60)], _request())
    found = {(c.unit_id, c.field): (c.before, c.after) for c in changes(old, new)}
    assert found[("c", "score")] == (10, 40) and found[("c", "listed")] == ("black", None)
    assert ("a", "score") not in found


def test_rates_of_a_record():
    record = {f"{r}_{x}": v for r in ("on_time_accept", "on_time_resolve", "satisfaction", "reopen_rate",
                                      "penalty_rate", "evaluation") for x, v in (("num", 0), ("den", 0))}
    record |= {"on_time_accept_num": 3, "on_time_accept_den": 4, "evaluation_num": 24, "evaluation_den": 30}
    record |= {"on_time_accept": 0.75, "evaluation": 0.8, "on_time_resolve": None, "satisfaction": None,
               "reopen_rate": None, "penalty_rate": None, "evaluation_sd": 0.2}
    rates = rates_of(record)
    assert rates["on_time_accept"].interval == wilson(3, 4)
    lo, hi = rates["evaluation"].interval  # two ratings: 0.8 ± 1.96 · 0.2 / √2
    assert lo == pytest.approx(0.8 - 0.2772, abs=1e-4) and hi == 1.0
    assert rates["satisfaction"].interval is None
    assert mean_interval(0.8, 0.0, 4) == pytest.approx((0.8 - 1.96 / 15 / 2, 0.8 + 1.96 / 15 / 2), abs=1e-4)
    assert mean_interval(0.8, None, 1) == wilson(0.8, 1)


def test_min_volume_is_configured_under_league(demo):
    from pydantic import ValidationError

    from schemas.jurisdiction import Jurisdiction
    from schemas.league import LeaguePolicy

    assert demo.league.min_volume == 10
    j = Jurisdiction.model_validate(demo.model_dump(mode="json") | {"league": {"min_volume": 25}})
    assert j.league.min_volume == 25
    with pytest.raises(ValidationError):
        LeaguePolicy(min_volume=0)
