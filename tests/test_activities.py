"""Activities on their own: a retried read-model write writes nothing twice; notifiers deliver."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from temporalio.testing import ActivityEnvironment

from activities.issue import IssueActivities
from activities.notifier import LogNotifier, MemoryNotifier, WebhookNotifier, notifier_from
from schemas.intake import IssueIntake
from schemas.issue import ContextRequest, IssueEvent, IssueState, Notification, Penalty, Stage, TransitionRecord
from whistle.db import queries

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


async def _record(activities: IssueActivities, seq: int, stage: Stage) -> TransitionRecord:
    context = await ActivityEnvironment().run(
        activities.resolve_issue_context, ContextRequest(category="noise", grid_id="heping-a1-c1-g1")
    )
    intake = IssueIntake(channel="hotline", reference="R1", category="noise", grid_id="heping-a1-c1-g1", description="d")
    state = IssueState(
        issue_id=intake.issue_id, workflow_id=intake.workflow_id, channel="hotline", reference="R1", category="noise",
        grid_id=intake.grid_id, description="d", context=context, stage=stage, created_at=NOW, updated_at=NOW,
        penalties=[Penalty(deadline_key="handle:x:1", unit_id="heping-a1-c1-g1", kind="handle_overdue", due_at=NOW, recorded_at=NOW)],
    )
    return TransitionRecord(event=IssueEvent(seq=seq, at=NOW, kind="intake" if seq == 1 else "urged", stage_to=stage), state=state)


async def test_a_retried_transition_writes_nothing_twice(demo, pool):
    activities = IssueActivities(demo, pool, MemoryNotifier())
    env = ActivityEnvironment()
    first = await _record(activities, 1, Stage.grid)
    second = await _record(activities, 2, Stage.community)
    await env.run(activities.record_transition, first)
    await env.run(activities.record_transition, second)
    await env.run(activities.record_transition, first)  # a late retry of the first write
    await env.run(activities.record_transition, second)
    async with pool.acquire() as conn:
        events = await conn.fetch(queries.SELECT_EVENTS, "hotline-R1")
        issue = await conn.fetchrow(queries.SELECT_ISSUE, "hotline-R1")
        penalties = await conn.fetch(queries.SELECT_PENALTIES, "hotline-R1")
    assert [e["seq"] for e in events] == [1, 2]
    assert issue["seq"] == 2 and issue["stage"] == "community"  # the older snapshot did not win
    assert len(penalties) == 1


async def test_the_same_seq_written_again_keeps_the_later_write(demo, pool):
    """A workflow task that fails after its (local activity) write is retried and writes the
    same seq again, perhaps at another time: the retry is what history keeps, so it wins."""
    activities = IssueActivities(demo, pool, MemoryNotifier())
    env = ActivityEnvironment()
    lost = await _record(activities, 1, Stage.grid)
    kept = await _record(activities, 1, Stage.community)
    kept.event.at = NOW.replace(second=7)
    await env.run(activities.record_transition, lost)
    await env.run(activities.record_transition, kept)
    async with pool.acquire() as conn:
        events = await conn.fetch(queries.SELECT_EVENTS, "hotline-R1")
        issue = await conn.fetchrow(queries.SELECT_ISSUE, "hotline-R1")
    assert [(e["seq"], e["stage_to"], e["at"]) for e in events] == [(1, "community", kept.event.at)]
    assert issue["stage"] == "community"


async def test_unknown_category_is_not_retried(demo, pool):
    from temporalio.exceptions import ApplicationError

    activities = IssueActivities(demo, pool, MemoryNotifier())
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(activities.resolve_issue_context, ContextRequest(category="x", grid_id="heping-a1-c1-g1"))
    assert info.value.non_retryable and info.value.type == "UnknownCategory"


@contextlib.contextmanager
def webhook() -> Iterator[tuple[str, list[tuple[dict, str]]]]:
    """A real HTTP receiver on loopback: its URL, and the (body, Idempotency-Key) it got."""
    received: list[tuple[dict, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((json.loads(body), self.headers["Idempotency-Key"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()


async def test_webhook_notifier_posts_json_with_an_idempotency_key():
    with webhook() as (url, received):
        notifier = notifier_from(url)
        assert isinstance(notifier, WebhookNotifier)
        note = Notification(kind="overdue", issue_id="hotline-R1", unit_id="supervisor", message="m", deadline_key="accept:x:1", at=NOW)
        await notifier.send(note)
        await notifier.send(note)  # a retry carries the same key
    assert [r[0]["kind"] for r in received] == ["overdue", "overdue"]
    assert received[0][1] == received[1][1] == f"hotline-R1:overdue:supervisor:{NOW.isoformat()}"


async def test_a_notification_sent_again_by_a_retried_workflow_task_keeps_its_key():
    """A local activity's notification is sent again when its workflow task is retried, at a
    later workflow time but after the same event: the key follows the event's seq."""
    with webhook() as (url, received):
        notifier = WebhookNotifier(url)
        first = Notification(kind="reminder", issue_id="hotline-R1", unit_id="heping", message="m", at=NOW, seq=4)
        await notifier.send(first)
        await notifier.send(first.model_copy(update={"at": NOW.replace(second=9)}))  # the retried task
        await notifier.send(first.model_copy(update={"seq": 6}))  # the next reminder of the deadline
    keys = [key for _, key in received]
    assert keys == ["hotline-R1:reminder:heping:seq4", "hotline-R1:reminder:heping:seq4", "hotline-R1:reminder:heping:seq6"]


def test_notifier_setting():
    assert isinstance(notifier_from("log"), LogNotifier)
    with pytest.raises(ValueError, match="notifier must be"):
        notifier_from("carrier-pigeon")
