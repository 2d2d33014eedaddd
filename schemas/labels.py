"""The district's words for whistle's states, deadlines and events, and its clock: what the
Temporal UI's summaries and the notifications say. Pure, so workflows (the sandbox) and
activities share it."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

# China Standard Time has had no daylight saving since 1991: a fixed offset is exact, and needs no
# time-zone database inside the workflow sandbox. (Activities pass the jurisdiction's zone.)
CHINA = timezone(timedelta(hours=8), "北京时间")

STAGE = {
    "grid": "网格", "community": "社区", "area": "片区", "street": "街道", "department": "部门办理",
    "arbitration": "待仲裁", "feedback": "待评价", "review": "复核", "closed": "已办结",
}
DEADLINE = {"handle": "办理时限", "accept": "受理时限", "resolve": "办结时限", "feedback": "评价期限", "supervise": "督办"}
EVENT = {
    "intake": "受理", "escalated": "吹哨上报", "auto_escalated": "按职责清单上报", "dispatched": "派单", "accepted": "报到受理",
    "declined": "退单", "assigned": "改派", "resolved": "办结", "extension_requested": "申请延期",
    "extension_decided": "延期审批", "urged": "催办", "reminder": "时限提醒", "deadline_missed": "超时",
    "supervised": "督办", "report_in_missed": "逾期未报到", "feedback": "评价", "reopened": "重办", "review": "复核",
    "feedback_window_closed": "评价期满",
}
UNIT = {"supervisor": "督办人", "resident": "居民"}


# What people call a jurisdiction's zone; another zone is named by its key.
ZONE_NAMES = {"Asia/Shanghai": "北京时间", "Asia/Urumqi": "新疆时间", "Asia/Hong_Kong": "香港时间"}


@functools.lru_cache(maxsize=16)
def zone_of(key: str) -> tzinfo:
    """A jurisdiction's zone by its key. This module is passed through the workflow sandbox, so
    the time-zone database is read here, outside it."""
    return ZoneInfo(key)


def zone_name(key: str) -> str:
    return ZONE_NAMES.get(key, key)


def local_time_named(at: datetime | None, zone: str) -> str:
    """`2026-11-27 24:00（北京时间）`: a time in a jurisdiction's zone, with the zone's name."""
    return f"{local_time(at, zone)}（{zone_name(zone)}）"


def local_time(at: datetime | None, zone: tzinfo | str = CHINA) -> str:
    """`2026-11-27 24:00` for the end of a day (as deadlines are said), else `2026-11-27 15:30`.
    `zone`: a tzinfo, or a jurisdiction's zone key."""
    if at is None:
        return "—"
    t = at.astimezone(zone_of(zone) if isinstance(zone, str) else zone)
    if (t.hour, t.minute, t.second) == (0, 0, 0):
        return f"{(t - timedelta(days=1)):%Y-%m-%d} 24:00"
    return f"{t:%Y-%m-%d %H:%M}"


def unit_name(unit_id: str | None) -> str:
    return UNIT.get(unit_id or "", unit_id or "—")
