"""Who may see and do what: the one home of the scope rules every route applies."""

from __future__ import annotations

from typing import Any

from api.errors import ApiError
from schemas.issue import AssignmentStatus, IssueState
from schemas.jurisdiction import Jurisdiction
from schemas.principal import UNIT_ROLES, Principal, Role

# Handlers record what they find (patrol) or are told in person (walkin); intake services submit
# on their own channel; the supervisor on any.
HANDLER_CHANNELS = {"patrol", "walkin"}
# Units whose assignment is over no longer see the reporter: they will not call back.
_DONE_WITH = {AssignmentStatus.declined, AssignmentStatus.withdrawn}


def in_scope(p: Principal, s: IssueState) -> bool:
    """May `p` read and act on the issue at all (each update's validator then says whether
    this role may do this now)."""
    if p.role in (Role.supervisor, Role.ops):
        return True
    if p.role == Role.intake:
        return s.channel == p.channel
    if p.role == Role.department:
        return any(a.department_id == p.unit_id for a in s.assignments)
    if p.role in UNIT_ROLES:
        return p.unit_id in s.context.chain.values()
    return False


def sees_reporter(p: Principal | None, s: IssueState | None) -> bool:
    """The reporter's contact, on every route (/v1 reads, action answers, the codec server):
    the supervisor; the ladder units of the issue's own chain; a department while its
    assignment is live. Never ops, intake services, the public, or a unit that declined.
    Without an issue (the codec server decodes payloads of any workflow) only the supervisor."""
    if p is None:
        return False
    if p.role == Role.supervisor:
        return True
    if s is None:
        return False
    if p.role == Role.department:
        return any(a.department_id == p.unit_id and a.status not in _DONE_WITH for a in s.assignments)
    return p.role in UNIT_ROLES and in_scope(p, s)


def check_submission(p: Principal, channel: str, grid_id: str, j: Jurisdiction) -> None:
    """A unit creates issues on its own channels and only inside its own part of the district;
    an intake service only on its channel."""
    if p.role == Role.intake and channel != p.channel:
        raise ApiError(403, f"this key submits on channel {p.channel}, not {channel}")
    if p.role in UNIT_ROLES:
        if channel not in HANDLER_CHANNELS:
            raise ApiError(403, f"a {p.role} submits on channel patrol or walkin, not {channel}")
        if p.unit_id not in j.chain(grid_id).values():
            raise ApiError(403, f"this grid is outside the scope of {p.unit_id}")


def known_unit(j: Jurisdiction, unit_id: str) -> bool:
    for finder in (j.unit, j.department):
        try:
            finder(unit_id)
            return True
        except KeyError:
            continue
    return False


def redact_reporters(value: Any) -> Any:
    """JSON with every reporter's contact replaced: for payloads shown to those who may not see it."""
    if isinstance(value, dict):
        if set(value) == {"name", "phone", "email"}:  # a Reporter itself (the `reporter` query)
            return {"redacted": True}
        return {k: ({"redacted": True} if k == "reporter" and v else redact_reporters(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_reporters(v) for v in value]
    return value
