"""The text of each notification, in Chinese with local times: one template per kind. The
workflow sends facts (`Notification.facts`), never prose; the notify activity renders them here,
so a wording can change without touching workflow code or history. docs/notifications.md
documents the webhook body."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from schemas.base import DEFAULT_TIMEZONE
from schemas.issue import Notification
from schemas.labels import DEADLINE, local_time, unit_name


def _when(facts: dict[str, Any], key: str, zone) -> str:
    value = facts.get(key)
    return local_time(datetime.fromisoformat(value) if isinstance(value, str) else value, zone) + "（北京时间）"


def _deadline(f: dict[str, Any]) -> str:
    return DEADLINE.get(f.get("deadline_kind", ""), f.get("deadline_kind", "时限"))


TEMPLATES: dict[str, Callable[[Notification, dict[str, Any], Any], str]] = {
    "dispatch": lambda n, f, z: (
        f"【派单】{n.subject}（{f.get('category', '')}）派至{unit_name(n.unit_id)}"
        f"{'牵头' if f.get('role') == 'lead' else '配合'}办理。请于{_when(f, 'accept_due', z)}前报到受理，"
        f"{_when(f, 'resolve_due', z)}前办结。"),
    "reminder": lambda n, f, z: (
        f"【催办】{n.subject}：{unit_name(n.unit_id)}的{_deadline(f)}将于{_when(f, 'due_at', z)}到期，请抓紧办理。"),
    "overdue": lambda n, f, z: (
        f"【超时】{n.subject}：{unit_name(f.get('unit'))}未在{_deadline(f)}{_when(f, 'due_at', z)}前完成，已记扣分。"
        + {"handle": "已自动上报。", "accept": "已转督办人仲裁。", "resolve": "转入每日督办。"}.get(f.get("deadline_kind", ""), "")),
    "supervision": lambda n, f, z: (
        f"【督办】{n.subject}：{unit_name(f.get('department'))}的办结时限{_when(f, 'resolve_due', z)}已过，"
        f"仍未办结。请当日报告进展；下次督办{_when(f, 'next_due', z)}。"),
    "urge": lambda n, f, z: f"【催办】{n.subject}：督办人催办——{f.get('note') or '请尽快办理'}。",
    "arbitration": lambda n, f, z: (
        f"【待仲裁】{n.subject}：{unit_name(f.get('department'))}退单，理由：{f.get('reason', '')}。请改派或裁定。"),
    "extension": lambda n, f, z: (
        f"【延期申请】{n.subject}：{unit_name(f.get('department'))}申请{_deadline(f)}延期{f.get('extend_by', '')}，"
        f"理由：{f.get('reason', '')}。请审批。"),
    "extension_decided": lambda n, f, z: (
        f"【延期审批】{n.subject}：{_deadline(f)}延期申请"
        + (f"已批准，新时限{_when(f, 'due_at', z)}。" if f.get("approved") else f"未批准（{f.get('comment') or '无说明'}），原时限不变。")),
    "reopen": lambda n, f, z: (
        f"【重办】{n.subject}：居民对办理结果不满意（第{f.get('reopens', 1)}次），退回{unit_name(n.unit_id)}重新办理。"),
    "review": lambda n, f, z: (
        f"【复核】{n.subject}：居民经{f.get('reopens', 0)}次重办仍不满意，请督办人复核（结案或改派）。"),
    "resolved": lambda n, f, z: (
        f"【办结】您反映的问题（{n.subject}，{f.get('category', '')}）已办结：{f.get('summary') or ''}。"
        f"请在{_when(f, 'feedback_due', z)}前通过受理时收到的评价链接告诉我们是否满意。"),
    "evaluation_reminder": lambda n, f, z: (
        f"【逆向考评】{f.get('quarter', '')}季度考评将于{_when(f, 'closes_at', z)}截止，"
        f"{unit_name(n.unit_id)}尚未给相关部门和街道评分，请及时评价。"),
    "briefing": lambda n, f, z: (
        f"【月度通报】{f.get('month', '')}：受理{f.get('issues', 0)}件，部门超时办结{f.get('late', 0)}件。"
        f"详见 /briefings/{f.get('month', '')}。"),
    "league_draft": lambda n, f, z: (
        f"【红黑榜{'审核提醒' if f.get('again') else '待审核'}】{f.get('period', '')}红黑榜第{f.get('draft', 1)}稿"
        f"{'仍待' if f.get('again') else '已生成，请'}审核：请于{_when(f, 'decision_due', z)}前批准发布或退回修改。"),
}


def render(n: Notification, zone: ZoneInfo | None = None) -> str:
    """The notification's text; a kind without a template (a later workflow's) keeps its message."""
    template = TEMPLATES.get(n.kind)
    if template is None or not n.facts:
        return n.message
    return template(n, n.facts, zone or ZoneInfo(DEFAULT_TIMEZONE))

