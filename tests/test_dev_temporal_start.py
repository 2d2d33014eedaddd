"""`whistle dev` when the Temporal dev server exits while starting: it is started once more (its
internal ports are picked by the server itself and can be taken in between), and when the second
start fails too the error names the failure's own line, not a Go stack's tail."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from whistle.console import dev
from whistle.config import Settings

PANIC = "panic: listen tcp 127.0.0.1:40123: bind: address already in use\n" + "goroutine 1 [running]:\n\tmain.go:18 +0x8e\n" * 60


def fake_temporal(tmp_path: Path, fail_times: int, real: Path) -> Path:
    """A `temporal` that panics (exit 2) its first `fail_times` starts, then runs the real one."""
    script = tmp_path / "temporal"
    (tmp_path / "panic.txt").write_text(PANIC)
    script.write_text(
        "#!/bin/sh\n"
        f'n=$(cat "{tmp_path}/starts" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "{tmp_path}/starts"\n'
        f'if [ $n -le {fail_times} ]; then cat "{tmp_path}/panic.txt" >&2; exit 2; fi\n'
        f'exec "{real}" "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def stack(tmp_path: Path) -> dev.DevStack:
    from tests.test_dev_stack import free_port

    data = tmp_path / "data"
    data.mkdir()
    return dev.DevStack(Settings(data_dir=data, temporal_namespace="default", temporal_port=free_port(), ui_port=free_port(), api_port=free_port()))


async def test_an_early_exit_is_retried_once(tmp_path, monkeypatch):
    real = dev.find_binary("temporal")
    monkeypatch.setattr(dev, "find_binary", lambda name: fake_temporal(tmp_path, 1, real))
    s = stack(tmp_path)
    async with s._temporal(s.settings.data_dir) as address:
        assert address.endswith(f":{s.settings.temporal_port}")
    assert (tmp_path / "starts").read_text().strip() == "2"


async def test_two_early_exits_name_the_panic_line(tmp_path, monkeypatch):
    real = dev.find_binary("temporal")
    monkeypatch.setattr(dev, "find_binary", lambda name: fake_temporal(tmp_path, 2, real))
    s = stack(tmp_path)
    with pytest.raises(dev.DevError) as raised:
        async with s._temporal(s.settings.data_dir):
            pass
    message = str(raised.value)
    assert "exited (2)" in message and "panic: listen tcp 127.0.0.1:40123: bind: address already in use" in message
    assert "goroutine" not in message
    assert (tmp_path / "starts").read_text().strip() == "2"
