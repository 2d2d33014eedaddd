"""QuarterlyWorkflow: what the quarterly Schedule starts. Schedules suffix their workflow ids
with a timestamp, so this small workflow derives the quarter just ended from its scheduled
time and starts `evaluation-<q>` and `league-<q>` (and `league-<YYYY>` in January) under
their contract ids. Starting one that exists already is a no-op: backfills are idempotent."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributeKey, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from schemas.evaluation import EvaluationInput
    from schemas.league import LeagueInput
    from schemas.period import previous_quarter, quarter_of
    from workflows.evaluation import ReverseEvaluationWorkflow
    from workflows.league import LeagueTableWorkflow

SCHEDULED_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


@workflow.defn(name="QuarterlyWorkflow")
class QuarterlyWorkflow:
    @workflow.run
    async def run(self) -> list[str]:
        fired = workflow.info().typed_search_attributes.get(SCHEDULED_TIME) or workflow.info().start_time
        quarter = previous_quarter(quarter_of(fired))
        children: list[tuple[str, object, object]] = [
            (f"evaluation-{quarter}", ReverseEvaluationWorkflow.run, EvaluationInput(quarter=quarter)),
            (f"league-{quarter}", LeagueTableWorkflow.run, LeagueInput(period=quarter)),
        ]
        if quarter.endswith("Q4"):  # 年终一评比: the year's table after its last round
            children.append((f"league-{quarter[:4]}", LeagueTableWorkflow.run, LeagueInput(period=quarter[:4])))
        started = []
        names = {"evaluation": "逆向考评", "league": "红黑榜"}
        for child_id, run, arg in children:
            try:
                await workflow.start_child_workflow(
                    run, arg, id=child_id, static_summary=f"{names[child_id.split('-')[0]]} {child_id.split('-', 1)[1]}",
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )
                started.append(child_id)
            except WorkflowAlreadyStartedError:
                workflow.logger.info("already started", extra={"child": child_id})
        return started
