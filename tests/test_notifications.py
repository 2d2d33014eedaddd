"""Notifications to the people who must act, in Chinese with local times, one template per kind;
and what the Temporal UI shows of an issue (current details, activity and timer summaries)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from temporalio.api.enums.v1 import EventType

from activities.notifier import MemoryNotifier
from activities.templates import TEMPLATES, render
from schemas.issue import Notification
from tests.conftest import issue_worker
from tests.helpers import GRID_WORKER, RESIDENT, STREET_HANDLER, SUPERVISOR, act, dept, start

DUE = "2026-11-26T16:00:00+00:00"  # 2026-11-27 00:00 in Beijing: the end of the 26th
FACTS = {
    "dispatch": ({"role": "lead", "accept_due": DUE, "resolve_due": DUE, "category": "树木修剪"}, ["派单", "牵头", "2026-11-26 24:00（北京时间）"]),
    "reminder": ({"deadline_kind": "accept", "due_at": DUE}, ["催办", "受理时限", "2026-11-26 24:00"]),
    "overdue": ({"unit": "lvhua", "deadline_kind": "resolve", "due_at": DUE}, ["超时", "办结时限", "每日督办"]),
    "supervision": ({"department": "lvhua", "resolve_due": DUE, "next_due": DUE}, ["督办", "lvhua", "下次督办"]),
    "urge": ({"note": "请今天处理"}, ["催办", "请今天处理"]),
    "arbitration": ({"department": "lvhua", "reason": "非本部门职责"}, ["待仲裁", "非本部门职责"]),
    "extension": ({"department": "lvhua", "deadline_kind": "resolve", "extend_by": "2WD", "reason": "等配件"}, ["延期申请", "2WD", "等配件"]),
    "extension_decided": ({"deadline_kind": "resolve", "approved": True, "due_at": DUE}, ["延期审批", "已批准", "2026-11-26 24:00"]),
    "reopen": ({"reopens": 1}, ["重办", "第1次"]),
    "review": ({"reopens": 2}, ["复核", "2次"]),
    "resolved": ({"summary": "已修剪", "feedback_due": DUE, "category": "树木修剪"}, ["办结", "已修剪", "评价链接"]),
    # Not about one issue: a quarter's round, a red/black list draft, a month's briefing.
    "evaluation_reminder": ({"quarter": "2026Q4", "closes_at": DUE}, ["逆向考评", "2026Q4", "2026-11-26 24:00（北京时间）", "尚未"]),
    "league_draft": ({"period": "2026Q4", "draft": 2, "decision_due": DUE, "again": False}, ["红黑榜待审核", "第2稿", "2026-11-26 24:00"]),
    "briefing": ({"month": "2026-10", "issues": 412, "late": 9}, ["月度通报", "412件", "超时办结9件", "/briefings/2026-10"]),
}
ABOUT_AN_ISSUE = set(FACTS) - {"evaluation_reminder", "league_draft", "briefing"}


def test_every_kind_has_a_template_and_a_test():
    assert set(FACTS) == set(TEMPLATES)


@pytest.mark.parametrize("kind", sorted(FACTS))
def test_each_kind_reads_in_chinese_with_local_times(kind):
    facts, says = FACTS[kind]
    n = Notification(kind=kind, subject="hotline-A1", issue_id="hotline-A1", unit_id="lvhua", message="(english)", facts=facts,
                     at=datetime(2026, 11, 24, tzinfo=timezone.utc))
    text = render(n)
    for part in says:
        assert part in text, (kind, text)
    assert ("hotline-A1" in text) == (kind in ABOUT_AN_ISSUE)
    assert "+00:00" not in text and "T16:00" not in text  # no UTC, no ISO


def test_a_draft_reminded_says_it_is_still_waiting():
    n = Notification(kind="league_draft", subject="league-2026Q4", unit_id="supervisor", message="(english)",
                     facts={"period": "2026Q4", "draft": 1, "decision_due": DUE, "again": True},
                     at=datetime(2026, 11, 24, tzinfo=timezone.utc))
    assert "审核提醒" in render(n) and "仍待审核" in render(n)


def test_a_notice_without_facts_keeps_its_message():
    """Sent by runs that predate its facts (history keeps their inputs as they were)."""
    n = Notification(kind="league_draft", issue_id="league-2026Q4", unit_id="supervisor", message="红黑榜 draft 1",
                     at=datetime(2026, 11, 24, tzinfo=timezone.utc))
    assert render(n) == "红黑榜 draft 1"


async def test_a_lifecycle_tells_each_party_in_chinese(dev_env, demo, pool):
    notes = MemoryNotifier()
    async with issue_worker(dev_env.client, demo, pool, notes) as tq:
        h = await start(dev_env.client, tq, "illegal-construction", reporter={"phone": "13800000000"})
        await act(h, "escalate", actor=GRID_WORKER, reason="违建")
        await act(h, "dispatch", actor=STREET_HANDLER)
        await act(h, "accept", actor=dept("chengguan"))
        await act(h, "accept", actor=dept("zhujian"))
        await act(h, "request_extension", actor=dept("chengguan"), deadline="resolve", extend_by="2WD", reason="审批")
        await act(h, "decide_extension", actor=SUPERVISOR, department_id="chengguan", approve=True)
        await act(h, "resolve", actor=dept("chengguan"), summary="拆除")
        await act(h, "resolve", actor=dept("zhujian"), summary="复核")
        await act(h, "feedback", actor=RESIDENT, satisfied=False, comment="未彻底")
        # Current details are the workflow's metadata query, which the Web UI runs.
        from temporalio.api.sdk.v1 import WorkflowMetadata

        metadata = await h.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        history = await h.fetch_history()
    sent = {(n.kind, n.unit_id) for n in notes.sent}
    assert {("dispatch", "chengguan"), ("dispatch", "zhujian"), ("extension", "supervisor"),
            ("extension_decided", "chengguan"), ("resolved", "resident"), ("reopen", "chengguan"),
            ("reopen", "zhujian")} <= sent, sent
    for n in notes.sent:
        assert n.text and n.text.startswith("【"), n  # rendered, in Chinese
        if n.kind in ("dispatch", "extension_decided", "resolved", "reminder", "overdue", "supervision"):
            assert "北京时间" in n.text, n.text
        assert "13800000000" not in (n.text or "") + str(n.facts)  # never the reporter's contact
    # The Web UI: current details in the district's words, and summaries on the activities and timers.
    details = metadata.current_details
    assert "**阶段** 部门办理" in details and "北京时间" in details, details
    # Summaries are payloads: encrypted like the rest, decoded by the codec (as the Web UI's /codec does).
    from tests.conftest import CONVERTER

    async def summary(e) -> str:
        [p] = await CONVERTER.payload_codec.decode([e.user_metadata.summary])
        return CONVERTER.payload_converter.from_payload(p, str)

    text = "\n".join([await summary(e) for e in history.events if e.user_metadata.HasField("summary")])
    assert "记录: 派单" in text and "受理: illegal-construction" in text and "通知 dispatch → chengguan" in text, text
    timers = [await summary(e) for e in history.events
              if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED and e.user_metadata.HasField("summary")]
    assert timers and any("时限" in t for t in timers), timers


async def test_the_round_and_the_table_say_where_they_are(quarter):
    from temporalio.api.sdk.v1 import WorkflowMetadata

    client, period = quarter["client"], quarter["period"]
    evaluation = await client.get_workflow_handle(f"evaluation-{period}").query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata)
    league = await client.get_workflow_handle(f"league-{period}").query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert f"**逆向考评** {period} · 已截止" in evaluation.current_details, evaluation.current_details
    assert f"**红黑榜** {period} · **阶段** 已公布" in league.current_details, league.current_details


def test_a_version_2_notification_names_its_subject():
    """An activity input scheduled by earlier code (retried after an upgrade) put every subject
    into issue_id: a table's is a subject, not an issue."""
    table = Notification(kind="league_draft", issue_id="league-2026Q4", unit_id="supervisor", message="m", at=datetime.now(timezone.utc))
    assert (table.subject, table.issue_id) == ("league-2026Q4", None)
    issue = Notification(kind="urge", issue_id="hotline-A1", unit_id="lvhua", message="m", at=datetime.now(timezone.utc))
    assert (issue.subject, issue.issue_id) == ("hotline-A1", "hotline-A1")
