"""MonthlyBriefingWorkflow: what the monthly Schedule starts (its id suffixed with a timestamp).
It computes and stores the briefing (月度通报) of the month before its scheduled time, or of
the month it is given, and announces it through the notifier (the webhook)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from activities.briefing import BriefingActivities
    from schemas.briefing import Briefing, BriefingInput, MonthRequest, month_of, previous_month
    from workflows.common import RECORD as _RECORD
    from workflows.common import notify

SCHEDULED_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


@workflow.defn(name="MonthlyBriefingWorkflow")
class MonthlyBriefingWorkflow:
    @workflow.run
    async def run(self, input: BriefingInput | None = None) -> Briefing:
        month = input.month if input and input.month else None
        if month is None:
            fired = workflow.info().typed_search_attributes.get(SCHEDULED_TIME) or workflow.info().start_time
            month = previous_month(month_of(fired))
        briefing = await workflow.execute_activity_method(
            BriefingActivities.compute_briefing, MonthRequest(month=month), **_RECORD
        )
        late = sum(u.resolved_late for u in briefing.departments)
        await notify(
            "briefing", f"briefing-{month}", "supervisor",
            f"月度通报 {month}: {briefing.issues} issues, {late} resolved late by departments; /briefings/{month}",
            month=month, issues=briefing.issues, late=late,
        )
        await workflow.execute_activity_method(
            BriefingActivities.mark_briefing_announced, MonthRequest(month=month), **_RECORD
        )
        return briefing
