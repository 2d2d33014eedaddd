"""LeagueTableWorkflow (id `league-<YYYY>Q<n>`, or `league-<YYYY>` for the year-end
evaluation): waits for the evaluation round(s) to close, computes the red/black list as a
draft, has a supervisor approve it or send it back, and publishes and announces it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.quarterly import QuarterlyActivities
    from schemas.league import (
        Announcement, AppliedAdjustment, ComputeRequest, DraftDecision, LeagueInput, LeagueState, NoAnswer,
        PeriodRequest, ReviewDraft,
    )
    from schemas.principal import Role
    from workflows.common import LOCAL as _LOCAL
    from workflows.common import RECORD as _RECORD
    from workflows.common import deadline_at, forbidden, not_allowed, notify, require_workflow_id


KEEPS_SIGNAL = "league-round-signal-kept"


@workflow.defn(name="LeagueTableWorkflow")
class LeagueTableWorkflow:
    @workflow.init
    def __init__(self, input: LeagueInput) -> None:
        self.input = input
        self.s: LeagueState | None = None
        self._decision: ReviewDraft | None = None
        self._round_closed = False
        # Drafts that apply the supervisor's adjustments, rank only units with enough issues and
        # say what changed; executions begun before keep their comments-only review. Asked here,
        # in the run's first activation before anything else: the rule of workflows/patches.py.
        self._adjusting = workflow.patched("league-review-adjustments")
        # A round's close signalled while the rounds are being checked counts (it was cleared
        # after the check, and waited for the next poll: six hours by default). Executions begun
        # before clear it where they always did.
        self._keeps_signal = workflow.patched(KEEPS_SIGNAL)

    @workflow.run
    async def run(self, input: LeagueInput) -> LeagueState:
        require_workflow_id(f"league-{input.period}")
        policy = input.policy or await workflow.execute_local_activity_method(QuarterlyActivities.league_policy, **_LOCAL)
        self.s = LeagueState(period=input.period, stage="waiting", policy=policy)
        await self._wait_for_rounds()
        comments: list[str] = []
        adjustments: list[AppliedAdjustment] = []
        while True:
            request = ComputeRequest(
                period=input.period, weights=policy.resolved_weights(), red_size=policy.red_size,
                black_size=policy.black_size, black_if_penalties_at_least=policy.black_if_penalties_at_least,
                black_if_pushed_down_at_least=policy.black_if_pushed_down_at_least, comments=comments,
                black_if_penalties_per_issue_at_least=policy.black_if_penalties_per_issue_at_least,
                # Every run gets the minimum volume: it changes the activity's input, not the
                # commands, so runs begun before it replay the same.
                min_volume=policy.min_volume,
            )
            if self._adjusting:
                request.adjustments, request.draft = adjustments, self.s.drafts + 1
                request.previous = self.s.table.rows if self.s.table else None
            self.s.table = await workflow.execute_activity_method(
                QuarterlyActivities.compute_league, request, **_RECORD
            )
            self.s.stage, self.s.drafts = "draft", self.s.drafts + 1
            self._log(f"draft {self.s.drafts} computed")
            decision = await self._await_decision()
            if decision is None or decision.decision == DraftDecision.approve:
                break
            comments.append(decision.comments)
            adjustments = adjustments + [
                AppliedAdjustment(**a.model_dump(), by=decision.actor.id, draft=self.s.drafts, at=workflow.now())
                for a in decision.adjustments
            ]
            self._log(f"sent back by {decision.actor.id}: {decision.comments}"
                      + (f" ({len(decision.adjustments)} adjustments)" if decision.adjustments else ""))
        published_at = await workflow.execute_activity_method(
            QuarterlyActivities.publish_league, PeriodRequest(period=input.period), **_RECORD
        )
        self.s.stage = "published"
        self.s.table = self.s.table.model_copy(update={"status": "published", "published_at": published_at})
        self._log("published")
        if policy.webhook:
            await workflow.execute_activity_method(
                QuarterlyActivities.announce_league,
                Announcement(period=input.period, webhook=policy.webhook, table=self.s.table),
                **_RECORD,
            )
            self._log("announced")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.s

    async def _wait_for_rounds(self) -> None:
        poll = self.s.policy.poll_every.duration or timedelta(hours=6)
        while True:
            if self._keeps_signal:
                self._round_closed = False  # before the check: a close during it wakes the wait
            if await workflow.execute_activity_method(
                QuarterlyActivities.rounds_closed, PeriodRequest(period=self.input.period), **_RECORD
            ):
                return
            if not self._keeps_signal:
                self._round_closed = False
            try:
                await workflow.wait_condition(lambda: self._round_closed, timeout=poll)
            except asyncio.TimeoutError:
                pass

    async def _await_decision(self) -> ReviewDraft | None:
        """The supervisor's decision, or None when the policy publishes on no answer."""
        policy = self.s.policy
        asked = False  # the first notice of this draft, then reminders
        while True:
            self._decision = None
            now = workflow.now()
            self.s.decision_due = await deadline_at(now, policy.approval_deadline)
            await self._notify(f"红黑榜 {self.s.period} draft {self.s.drafts}: approve or send back by {self.s.decision_due.isoformat()}",
                               period=self.s.period, draft=self.s.drafts, decision_due=self.s.decision_due, again=asked)
            asked = True
            try:
                await workflow.wait_condition(lambda: self._decision is not None, timeout=self.s.decision_due - now)
                return self._decision
            except asyncio.TimeoutError:
                if self._decision is not None:  # arrived together with the deadline: it counts
                    return self._decision
                if policy.on_no_answer == NoAnswer.publish:
                    self._log("no answer by the deadline: published by policy")
                    return None
                self._log("no answer by the deadline: held, supervisor reminded")

    async def _notify(self, message: str, **facts) -> None:
        await notify("league_draft", f"league-{self.s.period}", "supervisor", message, **facts)

    def _log(self, line: str) -> None:
        self.s.history.append(f"{workflow.now().isoformat()} {line}")
        # The Web UI's current details: the table's stage and its last step (no command).
        stage = {"waiting": "等待考评截止", "draft": f"第{self.s.drafts}稿待审", "published": "已公布"}.get(self.s.stage, self.s.stage)
        workflow.set_current_details(f"**红黑榜** {self.s.period} · **阶段** {stage}\n\n{line}")

    @workflow.signal
    def evaluation_closed(self, quarter: str) -> None:
        self._round_closed = True

    @workflow.query
    def state(self) -> LeagueState:
        if self.s is None:
            raise not_allowed("the league table is starting")
        return self.s

    @workflow.update
    async def review_draft(self, input: ReviewDraft) -> LeagueState:
        self.validate_review_draft(input)
        self._decision = input
        await workflow.wait_condition(lambda: self._decision is None or self.s.stage == "published")
        return self.s

    @review_draft.validator
    def validate_review_draft(self, input: ReviewDraft) -> None:
        if input.actor.role != Role.supervisor:
            raise forbidden(f"role {input.actor.role} may not review the league table; supervisors do")
        if self.s is None or self.s.stage != "draft":
            raise not_allowed(f"no draft awaits review (the league table is {self.s.stage if self.s else 'starting'})")
        if self._decision is not None:
            raise not_allowed("a decision on this draft is already being applied")
        if input.adjustments and not self._adjusting:
            raise not_allowed("this league table began before adjustments existed: send it back with comments only")
        units = {r.unit_id for r in self.s.table.rows} if self.s.table else set()
        unknown = sorted({a.unit_id for a in input.adjustments} - units)
        if unknown:
            raise not_allowed(f"no unit {', '.join(unknown)} in this draft: adjustments name a listed department or street")
