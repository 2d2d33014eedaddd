"""A codec server for the Temporal Web UI: with it the UI shows decrypted payloads
(`temporal server start-dev --ui-codec-endpoint .../codec`; for the `temporal` CLI,
TEMPORAL_CODEC_ENDPOINT and TEMPORAL_CODEC_AUTH="Bearer <key>"). Enabled by
WHISTLE_CODEC_SERVER; it asks for a supervisor's or ops key unless WHISTLE_CODEC_SERVER_AUTH
is false, as `whistle dev` sets it for its own UI on 127.0.0.1."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from api.errors import ApiError
from api.guard import API_KEY_HEADER, authenticate, require_role
from schemas.principal import Role
from whistle.codec import EncryptionCodec

router = APIRouter(prefix="/codec", tags=["codec"], include_in_schema=False)


async def _apply(request: Request, decode: bool) -> Response:
    if request.app.state.codec_auth:
        # Decrypting history reveals reporters' personal data: supervisors and ops only.
        header = request.headers.get("Authorization", "")
        key = header.removeprefix("Bearer ").strip() or request.headers.get(API_KEY_HEADER)
        require_role(authenticate(request, key), Role.supervisor, Role.ops)
    codec: EncryptionCodec = request.app.state.codec
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
        converted = await (codec.decode if decode else codec.encode)(payloads.payloads)
    except Exception as exc:  # malformed JSON, unknown key id, a payload that fails authentication
        raise ApiError(400, f"cannot {'decode' if decode else 'encode'} these payloads: {type(exc).__name__}") from None
    return Response(json_format.MessageToJson(Payloads(payloads=converted)), media_type="application/json")


@router.post("/decode")
async def decode(request: Request) -> Response:
    return await _apply(request, decode=True)


@router.post("/encode")
async def encode(request: Request) -> Response:
    return await _apply(request, decode=False)
