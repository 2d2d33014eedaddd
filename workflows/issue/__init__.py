"""IssueWorkflow and the parts it orchestrates with: the run (run.py), what each action does
(actions.py), the moves several share (moves.py), its clocks (clocks.py), the loop's timer
(timer.py) and a transition's effects (effects.py)."""

from workflows.issue.workflow import IssueWorkflow

__all__ = ["IssueWorkflow"]
