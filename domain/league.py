"""The red/black list's rules after the SQL: rates with their intervals, the composite
score's interval, who is ranked (enough issues), who is listed (hard rules; by score only when
the interval lies clear of the others), and what changed against the previous draft.
docs/league.md states every rule here; tests/test_league_rules.py checks them on hand-made rows."""

from __future__ import annotations

import math
from statistics import median
from typing import Any

from schemas.league import INSUFFICIENT, RATES, Change, ComputeRequest, LeagueRow, Rate

Z = 1.959964  # 95%

# The score's terms: metric weight name → (rate, higher is better).
TERMS = {
    "satisfaction": ("satisfaction", True),
    "evaluation": ("evaluation", True),
    "on_time_accept": ("on_time_accept", True),
    "on_time_resolve": ("on_time_resolve", True),
    "low_reopen": ("reopen_rate", False),
    "low_penalty": ("penalty_rate", False),
}


def wilson(successes: float, n: float) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a proportion; None when nothing was measured."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + Z * Z / n
    centre = (p + Z * Z / (2 * n)) / denominator
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / denominator
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def mean_interval(mean: float, sd: float | None, n: int) -> tuple[float, float] | None:
    """The 95% normal interval of a mean of ratings: mean ± 1.96 · sd / √n, the spread taken as at
    least one rating point (1/15), so that a few identical ratings do not claim certainty. One
    rating alone has no spread to measure: its interval is the Wilson bound of n = 1."""
    if n <= 0:
        return None
    if n == 1 or sd is None:
        return wilson(mean, 1)
    half = Z * max(sd, 1 / 15) / math.sqrt(n)
    return (round(max(0.0, mean - half), 4), round(min(1.0, mean + half), 4))


def rates_of(record: Any) -> dict[str, Rate]:
    """Each rate from the SQL row's `<rate>_num` and `<rate>_den`, with its 95% interval: Wilson
    for the proportions; for the evaluation (points over 15 points per rating) the normal
    interval of the mean of the ratings."""
    out = {}
    for name in RATES:
        num, den = int(record[f"{name}_num"] or 0), int(record[f"{name}_den"] or 0)
        value = record[name]
        if name == "evaluation":
            interval = mean_interval(value, record["evaluation_sd"], den // 15) if den else None
        else:
            interval = wilson(num, den)
        out[name] = Rate(value=value, numerator=num, denominator=den, interval=interval)
    return out


def composite(values: dict[str, float | None], weights: dict[str, float], pushed_down: int, has_volume: bool) -> float:
    """100 × the weighted mean of the terms present: the same formula as the SQL's score."""
    total = weight = 0.0
    for term, (rate, higher) in TERMS.items():
        v = values.get(rate)
        if v is None or (term == "low_penalty" and not has_volume):
            continue
        if term == "evaluation":
            v = max(v - 0.1 * pushed_down, 0.0)
        w = weights.get(term, 0.0)
        total += w * (v if higher else 1 - min(v, 1.0))
        weight += w
    return round(100 * total / weight, 2) if weight else 0.0


def score_interval(row: LeagueRow, weights: dict[str, float]) -> tuple[float, float]:
    """Analytic: each term's distance from its value to the low (high) end of its interval,
    weighted and combined as independent errors, √Σ (wᵢ·dᵢ)² ÷ Σ wᵢ, below and above the score."""
    below = above = weight = 0.0
    for term, (rate, higher) in TERMS.items():
        r = row.rates.get(rate)
        if r is None or r.value is None or (term == "low_penalty" and row.volume <= 0):
            continue
        w = weights.get(term, 0.0)
        weight += w
        if r.interval is None:
            continue
        lo, hi = r.interval
        down, up = (r.value - lo, hi - r.value) if higher else (hi - r.value, r.value - lo)
        below += (w * down) ** 2
        above += (w * up) ** 2
    if not weight:
        return (row.score, row.score)
    return (round(max(0.0, row.score - 100 * math.sqrt(below) / weight), 2),
            round(min(100.0, row.score + 100 * math.sqrt(above) / weight), 2))


def rank(rows: list[LeagueRow], request: ComputeRequest) -> list[LeagueRow]:
    """Departments and streets are ranked apart (call once per kind).

    1. Ranked: units with at least `min_volume` issues, by score (ties by id). The others are
       样本不足: rank 0, not listed by score.
    2. Hard rules list a unit black whatever its volume, each named in its reasons: penalties
       by count and by share per issue of its volume (both), pushing tasks down by count.
    3. By score, with m = the median score of the *other* ranked units: red when the unit's score
       interval lies wholly above m, black when wholly below; at most red_size / black_size, and
       each list at most (n − 1) // 2 of the n ranked units, so a middle band always remains.
    """
    minimum = request.min_volume or 0
    for r in rows:
        r.score_interval = score_interval(r, request.weights)
        r.ranked = r.volume >= minimum
        r.rank, r.listed, r.reasons = 0, None, []
    ranked = sorted((r for r in rows if r.ranked), key=lambda r: (-r.score, r.unit_id))
    for i, r in enumerate(ranked, start=1):
        r.rank = i
    for r in rows:
        if not r.ranked:
            r.reasons.append(f"{INSUFFICIENT}（办件量 {r.volume} < {minimum}），不排名")
        at_least, per_issue = request.black_if_penalties_at_least, request.black_if_penalties_per_issue_at_least
        if at_least and r.penalties >= at_least and r.penalties >= per_issue * r.volume:
            r.listed = "black"
            share = f"，每件 {r.penalties / r.volume:.2f} 张 (≥ {per_issue:.2f})" if per_issue and r.volume else ""
            r.reasons.append(f"硬性规则：罚单 {r.penalties} 张 (≥ {at_least}){share}")
        if request.black_if_pushed_down_at_least and r.pushed_down >= request.black_if_pushed_down_at_least:
            r.listed = "black"
            r.reasons.append(f"硬性规则：随意下放任务 {r.pushed_down} 次 (≥ {request.black_if_pushed_down_at_least})")
    cap = (len(ranked) - 1) // 2
    if cap <= 0:
        return rows
    others = {r.unit_id: median([o.score for o in ranked if o is not r]) for r in ranked}
    black = [r for r in reversed(ranked) if r.listed is None and r.score_interval[1] < others[r.unit_id]]
    for r in black[: min(request.black_size, cap)]:
        r.listed = "black"
        r.reasons.append(f"综合得分区间 {_span(r)} 整体低于其余单位中位数 {others[r.unit_id]:.1f}")
    red = [r for r in ranked if r.listed is None and r.score_interval[0] > others[r.unit_id]]
    for r in red[: min(request.red_size, cap)]:
        r.listed = "red"
        r.reasons.append(f"综合得分区间 {_span(r)} 整体高于其余单位中位数 {others[r.unit_id]:.1f}")
    return rows


def _span(r: LeagueRow) -> str:
    lo, hi = r.score_interval
    return f"[{lo:.1f}, {hi:.1f}]"


COMPARED = ("volume", "score", "rank", "listed", "on_time_accept", "on_time_resolve", "satisfaction",
            "reopen_rate", "penalty_rate", "penalties", "evaluation", "pushed_down")


def changes(previous: list[LeagueRow], rows: list[LeagueRow]) -> list[Change]:
    """Every figure of every unit that differs from the previous draft."""
    before = {(r.unit_kind, r.unit_id): r for r in previous}
    out = []
    for r in rows:
        old = before.pop((r.unit_kind, r.unit_id), None)
        for field in COMPARED:
            a, b = (getattr(old, field) if old else None), getattr(r, field)
            if a != b:
                out.append(Change(unit_id=r.unit_id, unit_kind=r.unit_kind, field=field, before=a, after=b))
    for (kind, unit), old in before.items():
        out.append(Change(unit_id=unit, unit_kind=kind, field="volume", before=old.volume, after=None))
    return out
