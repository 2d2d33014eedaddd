"""IssueWorkflow: one durable workflow per resident's issue.

grid → community → area → street → department(s), under the deadlines of the jurisdiction's
policies. The workflow orchestrates: an event loop over the issue's running clocks (a timer
wakes it for the next reminder or due time) and one update per action, which changes the state
under a lock. The rules live in domain/ (who may act: authority; what opens, closes and is
missed: deadlines; the ladder; who owns a stage: ownership); what each action does in
actions.py; the moves several share in moves.py; the clocks in clocks.py; what a transition does
outside in effects.py.

Rejections: `ApplicationError` of type "Forbidden" (this actor may not) or "NotAllowed"
(not in the current state), made by workflows/common.py; the API maps them to 403 and 409.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.issue import IssueActivities
    from domain import authority
    from schemas.actions import (Accept, Assign, DecideExtension, Decline, Dispatch, Escalate, Feedback,
                                 RequestExtension, Resolve, Review, Urge)
    from schemas.intake import Reporter
    from schemas.issue import ContextRequest, IssueState, IssueWorkflowInput, Stage
    from workflows.common import LOCAL, forbidden, not_allowed, require_workflow_id
    from workflows.issue.actions import Actions
    from workflows.issue.clocks import Clocks
    from workflows.issue.effects import Effects
    from workflows.issue.moves import Moves
    from workflows.issue.run import IssueRun
    from workflows.issue.timer import LoopTimer
    from workflows.patches import IssuePatches

Rule = Callable[[IssueState, Any], None]
Body = Callable[[IssueState, Any], Awaitable[None]]


@workflow.defn(name="IssueWorkflow")
class IssueWorkflow:
    @workflow.init
    def __init__(self, input: IssueWorkflowInput) -> None:
        self.input = input
        carried = input.carried.model_copy(update={"runs": input.carried.runs + 1}) if input.carried else None
        # Every patch, asked before anything else of the run: the rule of workflows/patches.py.
        self.issue = IssueRun(carried, IssuePatches.ask())
        self._lock = asyncio.Lock()
        self.timer = LoopTimer(self.issue)
        self.effects = Effects(self.issue, on_change=lambda: self.timer.poke(self._should_continue_as_new()))
        self.clocks = Clocks(self.issue)
        self.moves = Moves(self.issue, self.effects, self.clocks)
        self.actions = Actions(self.issue, self.effects, self.clocks, self.moves)

    @property
    def s(self) -> IssueState | None:
        return self.issue.s

    # ------------------------------------------------------------------------------ run loop
    @workflow.run
    async def run(self, input: IssueWorkflowInput) -> IssueState:
        if self.issue.s is None:
            await self._register(input)
        s = self.issue.state
        while s.stage != Stage.closed and not self._should_continue_as_new():
            fired = await self.timer.wait()
            async with self._lock:
                if self.issue.patches.timer_clock:
                    # What is due is decided at the fired timer's own due time. workflow.now() is
                    # not the same live and on replay in the first task after a sticky task's
                    # schedule-to-start time-out (a worker gone): live it still reads the previous
                    # task's time, on replay the right one, so the two would act on different
                    # reminders and deadlines. A handler's wake alone only moves the timer (1 ms
                    # when something is due already).
                    if fired:
                        assert self.timer.at is not None
                        self.issue.move_at_least(self.timer.at)
                        await self.moves.process_due(self.timer.at)
                else:
                    if fired:  # runs before timer-clock: the clock of the timer's task
                        self.issue.move_at_least(workflow.now())
                    await self.moves.process_due()
                await self.effects.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if s.stage != Stage.closed:
            workflow.continue_as_new(
                IssueWorkflowInput(intake=self.input.intake, carried=s, max_history_events=self.input.max_history_events)
            )
        return s

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        limit = self.input.max_history_events
        return info.is_continue_as_new_suggested() or (limit is not None and info.get_current_history_length() >= limit)

    async def _register(self, input: IssueWorkflowInput) -> None:
        intake = input.intake
        require_workflow_id(intake.workflow_id, " for this intake (channel, reference)")
        now = self.issue.now  # the start's own time, read before the context activity
        context = await workflow.execute_local_activity_method(
            IssueActivities.resolve_issue_context,
            ContextRequest(category=intake.category, grid_id=intake.grid_id),
            summary=f"受理: {intake.category} @ {intake.grid_id}",
            **LOCAL,
        )
        self.issue.s = IssueState.registered(intake, context, now, self.issue.patches.rulebook)
        async with self._lock:
            await self.moves.enter_ladder(Stage.grid, "intake", None, {"channel": intake.channel.value})
            await self.effects.flush()

    # ------------------------------------------------------------------------------ queries
    @workflow.query
    def state(self) -> IssueState:
        if self.s is None:
            raise not_allowed("the issue is still being registered")
        return self.s

    @workflow.query
    def reporter(self) -> Reporter | None:
        """The reporter's contact: personal data, kept out of `state`; the API shows it only
        to principals who handle the issue."""
        return self.input.intake.reporter

    # ------------------------------------------------------------------------------ updates
    # Each action's update runs its rule (domain/authority.py) as its validator, and again under
    # the lock (`_act`), since the state may have moved while the update waited for it; then
    # what the action does (actions.py).
    @workflow.update
    async def accept(self, input: Accept) -> IssueState:
        return await self._act(authority.may_accept, self.actions.accept, input)

    @accept.validator
    def validate_accept(self, input: Accept) -> None:
        self._check(authority.may_accept, input)

    @workflow.update
    async def resolve(self, input: Resolve) -> IssueState:
        return await self._act(authority.may_resolve, self.actions.resolve, input)

    @resolve.validator
    def validate_resolve(self, input: Resolve) -> None:
        self._check(authority.may_resolve, input)

    @workflow.update
    async def escalate(self, input: Escalate) -> IssueState:
        return await self._act(authority.may_escalate, self.actions.escalate, input)

    @escalate.validator
    def validate_escalate(self, input: Escalate) -> None:
        self._check(authority.may_escalate, input)

    @workflow.update
    async def dispatch(self, input: Dispatch) -> IssueState:
        return await self._act(authority.may_dispatch, self.actions.dispatch, input)

    @dispatch.validator
    def validate_dispatch(self, input: Dispatch) -> None:
        self._check(authority.may_dispatch, input)

    @workflow.update
    async def decline(self, input: Decline) -> IssueState:
        return await self._act(authority.may_decline, self.actions.decline, input)

    @decline.validator
    def validate_decline(self, input: Decline) -> None:
        self._check(authority.may_decline, input)

    @workflow.update
    async def request_extension(self, input: RequestExtension) -> IssueState:
        return await self._act(authority.may_request_extension, self.actions.request_extension, input)

    @request_extension.validator
    def validate_request_extension(self, input: RequestExtension) -> None:
        self._check(authority.may_request_extension, input)

    @workflow.update
    async def decide_extension(self, input: DecideExtension) -> IssueState:
        return await self._act(authority.may_decide_extension, self.actions.decide_extension, input)

    @decide_extension.validator
    def validate_decide_extension(self, input: DecideExtension) -> None:
        self._check(authority.may_decide_extension, input)

    @workflow.update
    async def assign(self, input: Assign) -> IssueState:
        return await self._act(authority.may_assign, self.actions.assign, input)

    @assign.validator
    def validate_assign(self, input: Assign) -> None:
        self._check(authority.may_assign, input)

    @workflow.update
    async def urge(self, input: Urge) -> IssueState:
        return await self._act(authority.may_urge, self.actions.urge, input)

    @urge.validator
    def validate_urge(self, input: Urge) -> None:
        self._check(authority.may_urge, input)

    @workflow.update
    async def feedback(self, input: Feedback) -> IssueState:
        return await self._act(authority.may_give_feedback, self.actions.feedback, input)

    @feedback.validator
    def validate_feedback(self, input: Feedback) -> None:
        self._check(authority.may_give_feedback, input)

    @workflow.update
    async def review(self, input: Review) -> IssueState:
        return await self._act(authority.may_review, self.actions.review, input)

    @review.validator
    def validate_review(self, input: Review) -> None:
        self._check(authority.may_review, input)

    # Abandoned when registration fails the run: the caller is told by the run's failure.
    @workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def register(self) -> IssueState:
        """The intake's update, sent with the start (update-with-start, whistle.intake): the
        state once the issue has registered and its first transition is written, as every
        action answers once the read model shows it; no one polls."""
        await workflow.wait_condition(lambda: self.s is not None)
        async with self._lock:
            return self.issue.state

    @register.validator
    def validate_register(self) -> None:
        """No rule: the state is what the start's sender may read. Declared because a worker
        interceptor's validator, the actor attestation check, runs only for updates that have one."""

    # ------------------------------------------------------------------------------ checks
    def _check(self, rule: Rule, input: Any) -> None:
        """Run an action's rule; a refusal becomes the update's error. While the issue is
        registering the validator lets the update in: its handler waits for the registration and
        then checks (`_act`). Updates that a reset re-applies (docs/operations.md) reach the
        new run in its first task, before it has registered; refused there, they would be lost."""
        if self.s is None:
            return
        try:
            rule(self.s, input)
        except authority.Forbidden as e:
            raise forbidden(str(e)) from None
        except authority.NotAllowed as e:
            raise not_allowed(str(e)) from None

    async def _act(self, rule: Rule, body: Body, input: Any) -> IssueState:
        """Wait for the registration, take the lock, check the rule again (the state may have
        moved while the update waited for the lock), do the action and write its effects."""
        arrived = workflow.now()  # the update's own task: the same live and on replay
        await workflow.wait_condition(lambda: self.s is not None)
        async with self._lock:
            self.issue.move_at_least(arrived)
            self._check(rule, input)
            try:
                await body(self.issue.state, input)
            finally:
                await self.effects.flush()
        return self.issue.state
