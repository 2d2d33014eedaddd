"""The monthly briefing (月度通报) as JSON and as an HTML page with charts; public, like the
red/black list."""

from __future__ import annotations

import html
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse

from api.errors import ApiError
from api.deps import AppDeps, Deps
from api.guard import PUBLIC, limited
from schemas.base import DEFAULT_TIMEZONE
from schemas.briefing import MONTH_PATTERN, Briefing, UnitFigures
from whistle.db import queries

router = APIRouter(tags=["monthly briefing"])
Month = Annotated[str, Path(pattern=MONTH_PATTERN, description="YYYY-MM")]


async def briefing_of(pool, month: str) -> Briefing | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(queries.SELECT_BRIEFING, month)
    if row is None:
        return None
    return Briefing.model_validate(row["body"] | {"announced_at": row["announced_at"]})


async def load_briefing(d: Deps, month: str) -> Briefing:
    found = await briefing_of(d.pool, month)
    if found is None:
        raise ApiError(404, f"no monthly briefing for {month}")
    return found


@router.get("/v1/briefings/{month}", response_model=Briefing, dependencies=[Depends(limited)],
            openapi_extra=PUBLIC)
async def briefing_json(d: AppDeps, month: Month) -> Briefing:
    """The month's briefing: per department and per street, dispatched, resolved on time and
    late, still open, completion and on-time rates, dissatisfied answers, repeat complaints;
    the month's top categories and hot spots."""
    return await load_briefing(d, month)


# ---------------------------------------------------------------------------------- HTML
def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _stacked(title: str, rows: list[UnitFigures]) -> str:
    """Per unit, a stacked bar: resolved on time, resolved late, still open."""
    width, bar_h, gap, label_w = 640, 18, 6, 150
    most = max((r.dispatched for r in rows), default=0) or 1
    span = width - label_w - 60
    height = len(rows) * (bar_h + gap) + 50
    parts = [f'<svg class="chart" role="img" aria-label="{html.escape(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{html.escape(title)}</title>',
             f'<text x="0" y="14" class="chart-title">{html.escape(title)}</text>']
    for i, r in enumerate(rows):
        y, x = 24 + i * (bar_h + gap), float(label_w)
        parts.append(f'<text x="0" y="{y + 13}" class="bar-label">{html.escape(r.name)}</text>')
        for value, colour, label in ((r.resolved_on_time, "#2e7d32", "按时办结"), (r.resolved_late, "#ef6c00", "超时办结"),
                                     (r.still_open, "#9e9e9e", "未办结")):
            w = value / most * span
            if w:
                parts.append(f'<rect class="bar" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
                             f'<title>{label} {value}</title></rect>')
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 13}" class="bar-value">{r.dispatched}</text>')
    legend_y = height - 12
    for j, (colour, label) in enumerate((("#2e7d32", "按时办结"), ("#ef6c00", "超时办结"), ("#9e9e9e", "未办结"))):
        parts.append(f'<rect x="{label_w + j * 100}" y="{legend_y - 10}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{label_w + j * 100 + 16}" y="{legend_y}" class="bar-label">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _counts(title: str, items: list[tuple[str, int]]) -> str:
    width, bar_h, gap, label_w = 520, 18, 6, 190
    most = max((n for _, n in items), default=0) or 1
    height = len(items) * (bar_h + gap) + 30
    parts = [f'<svg class="chart" role="img" aria-label="{html.escape(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{html.escape(title)}</title>',
             f'<text x="0" y="14" class="chart-title">{html.escape(title)}</text>']
    for i, (label, n) in enumerate(items):
        y = 24 + i * (bar_h + gap)
        w = n / most * (width - label_w - 50)
        parts.append(f'<text x="0" y="{y + 13}" class="bar-label">{html.escape(label)}</text>'
                     f'<rect class="bar" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#5c7cfa"/>'
                     f'<text x="{label_w + w + 6:.1f}" y="{y + 13}" class="bar-value">{n}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: list[UnitFigures]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("单位", "派单量", "按时办结", "超时办结", "未办结", "办结率", "按时办结率",
                                            "不满意", "不满意率", "重复投诉"))
    body = "".join(
        f'<tr><td>{html.escape(r.name)}</td><td>{r.dispatched}</td><td>{r.resolved_on_time}</td>'
        f'<td>{r.resolved_late}</td><td>{r.still_open}</td><td>{_pct(r.completion_rate)}</td>'
        f'<td>{_pct(r.on_time_rate)}</td><td>{r.dissatisfied}/{r.answered}</td><td>{_pct(r.dissatisfied_rate)}</td>'
        f'<td>{r.repeat_complaints}</td></tr>'
        for r in rows
    )
    return f'<table class="briefing"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_briefing(b: Briefing, tz: str = DEFAULT_TIMEZONE) -> str:
    sections = []
    for rows, title in ((b.departments, "区级职能部门"), (b.streets, "街道")):
        if rows:
            sections.append(f'<section><h2>{title}</h2>{_table(rows)}'
                            f'<div class="charts">{_stacked(f"{title}·办理情况", rows)}</div></section>')
    tops = _counts("高发问题类别", [(c.name, c.issues) for c in b.top_categories])
    spots = _counts("问题热点网格", [(f"{h.community} {h.name}".strip(), h.issues) for h in b.hot_spots])
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{b.month} 月度通报</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif;
       margin: 2rem; color: #222; }}
.meta {{ color: #666; margin-bottom: 1.5rem; }}
table.briefing {{ border-collapse: collapse; margin: 1rem 0; font-size: 14px; }}
table.briefing th, table.briefing td {{ border: 1px solid #ddd; padding: 4px 8px; text-align: right; white-space: nowrap; }}
table.briefing td:first-child {{ text-align: left; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1.5rem; }} .chart-title {{ font-weight: bold; font-size: 14px; }}
.bar-label, .bar-value {{ font-size: 12px; }}
</style></head>
<body><h1>{b.month} 月度通报</h1>
<p class="meta">本月受理 {b.issues} 件 · 计算于 {b.computed_at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")} ·
按时办结率 = 按时办结 ÷ 已办结；不满意率 = 不满意 ÷ 有群众评价的工单（巡查自查、无反映人的工单不计）；
重复投诉 = 同一网格 30 天内再次反映的同类问题</p>
{"".join(sections) or "<p>本月没有派单。</p>"}
<section><h2>高发问题与热点</h2><div class="charts">{tops}{spots}</div></section>
</body></html>"""


@router.get("/briefings/{month}", response_class=HTMLResponse, dependencies=[Depends(limited)])
async def briefing_page(d: AppDeps, month: Month) -> HTMLResponse:
    """The month's briefing as a page: tables and charts."""
    return HTMLResponse(render_briefing(await load_briefing(d, month), d.jurisdiction.timezone))
