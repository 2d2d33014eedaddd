"""ReverseEvaluationWorkflow (id `evaluation-<YYYY>Q<n>`): one round of 逆向考评.

Opens for the quarter, fixes who rates whom from the read model, reminds communities that have
not rated everything, takes ratings by update until the window (working days) closes, then
refuses them and tells the quarter's league table."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.labels import local_time
    from activities.quarterly import QuarterlyActivities
    from schemas.evaluation import EvaluationInput, EvaluationState, Rating, RatingRecord, RoundRequest
    from schemas.principal import Role
    from workflows.common import LOCAL as _LOCAL
    from workflows.common import RECORD as _RECORD
    from workflows.common import deadline_at, forbidden, not_allowed, notify, require_workflow_id


@workflow.defn(name="ReverseEvaluationWorkflow")
class ReverseEvaluationWorkflow:
    @workflow.init
    def __init__(self, input: EvaluationInput) -> None:
        self.input = input
        self.s: EvaluationState | None = None
        self._lock = asyncio.Lock()

    @workflow.run
    async def run(self, input: EvaluationInput) -> EvaluationState:
        require_workflow_id(f"evaluation-{input.quarter}")
        window = input.window or await workflow.execute_local_activity_method(QuarterlyActivities.evaluation_window, **_LOCAL)
        opened = workflow.now()
        closes = await deadline_at(opened, window)
        communities = await workflow.execute_activity_method(
            QuarterlyActivities.open_round, RoundRequest(quarter=input.quarter, opened_at=opened, closes_at=closes), **_RECORD
        )
        self.s = EvaluationState(quarter=input.quarter, opened_at=opened, closes_at=closes, communities=communities)
        self._details()
        for fraction in sorted(input.reminders):
            at = opened + (closes - opened) * fraction
            await workflow.sleep(max(at - workflow.now(), timedelta(0)))
            await self._remind(fraction)
        await workflow.sleep(max(closes - workflow.now(), timedelta(0)))
        async with self._lock:
            self.s.closed = True
            self._details()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await workflow.execute_activity_method(
            QuarterlyActivities.close_round, RoundRequest(quarter=input.quarter, closes_at=closes), **_RECORD
        )
        await self._tell_league(f"league-{input.quarter}")
        if input.quarter.endswith("Q4"):
            await self._tell_league(f"league-{input.quarter[:4]}")
        return self.s

    def _details(self) -> None:
        """The Web UI's current details: the round, its window and who has yet to rate (no command)."""
        s = self.s
        state = "已截止" if s.closed else f"开放至 {local_time(s.closes_at)}（北京时间）"
        workflow.set_current_details(f"**逆向考评** {s.quarter} · {state} · **待评社区** {len(s.pending())}/{len(s.communities)}")

    async def _remind(self, fraction: float) -> None:
        self.s.reminders_sent.append(fraction)
        for community in self.s.pending():
            await notify("evaluation_reminder", f"evaluation-{self.s.quarter}", community,
                         f"逆向考评 {self.s.quarter}: please rate by {self.s.closes_at.isoformat()}",
                         quarter=self.s.quarter, closes_at=self.s.closes_at, community=community)

    async def _tell_league(self, workflow_id: str) -> None:
        """Wake the league table if it is already waiting; if it is not running yet, it finds the
        round closed in the read model when it starts."""
        try:
            await workflow.get_external_workflow_handle(workflow_id).signal("evaluation_closed", self.s.quarter)
        except Exception:  # not started yet (or finished): nothing to wake
            pass

    @workflow.query
    def state(self) -> EvaluationState:
        if self.s is None:
            raise not_allowed("the round is still opening")
        return self.s

    @workflow.update
    async def rate(self, input: Rating) -> RatingRecord:
        await workflow.wait_condition(lambda: self.s is not None)
        async with self._lock:
            self.validate_rate(input)
            record = RatingRecord(
                quarter=self.s.quarter, community_id=input.actor.unit_id, target_id=input.target_id,
                responsiveness=input.responsiveness, quality=input.quality, attitude=input.attitude,
                pushed_down=input.pushed_down, evidence=input.evidence, rated_at=workflow.now(),
            )
            await workflow.execute_activity_method(QuarterlyActivities.record_rating, record, **_RECORD)
            self.s.ratings[f"{record.community_id}|{record.target_id}"] = record
            return record

    @rate.validator
    def validate_rate(self, input: Rating) -> None:
        if input.actor.role != Role.community:
            raise forbidden(f"role {input.actor.role} may not rate; communities rate")
        if self.s is None:
            raise not_allowed("the round is still opening; try again")
        if self.s.closed:
            raise not_allowed(f"the evaluation round {self.s.quarter} closed at {self.s.closes_at.isoformat()}")
        targets = next((c.targets for c in self.s.communities if c.community_id == input.actor.unit_id), None)
        if targets is None:
            raise forbidden(f"community {input.actor.unit_id} had no issues handled in {self.s.quarter}")
        if input.target_id not in targets:
            raise not_allowed(f"{input.target_id} did not handle issues of {input.actor.unit_id} in {self.s.quarter}; rate one of {targets}")
