"""Actor attestation: an update (or an issue's start) counts only when a holder of the actor key
signed it, for this workflow, this update id, this body and a short while.

Temporal's frontend is a boundary: anyone who reaches it can send an update whose input names
any actor, or start a workflow. So whistle's clients (the API gateway, the CLI) sign:

- every update, in the Temporal header `whistle_actor` = `kid:issued_at:MAC`, MAC being
  HMAC-SHA256 over the canonical JSON of (workflow id, update name, update id, issued_at, the
  update's whole input). The workers check it in the update validator of every workflow, before
  the workflow's own validator, and refuse with ApplicationError type "Forbidden" otherwise;
- every workflow start (alone, or with an update: update-with-start, both halves signed), in
  the header `whistle_start` = `kid:issued_at:MAC` over (workflow id,
  workflow type, issued_at, the start's input). The workers check it for IssueWorkflow at the
  first task of a run that is not a continue-as-new, and fail that task otherwise: a forged or
  replayed start never runs a step.

A header is readable in history (UpdateAccepted, WorkflowExecutionStarted), so what it signs is
what makes a copy worthless: resent with another update id the MAC fails; with the same id
Temporal answers with the first outcome (it runs an update id once per run), and the next run of
a continue-as-new refuses the ids its predecessor ran (RECENT_UPDATES_HEADER); later than
`max_age` seconds after `issued_at` (WHISTLE_ACTOR_ATTESTATION_MAX_AGE, 300 by default) it is
expired: an update by the checking worker's clock, a start by its run's own start time (the
start event's time, the same on every attempt of its first task and kept by a reset).

Validators never run on replay and the start is checked only when not replaying, so rotating or
removing keys, or changing max_age, never changes a replay. Keys: WHISTLE_ACTOR_KEYS
(`kid:base64`, the first signs, all verify) or WHISTLE_ACTOR_KEY_FILE. One class is both the
client interceptor and the worker interceptor, so a worker built from an attesting client checks
with the same keys (temporalio passes such interceptors on to workers).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from temporalio import client, workflow
from temporalio.api.common.v1 import Payload
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ContinueAsNewInput,
    ExecuteWorkflowInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from whistle.codec import ENCODING, Keyring, KeyringError, parse_key_entries, write_secret
from whistle.config import MAX_ATTESTATION_MAX_AGE as MAX_AGE_LIMIT

HEADER = "whistle_actor"  # the `temporal` CLI takes `--headers whistle_actor='"kid:iat:mac"'`
START_HEADER = "whistle_start"
# The workflows whose starts are checked: those the API starts. The scheduled ones (evaluation,
# league, quarterly, briefing) are started by Temporal Schedules, whose stored start request
# could carry no signature with a time in it.
CHECKED_STARTS = frozenset({"IssueWorkflow"})
DEFAULT_MAX_AGE = 300  # seconds either side of issued_at: clock skew between signer and checker included
# The ids of the updates a run accepted, carried to the next run of a continue-as-new in this
# header (plain JSON: update ids are in history anyway). Temporal runs an update id once per run
# only, so without it a header copied from history could run its update again in the next run
# while it is still within max_age. Carried while a copy could still be: an update signed up to
# MAX_AGE_LIMIT ahead of the checking clock stays good MAX_AGE_LIMIT after that.
RECENT_UPDATES_HEADER = "whistle_recent_updates"
CARRY_UPDATES_FOR = timedelta(seconds=2 * MAX_AGE_LIMIT + 60)
_MIN_KEY_BYTES = 32


class NoActorKey(KeyringError):
    """Neither WHISTLE_ACTOR_KEYS nor WHISTLE_ACTOR_KEY_FILE is set."""


class ActorKeys:
    def __init__(self, keys: Sequence[tuple[str, bytes]], max_age: float = DEFAULT_MAX_AGE):
        if not keys:
            raise NoActorKey("no actor key: set WHISTLE_ACTOR_KEYS or WHISTLE_ACTOR_KEY_FILE")
        for key_id, key in keys:
            if len(key) < _MIN_KEY_BYTES:
                raise KeyringError(f"actor key {key_id!r} must be at least {_MIN_KEY_BYTES} bytes")
        if not 0 < max_age <= MAX_AGE_LIMIT:
            raise KeyringError(f"the actor attestation's max age must be positive and at most {MAX_AGE_LIMIT} s")
        self.active_id = keys[0][0]
        self._keys = dict(keys)
        self.max_age = max_age

    @classmethod
    def parse(cls, text: str, max_age: float = DEFAULT_MAX_AGE) -> ActorKeys:
        return cls(parse_key_entries(text), max_age)

    # --------------------------------------------------------------------------- updates
    def sign(self, workflow_id: str, update: str, update_id: str, args: Sequence[Any], issued_at: float | None = None) -> str:
        """For the sender: `args` as they will be sent."""
        body = [sent_form(update_input_types().get(update), a) for a in args]
        return self._attest(issued_at, lambda iat: update_claims(workflow_id, update, update_id, iat, body))

    def refusal(self, workflow_id: str, update: str, update_id: str, args: Sequence[Any], attestation: str | None,
                now: float) -> str | None:
        """For the worker: why the update is not attested (None: it is). `args` as the workflow
        received them (models parsed from the JSON sent); `now` by the checking worker's clock."""
        body = [received_form(a) for a in args]
        return self._refusal(attestation, now, lambda iat: update_claims(workflow_id, update, update_id, iat, body))

    def verify(self, workflow_id: str, update: str, update_id: str, args: Sequence[Any], attestation: str | None,
               now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.refusal(workflow_id, update, update_id, args, attestation, now) is None

    # --------------------------------------------------------------------------- starts
    def sign_start(self, workflow_id: str, workflow_type: str, args: Sequence[Any], issued_at: float | None = None) -> str:
        body = [sent_form(workflow_input_types().get(workflow_type), a) for a in args]
        return self._attest(issued_at, lambda iat: start_claims(workflow_id, workflow_type, iat, body))

    def start_refusal(self, workflow_id: str, workflow_type: str, args: Sequence[Any], attestation: str | None,
                      started_at: float | None) -> str | None:
        """Why the start is not attested (None: it is). `started_at`: the run's start time (its
        start event's), or None not to compare times (a time-skipping test server's clock)."""
        body = [received_form(a) for a in args]
        return self._refusal(attestation, started_at, lambda iat: start_claims(workflow_id, workflow_type, iat, body))

    # --------------------------------------------------------------------------- the MAC
    def _attest(self, issued_at: float | None, claims: Callable[[int], dict[str, Any]]) -> str:
        iat = int(time.time() if issued_at is None else issued_at)
        return f"{self.active_id}:{iat}:{_mac(self._keys[self.active_id], claims(iat))}"

    def _refusal(self, attestation: str | None, now: float | None, claims: Callable[[int], dict[str, Any]]) -> str | None:
        parts = (attestation or "").rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return "no attestation" if not attestation else "not an attestation (kid:issued_at:mac)"
        key_id, iat, mac = parts[0], int(parts[1]), parts[2]
        key = self._keys.get(key_id)
        if key is None:
            return f"unknown key id {key_id!r}"
        if not hmac.compare_digest(_mac(key, claims(iat)).encode(), mac.encode()):
            return "signed for another workflow, update id or body"
        if now is not None and abs(now - iat) > self.max_age:
            return f"expired (issued {int(now - iat)} s before now; good for {int(self.max_age)} s either side)"
        return None


def load_actor_keys(keys: str | None, key_file: Path | None, max_age: float = DEFAULT_MAX_AGE) -> ActorKeys:
    if keys:
        return ActorKeys.parse(keys, max_age)
    if key_file is not None:
        return ActorKeys.parse(Path(key_file).read_text(), max_age)
    raise NoActorKey("no actor key: set WHISTLE_ACTOR_KEYS or WHISTLE_ACTOR_KEY_FILE")


def ensure_actor_key_file(path: Path) -> Path:
    """An actor key for `whistle dev`, made once (0600) in its data directory."""
    import secrets

    if not path.exists():
        write_secret(path, f"dev-1:{base64.b64encode(secrets.token_bytes(32)).decode()}\n")
    return path


def cli_header(keys: ActorKeys, workflow_id: str, input_json: str, update: str | None = None,
               update_id: str | None = None, start: str | None = None) -> str:
    """`whistle actor sign`: the `--headers` value for one update (`update` and its `update_id`,
    which the `temporal` CLI must send as `--update-id`) or one start (`start`: the workflow
    type). ValueError says what is missing."""
    data = json.loads(input_json)
    if start:
        return f"{START_HEADER}={json.dumps(keys.sign_start(workflow_id, start, [data]))}"
    if not update or not update_id:
        raise ValueError("an update's attestation needs --name and --update-id (the same --update-id to the temporal CLI)")
    return f"{HEADER}={json.dumps(keys.sign(workflow_id, update, update_id, [data]))}"


# ---------------------------------------------------------------------------------- canonical form
def _plain(value: Any) -> Any:
    """JSON values with integral floats as ints: 4 and 4.0 are the same number on both sides."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _definitions():
    from temporalio.workflow._definition import _Definition

    from workflows.registry import WORKFLOWS

    return [_Definition.must_from_class(cls) for cls in WORKFLOWS]


@functools.cache
def update_input_types() -> dict[str, type]:
    """The input model of every update of whistle's workflows, by update name."""
    types = {}
    for d in _definitions():
        for name, u in d.updates.items():
            if name and u.arg_types and len(u.arg_types) == 1:
                types[name] = u.arg_types[0]
    return types


@functools.cache
def workflow_input_types() -> dict[str, type]:
    """The input model of every whistle workflow, by workflow type."""
    return {d.name: d.arg_types[0] for d in _definitions() if d.name and d.arg_types and len(d.arg_types) == 1}


def sent_form(model: Any, value: Any) -> Any:
    """An argument as the worker will see it: parsed into its input model (a dict and the model
    built from it are one input) and dumped whole."""
    json_value = to_jsonable_python(value)
    if isinstance(model, type) and issubclass(model, BaseModel):
        try:
            return received_form(model.model_validate(json_value))
        except ValueError:
            pass  # the workflow will refuse it; what is signed hardly matters
    return _plain(json_value)


def received_form(value: Any) -> Any:
    """An argument as the workflow received it: the model, dumped whole."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return _plain(to_jsonable_python(value))


def update_claims(workflow_id: str, update: str, update_id: str, issued_at: int, args: list[Any]) -> dict[str, Any]:
    return {"workflow_id": workflow_id, "update": update, "update_id": update_id, "issued_at": issued_at, "args": args}


def start_claims(workflow_id: str, workflow_type: str, issued_at: int, args: list[Any]) -> dict[str, Any]:
    return {"workflow_id": workflow_id, "start": workflow_type, "issued_at": issued_at, "args": args}


def canonical(claims: dict[str, Any]) -> bytes:
    return json.dumps(claims, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _mac(key: bytes, claims: dict[str, Any]) -> str:
    digest = hmac.new(key, canonical(claims), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def header_payload(value: Any) -> Payload:
    """A header's plain-JSON payload: an attestation, or the carried update ids."""
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def header_value(payload: Payload | None, keyring: Keyring | None) -> str | None:
    """The attestation in the header: plain JSON as whistle's clients send it, or encrypted by
    the codec server, as the `temporal` CLI sends headers when TEMPORAL_CODEC_ENDPOINT is set."""
    if payload is None:
        return None
    try:
        if payload.metadata.get("encoding") == ENCODING and keyring is not None:
            payload = keyring.open(payload)
        value = json.loads(payload.data)
    except Exception:  # not JSON, an unknown key id, a payload that fails authentication
        return None
    return value if isinstance(value, str) else None


# ---------------------------------------------------------------------------------- interceptors
class UnattestedStart(RuntimeError):
    """Raised in a workflow's first task: not an ApplicationError, so it fails the task (retried,
    never completed) and not the workflow: nothing of the run is ever written but the failure."""


class ActorAttestation(client.Interceptor, Interceptor):
    """`keyring`: the payload keyring, to read headers the codec server encrypted. `clock`: the
    signer's and the update checker's time (seconds). `check_start_times`: compare a start's
    issued_at with its run's start time; off only for a time-skipping test server, whose clock
    runs ahead of the wall clock (the signature is still checked)."""

    def __init__(self, keys: ActorKeys, keyring: Keyring | None = None, clock: Callable[[], float] = time.time,
                 check_start_times: bool = True):
        self.keys, self.keyring, self.clock, self.check_start_times = keys, keyring, clock, check_start_times

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _SigningOutbound(next, self.keys, self.clock)

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        keys, keyring, clock, start_times = self.keys, self.keyring, self.clock, self.check_start_times

        class _Checking(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                self.updates = _RunUpdates()
                super().init(_CarryingOutbound(outbound, self.updates))

            async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
                self.updates.ran(input.id)  # on replay too (handlers replay): the same ids carry on
                return await super().handle_update_handler(input)

            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                info = workflow.info()
                # Only a run's own start: a continue-as-new is the workflow's own command, and a
                # replay (a reset's copied events included) was checked when it first ran.
                if info.workflow_type in CHECKED_STARTS and info.continued_run_id is None \
                        and not workflow.unsafe.is_replaying():
                    started = info.workflow_start_time.timestamp() if start_times else None
                    why = keys.start_refusal(info.workflow_id, info.workflow_type, input.args,
                                             header_value(input.headers.get(START_HEADER), keyring), started)
                    if why is not None:
                        raise UnattestedStart(f"the start of {info.workflow_id} is not attested ({why}): "
                                              "it was not sent by whistle; terminate it (docs/security.md)")
                return await super().execute_workflow(input)

            def handle_update_validator(self, input: HandleUpdateInput) -> None:
                with workflow.unsafe.sandbox_unrestricted():
                    now = clock()  # validators never run on replay: the wall clock is safe here
                why = keys.refusal(workflow.info().workflow_id, input.update, input.id, input.args,
                                   header_value(input.headers.get(HEADER), keyring), now)
                if why is not None:
                    raise ApplicationError(
                        f"update {input.update!r} is not attested ({why}): actors are accepted only from "
                        "the API gateway or a holder of the actor key (see `whistle actor sign`)",
                        type="Forbidden",
                        non_retryable=True,
                    )
                if self.updates.has_run(input.id):
                    # In practice an earlier run's: Temporal answers a repeat within a run itself.
                    # Not Forbidden: a client's own retry (same id, signed anew) lands here too.
                    raise ApplicationError(
                        f"update {input.update!r} ({input.id}) was applied already, before this workflow "
                        "continued as new: an update id runs once; read the issue for its outcome",
                        type="AlreadyApplied", non_retryable=True)
                super().handle_update_validator(input)

        return _Checking


class _RunUpdates:
    """The update ids a run has run, with when: its own, and those its continue-as-new
    predecessor carried (RECENT_UPDATES_HEADER, read at first use: the run's info is not there
    yet when interceptors are made)."""

    def __init__(self) -> None:
        self._ran: dict[str, datetime] | None = None

    def _all(self) -> dict[str, datetime]:
        if self._ran is None:
            info = workflow.info()
            # Only a continue-as-new (the workflow's own command, or a reset of one) carries it.
            carried = info.headers.get(RECENT_UPDATES_HEADER) if info.continued_run_id else None
            self._ran = carried_updates(carried, workflow.now())
        return self._ran

    def ran(self, update_id: str) -> None:
        self._all().setdefault(update_id, workflow.now())

    def has_run(self, update_id: str) -> bool:
        return update_id in self._all()

    def header(self) -> Payload:
        """Those still worth refusing, for the next run."""
        since = workflow.now() - CARRY_UPDATES_FOR
        return header_payload({update_id: at.isoformat() for update_id, at in self._all().items() if at >= since})


MAX_CARRIED_UPDATES = 20_000  # some 2 MB of header; whistle's issues run a few dozen in two hours


def carried_updates(payload: Payload | None, now: datetime) -> dict[str, datetime]:
    """The update ids a continue-as-new carried (RECENT_UPDATES_HEADER), with when each ran:
    entries that are not an id and an aware time no later than `now` are dropped one by one,
    and a header that is not whistle's carries nothing (never an error: it would fail the run's
    every task)."""
    if payload is None or len(payload.data) > MAX_CARRIED_UPDATES * 120:
        return {}
    try:
        entries = json.loads(payload.data)
    except Exception:
        return {}
    carried: dict[str, datetime] = {}
    for update_id, at in entries.items() if isinstance(entries, dict) else ():
        try:
            when = datetime.fromisoformat(at)
        except (TypeError, ValueError):
            continue
        if isinstance(update_id, str) and when.tzinfo is not None and when <= now:
            carried[update_id] = when
    return dict(list(carried.items())[-MAX_CARRIED_UPDATES:])


class _CarryingOutbound(WorkflowOutboundInterceptor):
    """Puts the run's recent update ids on its continue-as-new (RECENT_UPDATES_HEADER)."""

    def __init__(self, next: WorkflowOutboundInterceptor, updates: _RunUpdates):
        super().__init__(next)
        self.updates = updates

    def continue_as_new(self, input: ContinueAsNewInput):
        input.headers = {**input.headers, RECENT_UPDATES_HEADER: self.updates.header()}
        return super().continue_as_new(input)


class _SigningOutbound(client.OutboundInterceptor):
    def __init__(self, next: client.OutboundInterceptor, keys: ActorKeys, clock: Callable[[], float]):
        super().__init__(next)
        self.keys, self.clock = keys, clock

    async def start_workflow_update(self, input: client.StartWorkflowUpdateInput) -> client.WorkflowUpdateHandle[Any]:
        self._sign_update(input.id, input, self.clock())
        return await super().start_workflow_update(input)

    async def start_workflow(self, input: client.StartWorkflowInput) -> client.WorkflowHandle[Any, Any]:
        self._sign_start(input, self.clock())
        return await super().start_workflow(input)

    async def start_update_with_start_workflow(
        self, input: client.StartWorkflowUpdateWithStartInput
    ) -> client.WorkflowUpdateHandle[Any]:
        # Both halves, each as if sent alone: the worker checks them one by one.
        now = self.clock()
        self._sign_start(input.start_workflow_input, now)
        self._sign_update(input.start_workflow_input.id, input.update_workflow_input, now)
        return await super().start_update_with_start_workflow(input)

    def _sign_start(self, start: client.StartWorkflowInput | client.UpdateWithStartStartWorkflowInput, now: float) -> None:
        attestation = self.keys.sign_start(start.id, start.workflow, start.args, now)
        start.headers = {**start.headers, START_HEADER: header_payload(attestation)}

    def _sign_update(self, workflow_id: str,
                     update: client.StartWorkflowUpdateInput | client.UpdateWithStartUpdateWorkflowInput, now: float) -> None:
        # The update id is signed: chosen here when the caller left it to the SDK.
        update.update_id = update.update_id or str(uuid.uuid4())
        attestation = self.keys.sign(workflow_id, update.update, update.update_id, update.args, now)
        update.headers = {**update.headers, HEADER: header_payload(attestation)}


def attested(c: client.Client) -> bool:
    return attestation_of(c) is not None


def attestation_of(c: client.Client) -> ActorAttestation | None:
    return next((i for i in c.config()["interceptors"] if isinstance(i, ActorAttestation)), None)


async def foreign_start(c: client.Client, workflow_id: str) -> str | None:
    """Why the current run under `workflow_id` is not one whistle started (None: it is, or it
    ran, or this client cannot tell): for the API, which finds such a run when an intake's id is
    taken by a workflow that never answers. Only a run that never completed a task and is not a
    continue-as-new is judged; a start signed with a key this client does not hold is not."""
    from datetime import timezone

    from temporalio.api.enums.v1 import EventType

    attestation = attestation_of(c)
    if attestation is None:
        return None
    first = None
    async for event in c.get_workflow_handle(workflow_id).fetch_history_events():
        if first is None:
            first = event
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return None  # it ran: it passed the check
    if first is None:
        return None
    attrs = first.workflow_execution_started_event_attributes
    if attrs.continued_execution_run_id or attrs.workflow_type.name not in CHECKED_STARTS:
        return None
    try:
        args = await c.data_converter.decode(attrs.input.payloads, [workflow_input_types()[attrs.workflow_type.name]])
    except Exception:
        return "its input is not whistle's (not encrypted with whistle's keyring)"
    started = first.event_time.ToDatetime(tzinfo=timezone.utc).timestamp() if attestation.check_start_times else None
    why = attestation.keys.start_refusal(workflow_id, attrs.workflow_type.name, args,
                                         header_value(attrs.header.fields.get(START_HEADER), attestation.keyring), started)
    return None if why is None or why.startswith("unknown key id") else why
