"""Actor attestation: an update counts only when a holder of the actor key signed it.

Temporal's frontend is a boundary: anyone who reaches it can send an update whose input names
any actor. So every update sent by whistle's clients (the API gateway, the CLI) carries, in the
Temporal header `whistle_actor`, `kid:MAC` where MAC is HMAC-SHA256 over the canonical JSON of
(workflow id, update name, the update's whole input). The workers check it in the update
validator of every workflow, before the workflow's own validator, and refuse with
ApplicationError type "Forbidden" otherwise. A captured attestation is good for that workflow,
that update and that body only.

Validators never run on replay, so rotating or removing keys never changes a replay. Keys:
WHISTLE_ACTOR_KEYS (`kid:base64`, the first signs, all verify) or WHISTLE_ACTOR_KEY_FILE.
One class is both the client interceptor and the worker interceptor, so a worker built from an
attesting client checks with the same keys (temporalio passes such interceptors on to workers).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from temporalio import client, workflow
from temporalio.api.common.v1 import Payload
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from whistle.codec import ENCODING, Keyring, KeyringError, parse_key_entries, write_secret

HEADER = "whistle_actor"  # the `temporal` CLI takes `--headers whistle_actor='"kid:mac"'`
_MIN_KEY_BYTES = 32


class ActorKeys:
    def __init__(self, keys: Sequence[tuple[str, bytes]]):
        if not keys:
            raise KeyringError("no actor key: set WHISTLE_ACTOR_KEYS or WHISTLE_ACTOR_KEY_FILE")
        for key_id, key in keys:
            if len(key) < _MIN_KEY_BYTES:
                raise KeyringError(f"actor key {key_id!r} must be at least {_MIN_KEY_BYTES} bytes")
        self.active_id = keys[0][0]
        self._keys = dict(keys)

    @classmethod
    def parse(cls, text: str) -> ActorKeys:
        return cls(parse_key_entries(text))

    def sign(self, workflow_id: str, update: str, args: Sequence[Any]) -> str:
        """For the sender: `args` as they will be sent."""
        body = [sent_form(update, a) for a in args]
        return f"{self.active_id}:{_mac(self._keys[self.active_id], workflow_id, update, body)}"

    def verify(self, workflow_id: str, update: str, args: Sequence[Any], attestation: str | None) -> bool:
        """For the worker: `args` as the workflow received them (models parsed from the JSON sent)."""
        key_id, sep, mac = (attestation or "").partition(":")
        key = self._keys.get(key_id)
        if not sep or key is None:
            return False
        body = [received_form(a) for a in args]
        return hmac.compare_digest(_mac(key, workflow_id, update, body).encode(), mac.encode())


def load_actor_keys(keys: str | None, key_file: Path | None) -> ActorKeys:
    if keys:
        return ActorKeys.parse(keys)
    if key_file is not None:
        return ActorKeys.parse(Path(key_file).read_text())
    raise KeyringError("no actor key: set WHISTLE_ACTOR_KEYS or WHISTLE_ACTOR_KEY_FILE")


def ensure_actor_key_file(path: Path) -> Path:
    """An actor key for `whistle dev`, made once (0600) in its data directory."""
    import secrets

    if not path.exists():
        write_secret(path, f"dev-1:{base64.b64encode(secrets.token_bytes(32)).decode()}\n")
    return path


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


@functools.cache
def update_input_types() -> dict[str, type]:
    """The input model of every update of whistle's workflows, by update name."""
    from temporalio.workflow._definition import _Definition

    from workflows.evaluation import ReverseEvaluationWorkflow
    from workflows.issue import IssueWorkflow
    from workflows.league import LeagueTableWorkflow

    types = {}
    for cls in (IssueWorkflow, ReverseEvaluationWorkflow, LeagueTableWorkflow):
        for name, d in _Definition.must_from_class(cls).updates.items():
            if name and d.arg_types and len(d.arg_types) == 1:
                types[name] = d.arg_types[0]
    return types


def sent_form(update: str, value: Any) -> Any:
    """An update argument as the worker will see it: parsed into the update's input model (a
    dict and the model built from it are one input) and dumped whole."""
    json_value = to_jsonable_python(value)
    model = update_input_types().get(update)
    if isinstance(model, type) and issubclass(model, BaseModel):
        try:
            return received_form(model.model_validate(json_value))
        except ValueError:
            pass  # the workflow will refuse it; what is signed hardly matters
    return _plain(json_value)


def received_form(value: Any) -> Any:
    """An update argument as the workflow received it: the model, dumped whole."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return _plain(to_jsonable_python(value))


def canonical(workflow_id: str, update: str, args: list[Any]) -> bytes:
    body = {"workflow_id": workflow_id, "update": update, "args": args}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _mac(key: bytes, workflow_id: str, update: str, args: list[Any]) -> str:
    digest = hmac.new(key, canonical(workflow_id, update, args), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def header_payload(attestation: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(attestation).encode())


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
class ActorAttestation(client.Interceptor, Interceptor):
    """`keyring`: the payload keyring, to read headers the codec server encrypted."""

    def __init__(self, keys: ActorKeys, keyring: Keyring | None = None):
        self.keys, self.keyring = keys, keyring

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _SigningOutbound(next, self.keys)

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        keys, keyring = self.keys, self.keyring

        class _Checking(WorkflowInboundInterceptor):
            def handle_update_validator(self, input: HandleUpdateInput) -> None:
                wid = workflow.info().workflow_id
                if not keys.verify(wid, input.update, input.args, header_value(input.headers.get(HEADER), keyring)):
                    raise ApplicationError(
                        f"update {input.update!r} is not attested: actors are accepted only from the "
                        "API gateway or a holder of the actor key (see `whistle actor sign`)",
                        type="Forbidden",
                        non_retryable=True,
                    )
                super().handle_update_validator(input)

        return _Checking


class _SigningOutbound(client.OutboundInterceptor):
    def __init__(self, next: client.OutboundInterceptor, keys: ActorKeys):
        super().__init__(next)
        self.keys = keys

    async def start_workflow_update(self, input: client.StartWorkflowUpdateInput) -> client.WorkflowUpdateHandle[Any]:
        attestation = self.keys.sign(input.id, input.update, input.args)
        input.headers = {**input.headers, HEADER: header_payload(attestation)}
        return await super().start_workflow_update(input)


def attested(c: client.Client) -> bool:
    return any(isinstance(i, ActorAttestation) for i in c.config()["interceptors"])
