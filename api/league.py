"""Ratings of the reverse evaluation, and the red/black list as JSON and as an HTML page."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from api.bodies import with_actor, without_actor
from api.errors import ApiError, validation_detail
from api.deps import AppDeps, Deps
from api.guard import PUBLIC, CurrentPrincipal, limited, require_role
from api.updates import run_update
from schemas.evaluation import Rating, RatingRecord
from schemas.base import DEFAULT_TIMEZONE
from schemas.league import INSUFFICIENT, LeagueState, PublishedLeague, ReviewDraft
from schemas.period import PERIOD_PATTERN, parse_period, quarters_of_year
from schemas.principal import Role
from whistle.db import queries

router = APIRouter(tags=["evaluation and league"])
Quarter = Annotated[str, Path(pattern=r"^\d{4}Q[1-4]$")]
Period = Annotated[str, Path(pattern=PERIOD_PATTERN)]


async def _update(d: Deps, workflow_id: str, name: str, arg, result_type, missing: str):
    _, result = await run_update(
        d.client, workflow_id, name, arg, result_type, missing=missing, finished=f"{workflow_id} has finished"
    )
    return result


RatingBody = without_actor(Rating)
ReviewDraftBody = without_actor(ReviewDraft)


@router.post("/v1/evaluations/{quarter}/ratings", response_model=RatingRecord)
async def rate(
    d: AppDeps, quarter: Quarter, p: CurrentPrincipal, payload: RatingBody,  # type: ignore[valid-type]
) -> RatingRecord:
    """A community rates a street or department that handled its issues; revisable until the
    round closes, refused after."""
    require_role(p, Role.community)
    try:
        rating = with_actor(Rating, payload, p.actor().model_dump())
    except ValidationError as exc:
        raise ApiError(422, "invalid input", validation_detail(exc.errors())) from None
    return await _update(d, f"evaluation-{quarter}", "rate", rating, RatingRecord, f"no evaluation round for {quarter}")


@router.post("/v1/league/{period}/review", response_model=LeagueState)
async def review(
    d: AppDeps, period: Period, p: CurrentPrincipal, payload: ReviewDraftBody,  # type: ignore[valid-type]
) -> LeagueState:
    """The supervisor approves the draft (it is published) or sends it back with comments and
    adjustments (each with a reason), which the next draft applies."""
    require_role(p, Role.supervisor)
    try:
        decision = with_actor(ReviewDraft, payload, p.actor().model_dump())
    except ValidationError as exc:
        raise ApiError(422, "invalid input", validation_detail(exc.errors())) from None
    return await _update(d, f"league-{period}", "review_draft", decision, LeagueState, f"no league table for {period}")


async def table_of(pool, period: str) -> dict[str, Any] | None:
    """The published red/black list of `period` as the API and the page show it; None if there is
    none (or only a draft)."""
    return (await table_or_progress(pool, period))[0]


async def table_or_progress(pool, period: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The published list of `period`, or, when none is, where the period stands (`_progress`),
    read in one snapshot: a list republished meanwhile never mixes its header with other rows."""
    year, quarter = parse_period(period)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        publication = await conn.fetchrow(queries.SELECT_PUBLICATION, period)
        if publication is not None and publication["status"] == "published":
            return _published(period, publication, await conn.fetch(queries.SELECT_LEAGUE_ROWS, period)), None
        rounds = await conn.fetch(queries.SELECT_ROUNDS, [period] if quarter else quarters_of_year(year))
    return None, _progress(rounds, publication)


def _published(period: str, publication, rows) -> dict[str, Any]:
    return {
        "period": period,
        "status": publication["status"],
        "weights": publication["weights"],
        "comments": publication["comments"],
        "computed_at": publication["computed_at"].isoformat(),
        "published_at": publication["published_at"].isoformat() if publication["published_at"] else None,
        "draft": publication["draft"],
        "min_volume": publication["min_volume"],
        "adjustments": publication["adjustments"],
        "changes": publication["changes"],
        "departments": [r["metrics"] for r in rows if r["unit_kind"] == "department"],
        "streets": [r["metrics"] for r in rows if r["unit_kind"] == "street"],
    }


def _progress(rounds, publication) -> dict[str, Any]:
    """Where a period with no published list stands: the evaluation rounds it needs that have
    opened (each open or closed, and when it closes), and the draft awaiting review, if any."""
    iso = lambda t: t.isoformat() if t else None  # noqa: E731
    return {
        "rounds": [{"quarter": r["quarter"], "status": r["status"], "opened_at": iso(r["opened_at"]),
                    "closes_at": iso(r["closes_at"]), "closed_at": iso(r["closed_at"])} for r in rounds],
        "draft": publication["draft"] if publication is not None else None,
    }


async def load_table(d: Deps, period: str) -> dict[str, Any]:
    table, progress = await table_or_progress(d.pool, period)
    if table is None:
        raise ApiError(404, f"no published red/black list for {period}", progress)
    return table


@router.get("/v1/league/{period}", response_model=PublishedLeague, dependencies=[Depends(limited)],
            openapi_extra=PUBLIC)
async def league_json(d: AppDeps, period: Period) -> PublishedLeague:
    """The published red/black list: every rate of every department and street with its
    numerator, denominator and interval, the score's interval, the supervisor's adjustments."""
    return PublishedLeague.model_validate(await load_table(d, period))


# ---------------------------------------------------------------------------------- HTML
LABELS = {
    "score": "综合得分", "on_time_accept": "按时受理率", "on_time_resolve": "按时办结率",
    "satisfaction": "群众满意率", "reopen_rate": "重办率", "evaluation": "逆向考评",
}
LIST_NAMES = {"red": "红榜", "black": "黑榜"}
WEIGHT_LABELS = {
    "satisfaction": "群众满意率", "evaluation": "逆向考评", "on_time_accept": "按时受理率",
    "on_time_resolve": "按时办结率", "low_reopen": "低重办率", "low_penalty": "低罚单率",
}


def _local(iso: str, tz: str) -> str:
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _rate_cell(r: dict[str, Any], key: str) -> str:
    """A rate with its numerator/denominator and interval, e.g. 75.0% (3/4) [30.1–95.4]."""
    rate = (r.get("rates") or {}).get(key)
    if not rate:
        return _pct(r.get(key))
    if rate["value"] is None:
        return "—"
    interval = rate.get("interval")
    span = f' <span class="ci">[{interval[0] * 100:.0f}–{interval[1] * 100:.0f}]</span>' if interval else ""
    return f'{_pct(rate["value"])} <span class="frac">({rate["numerator"]}/{rate["denominator"]})</span>{span}'


def _interval(r: dict[str, Any], key: str) -> tuple[float, float] | None:
    """The interval of a chart's value as a fraction of the bar's full length."""
    if key == "score":
        found = r.get("score_interval")
        return (found[0] / 100, found[1] / 100) if found else None
    rate = (r.get("rates") or {}).get(key)
    return tuple(rate["interval"]) if rate and rate.get("interval") else None


def _bars(title: str, rows: list[dict[str, Any]], key: str) -> str:
    """A horizontal bar chart in SVG: one bar per unit, value as a percentage (score: 0–100),
    with an error bar over its interval."""
    width, bar_h, gap, label_w = 600, 18, 6, 150
    span = width - label_w - 80
    height = len(rows) * (bar_h + gap) + 30
    parts = [f'<svg class="chart" role="img" aria-label="{html.escape(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{html.escape(title)}</title>',
             f'<text x="0" y="14" class="chart-title">{html.escape(title)}</text>']
    for i, r in enumerate(rows):
        value = r.get(key)
        fraction = 0.0 if value is None else (value / 100 if key == "score" else value)
        y = 24 + i * (bar_h + gap)
        colour = {"red": "#c62828", "black": "#212121"}.get(r.get("listed") or "", "#5c7cfa")
        if r.get("ranked") is False:
            colour = "#bdbdbd"
        length = max(0.0, min(1.0, fraction)) * span
        shown = "—" if value is None else (f"{value:.1f}" if key == "score" else f"{value * 100:.0f}%")
        parts.append(
            f'<text x="0" y="{y + 13}" class="bar-label">{html.escape(r.get("name") or r["unit_id"])}</text>'
            f'<rect class="bar" x="{label_w}" y="{y}" width="{length:.1f}" height="{bar_h}" fill="{colour}"/>'
        )
        interval = _interval(r, key) if value is not None else None
        if interval:
            x0, x1, mid = label_w + interval[0] * span, label_w + interval[1] * span, y + bar_h / 2
            parts.append(
                f'<g class="error-bar"><title>{interval[0] * 100:.1f}–{interval[1] * 100:.1f}</title>'
                f'<line x1="{x0:.1f}" y1="{mid:.1f}" x2="{x1:.1f}" y2="{mid:.1f}" stroke="#e09f00" stroke-width="2"/>'
                f'<line x1="{x0:.1f}" y1="{y + 3}" x2="{x0:.1f}" y2="{y + bar_h - 3}" stroke="#e09f00" stroke-width="2"/>'
                f'<line x1="{x1:.1f}" y1="{y + 3}" x2="{x1:.1f}" y2="{y + bar_h - 3}" stroke="#e09f00" stroke-width="2"/></g>'
            )
        parts.append(f'<text x="{label_w + span + 6:.1f}" y="{y + 13}" class="bar-value">{shown}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _score_cell(r: dict[str, Any]) -> str:
    interval = r.get("score_interval")
    span = f' <span class="ci">[{interval[0]:.1f}–{interval[1]:.1f}]</span>' if interval else ""
    return f'{r["score"]:.1f}{span}'


def _table(rows: list[dict[str, Any]], labels: dict[str, str]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("排名", "单位", "榜单", "综合得分 [区间]", "办件量", labels["on_time_accept"], labels["on_time_resolve"],
                                            "群众满意率", "重办率", "罚单", "逆向考评", "随意下放", "说明"))
    body = []
    for r in rows:
        listed = r.get("listed")
        rank = r["rank"] if r.get("ranked", True) else INSUFFICIENT
        body.append(
            f'<tr class="{listed or ""}"><td>{rank}</td><td>{html.escape(r.get("name") or r["unit_id"])}</td>'
            f'<td>{LIST_NAMES.get(listed, "")}</td><td>{_score_cell(r)}</td><td>{r["volume"]}</td>'
            f'<td>{_rate_cell(r, "on_time_accept")}</td><td>{_rate_cell(r, "on_time_resolve")}</td>'
            f'<td>{_rate_cell(r, "satisfaction")}</td><td>{_rate_cell(r, "reopen_rate")}</td><td>{r["penalties"]}</td>'
            f'<td>{_rate_cell(r, "evaluation")}</td><td>{r["pushed_down"]}</td>'
            f'<td>{html.escape("；".join(r.get("reasons") or []))}</td></tr>'
        )
    return f'<table class="league"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


ADJUSTMENT_NAMES = {"exclude_issue": "剔除工单", "void_rating": "作废评价", "correct_rating": "更正评价"}


def _review(t: dict[str, Any]) -> str:
    """Every adjustment (who, why) and what changed against the previous draft."""
    out = []
    adjustments = t.get("adjustments") or []
    if adjustments:
        items = "".join(
            f'<li>{ADJUSTMENT_NAMES.get(a["kind"], a["kind"])} · {html.escape(a["unit_id"])}'
            f'{" · " + html.escape(a.get("issue_id") or a.get("community_id") or "")} · 理由：{html.escape(a["reason"])}'
            f' · {html.escape(a["by"])}（第 {a["draft"]} 稿退回）</li>'
            for a in adjustments
        )
        out.append(f'<section id="adjustments"><h2>审核调整</h2><ul>{items}</ul></section>')
    changes = t.get("changes") or []
    if changes:
        items = "".join(
            f'<li>{html.escape(c["unit_id"])} · {html.escape(c["field"])}：{html.escape(str(c["before"]))} → '
            f'{html.escape(str(c["after"]))}</li>' for c in changes
        )
        out.append(f'<section id="changes"><h2>与上一稿相比</h2><ul>{items}</ul></section>')
    return "".join(out)


def render_page(t: dict[str, Any], tz: str = DEFAULT_TIMEZONE) -> str:
    sections = []
    for kind, title in (("departments", "区级职能部门"), ("streets", "街道")):
        rows = t[kind]
        if not rows:
            continue
        # A street is measured on its own handling and dispatch; resolving is the departments'.
        labels = LABELS | ({"on_time_accept": "按时处置率", "on_time_resolve": "按时办结率（不考核街道）"} if kind == "streets" else {})
        charts = "".join(_bars(f"{title}·{labels[k]}", rows, k) for k in LABELS)
        sections.append(f'<section id="{kind}"><h2>{title}</h2>{_table(rows, labels)}<div class="charts">{charts}</div></section>')
    weights = "，".join(f"{WEIGHT_LABELS.get(k, k)} {v:g}" for k, v in t["weights"].items() if v)
    status = "已发布" if t["status"] == "published" else f"草稿（第 {t.get('draft') or 1} 稿）"
    minimum = t.get("min_volume")
    rule = (f"办件量少于 {minimum} 件的单位为{INSUFFICIENT}，不排名；" if minimum else "") + \
        "按得分上榜须得分区间整体高于（低于）其余单位的中位数；罚单、随意下放等硬性规则不论办件量。"
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t["period"]} 红黑榜</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif;
       margin: 2rem; color: #222; }}
h1 {{ margin-bottom: .2rem; }} .meta {{ color: #666; margin-bottom: 1.5rem; }}
table.league {{ border-collapse: collapse; margin: 1rem 0; font-size: 14px; }}
table.league th, table.league td {{ border: 1px solid #ddd; padding: 4px 8px; text-align: right; white-space: nowrap; }}
table.league td:nth-child(2), table.league td:nth-child(13) {{ text-align: left; }}
tr.red td:nth-child(3) {{ color: #c62828; font-weight: bold; }} tr.black td:nth-child(3) {{ color: #000; font-weight: bold; }}
tr.red {{ background: #fff5f5; }} tr.black {{ background: #f0f0f0; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1.5rem; }} .chart-title {{ font-weight: bold; font-size: 14px; }}
.bar-label, .bar-value {{ font-size: 12px; }} .frac, .ci {{ color: #777; font-size: 12px; }}
</style></head>
<body><h1>{t["period"]} 红黑榜</h1>
<p class="meta">{status} · 计算于 {_local(t["computed_at"], tz)} · 权重 {html.escape(weights)}</p>
<p class="rule">{html.escape(rule)} 图中橙色线为 95% 区间。</p>
{"".join(sections) or "<p>本期没有可排名的单位。</p>"}
{_review(t)}
</body></html>"""


@router.get("/league/{period}", response_class=HTMLResponse, dependencies=[Depends(limited)])
async def league_page(d: AppDeps, period: Period) -> HTMLResponse:
    """The published red/black list as a page: ranking tables and bar charts of the metrics."""
    return HTMLResponse(render_page(await load_table(d, period), d.jurisdiction.timezone))
