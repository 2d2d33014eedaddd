"""A codec server for the Temporal Web UI and the `temporal` CLI: with it they show decrypted
payloads (`temporal server start-dev --ui-codec-endpoint .../codec`; for the CLI,
TEMPORAL_CODEC_ENDPOINT and TEMPORAL_CODEC_AUTH="Bearer <key>"). Enabled by
WHISTLE_CODEC_SERVER; it asks for a supervisor's or ops key unless WHISTLE_CODEC_SERVER_AUTH
is false, as `whistle dev` sets it for its own UI on 127.0.0.1.

Decode applies the API's rule on reporters' data (api.scope.sees_reporter): the contact is
shown to the supervisor only; for everyone else (ops, and the keyless dev UI) every reporter
in the payloads is replaced by {"redacted": true}.

Encode makes payloads the workers accept (they refuse unencrypted ones), so it is for the
supervisor and ops only. It cannot mint actors: an update counts only with an actor
attestation (whistle.attest), made with a key this server never uses.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from api.deps import AppDeps, Deps
from api.errors import ApiError
from api.guard import API_KEY_HEADER, authenticate, check_address, require_role
from api.scope import redact_reporters, sees_reporter
from schemas.principal import Principal, Role
from whistle.codec import EncryptionCodec

router = APIRouter(prefix="/codec", tags=["codec"], include_in_schema=False)


async def _caller(request: Request, d: Deps) -> Principal | None:
    await check_address(d, request)
    if not request.app.state.codec_auth:
        return None
    header = request.headers.get("Authorization", "")
    key = header.removeprefix("Bearer ").strip() or request.headers.get(API_KEY_HEADER)
    p = await authenticate(d, request, key)
    require_role(p, Role.supervisor, Role.ops)
    return p


def _redacted(p: Payload) -> Payload:
    if p.metadata.get("encoding") != b"json/plain":
        return p
    try:
        value = json.loads(p.data)
    except ValueError:
        return p
    return Payload(metadata=p.metadata, data=json.dumps(redact_reporters(value), ensure_ascii=False).encode())


async def _apply(request: Request, d: Deps, decode: bool) -> Response:
    caller = await _caller(request, d)
    codec: EncryptionCodec = request.app.state.codec
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
        if decode:
            # Lenient: the UI shows histories as they are, plain payloads included.
            converted = await EncryptionCodec(codec.keyring, strict=False).decode(payloads.payloads)
            if not sees_reporter(caller, None):
                converted = [_redacted(p) for p in converted]
        else:
            converted = await codec.encode(payloads.payloads)
    except Exception as exc:  # malformed JSON, unknown key id, a payload that fails authentication
        raise ApiError(400, f"cannot {'decode' if decode else 'encode'} these payloads: {type(exc).__name__}") from None
    return Response(json_format.MessageToJson(Payloads(payloads=converted)), media_type="application/json")


@router.post("/decode")
async def decode(request: Request, d: AppDeps) -> Response:
    return await _apply(request, d, decode=True)


@router.post("/encode")
async def encode(request: Request, d: AppDeps) -> Response:
    return await _apply(request, d, decode=False)
