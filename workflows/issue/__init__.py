"""IssueWorkflow and the parts it orchestrates with: the run (run.py), its clocks (clocks.py), the
moves handlers share (moves.py), the loop's timer (timer.py) and a transition's effects
(effects.py)."""

from workflows.issue.workflow import IssueWorkflow

__all__ = ["IssueWorkflow"]
