"""What settings change in the production worker."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from whistle.config import load_settings
from worker import worker_options


def test_the_workflow_cache_is_sized_by_a_setting(monkeypatch, tmp_path):
    assert worker_options(load_settings())["max_cached_workflows"] == 1000  # Temporal's default
    monkeypatch.setenv("WHISTLE_MAX_CACHED_WORKFLOWS", "20000")
    assert worker_options(load_settings())["max_cached_workflows"] == 20000
    monkeypatch.delenv("WHISTLE_MAX_CACHED_WORKFLOWS")
    toml = tmp_path / "whistle.toml"
    toml.write_text("max_cached_workflows = 5000\n", encoding="utf-8")
    monkeypatch.setenv("WHISTLE_CONFIG", str(toml))
    assert worker_options(load_settings())["max_cached_workflows"] == 5000


def test_a_negative_workflow_cache_is_refused(monkeypatch):
    monkeypatch.setenv("WHISTLE_MAX_CACHED_WORKFLOWS", "-1")
    with pytest.raises(ValidationError, match="max_cached_workflows"):
        load_settings()
