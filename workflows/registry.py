"""Every workflow type whistle runs: what a worker registers, what attestation knows the
inputs of, and what the replay corpus must cover."""

from __future__ import annotations

from collections.abc import Sequence

from workflows.briefing import MonthlyBriefingWorkflow
from workflows.evaluation import ReverseEvaluationWorkflow
from workflows.issue import IssueWorkflow
from workflows.league import LeagueTableWorkflow
from workflows.quarterly import QuarterlyWorkflow

WORKFLOWS: Sequence[type] = (
    IssueWorkflow, ReverseEvaluationWorkflow, LeagueTableWorkflow, QuarterlyWorkflow, MonthlyBriefingWorkflow,
)
