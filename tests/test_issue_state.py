"""The workflow's state across versions, without a server."""

from __future__ import annotations

from schemas.issue import IssueContext, IssueState
from tests.issue_factory import T0, state


def test_a_state_carried_by_an_older_run_drops_its_events_and_keeps_their_count():
    """Runs before the events left the state carried them through continue-as-new: the new code
    takes that state with its last event's number as `seq`."""
    legacy = state().model_dump(mode="json") | {
        "history": [{"seq": n, "at": T0.isoformat(), "kind": "urged", "detail": {}} for n in (1, 2, 3)]
    }
    legacy.pop("seq")
    s = IssueState.model_validate(legacy)
    assert s.seq == 3 and "history" not in s.model_dump()
    assert IssueState.model_validate(state(seq=5).model_dump()).seq == 5
    assert IssueState.model_validate({**state(seq=5).model_dump(), "history": []}).seq == 5


def test_a_context_recorded_with_the_owning_level_still_reads():
    """Contexts in history, carried states and snapshots from before it was dropped name the
    category's owning level; they read, and nothing keeps it."""
    legacy = state().model_dump(mode="json")
    legacy["context"]["owning_level"] = "street"
    s = IssueState.model_validate(legacy)
    assert "owning_level" not in s.model_dump()["context"]
    assert s.context == state().context
    assert IssueContext.model_validate({**state().context.model_dump(), "owning_level": "street"}) == state().context
