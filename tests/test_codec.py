"""The payload codec: AES-GCM with key ids; after a rotation old payloads still decrypt."""

from __future__ import annotations

import pytest
from temporalio.api.common.v1 import Payload

from schemas.actions import Dispatch
from tests.conftest import ATTESTATION, TEST_KEY_ENTRY, issue_worker
from tests.helpers import GRID_WORKER, STREET_HANDLER, act, events, start
from workflows.issue import IssueWorkflow
from whistle.codec import REFUSED, EncryptionCodec, Keyring, KeyringError, ensure_key_file, load_keyring
from whistle.temporal import data_converter

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"phone":"13800000000"}')


async def test_round_trip_and_key_id_in_the_payload():
    codec = EncryptionCodec(Keyring.parse(Keyring.new_entry("k1")))
    [encrypted] = await codec.encode([PLAIN])
    assert encrypted.metadata["encryption-key-id"] == b"k1" and b"13800000000" not in encrypted.data
    assert await codec.decode([encrypted]) == [PLAIN]
    assert await codec.decode([PLAIN]) == [REFUSED]  # anyone could have written it
    lenient = EncryptionCodec(codec.keyring, strict=False)  # the Replayer of old histories
    assert await lenient.decode([PLAIN]) == [PLAIN]


async def test_rotation_keeps_old_payloads_readable():
    old_entry, new_entry = Keyring.new_entry("2026-q3"), Keyring.new_entry("2026-q4")
    [before] = await EncryptionCodec(Keyring.parse(old_entry)).encode([PLAIN])
    rotated = EncryptionCodec(Keyring.parse(f"{new_entry},{old_entry}"))
    [after] = await rotated.encode([PLAIN])
    assert after.metadata["encryption-key-id"] == b"2026-q4"
    assert await rotated.decode([before, after]) == [PLAIN, PLAIN]
    with pytest.raises(KeyringError, match="unknown key '2026-q3'"):
        await EncryptionCodec(Keyring.parse(new_entry)).decode([before])


async def test_tampering_is_detected():
    codec = EncryptionCodec(Keyring.parse(Keyring.new_entry("k1")))
    [encrypted] = await codec.encode([PLAIN])
    encrypted.data = encrypted.data[:-1] + bytes([encrypted.data[-1] ^ 1])
    with pytest.raises(Exception):
        await codec.decode([encrypted])


@pytest.mark.parametrize(
    ("text", "says"),
    [("", "empty"), ("k1", "kid:base64key"), ("k1:!!!", "base64"), ("k1:AAAA", "32 bytes"), ("bad id!:" + "A" * 44, "key id")],
)
def test_bad_keys_are_refused(text, says):
    with pytest.raises(KeyringError, match=says):
        Keyring.parse(text)


def test_key_sources(tmp_path):
    with pytest.raises(KeyringError, match="no payload encryption key"):
        load_keyring(None, None)
    path = ensure_key_file(tmp_path / "codec.key")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    first = path.read_text()
    assert ensure_key_file(path).read_text() == first  # made once, kept
    assert load_keyring(None, path).active_id == "dev-1"


async def test_running_issue_survives_a_key_rotation(dev_env, demo, pool):
    from temporalio.client import Client

    async with issue_worker(dev_env.client, demo, pool) as tq:
        h = await start(dev_env.client, tq, "tree-trimming")
        await act(h, "escalate", actor=GRID_WORKER, reason="before the rotation")
    # A new key becomes active; the old one stays for decryption.
    rotated_keys = Keyring.parse(f"{Keyring.new_entry('test-2')},{TEST_KEY_ENTRY}")
    target = dev_env.client.service_client.config.target_host
    rotated = await Client.connect(target, data_converter=data_converter(rotated_keys), interceptors=ATTESTATION)
    async with issue_worker(rotated, demo, pool, task_queue=tq):
        handle = rotated.get_workflow_handle_for(IssueWorkflow.run, h.id)
        s = await handle.execute_update(IssueWorkflow.dispatch, Dispatch(actor=STREET_HANDLER))
        assert s.stage == "department" and [e.kind for e in await events(pool, s)][:2] == ["intake", "escalated"]
    raw = (await (await Client.connect(target)).get_workflow_handle(h.id).fetch_history()).to_json()
    assert "dGVzdC0x" in raw and "dGVzdC0y" in raw  # payloads under key ids test-1 and test-2


async def test_codec_server_refuses_bad_payloads_with_400(dev_env, demo, pool):
    from tests.api_support import serve_api

    async with serve_api(dev_env, demo, pool, codec_server_auth=False) as a:
        assert (await a.http.post("/codec/decode", content=b"{not json")).status_code == 400
        bad = {"payloads": [{"metadata": {"encoding": "YmluYXJ5L2VuY3J5cHRlZA==", "encryption-key-id": "bm9wZQ=="}, "data": "AAAA"}]}
        r = await a.http.post("/codec/decode", json=bad)
        assert r.status_code == 400 and "cannot decode" in r.json()["error"]


async def test_codec_cors_allows_the_configured_ui_origin_only(dev_env, demo, pool):
    """deploy/ sets WHISTLE_CODEC_CORS_ORIGINS to the Web UI's address: its browser may call
    /codec, another origin may not."""
    from tests.api_support import serve_api

    async with serve_api(dev_env, demo, pool, codec_cors_origins="https://ui.example.gov.cn, http://127.0.0.1:8080") as api:
        def preflight(origin: str):
            return api.http.options("/codec/decode", headers={
                "Origin": origin, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,authorization"})
        ok = await preflight("https://ui.example.gov.cn")
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://ui.example.gov.cn"
        bad = await preflight("https://elsewhere.example")
        assert "access-control-allow-origin" not in bad.headers
