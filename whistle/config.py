"""Process configuration: environment variables (WHISTLE_*), optionally a TOML file.

Precedence: explicit arguments > environment > the TOML file given by --config or
WHISTLE_CONFIG > defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# The one task queue every IssueWorkflow, evaluation and league-table workflow runs on.
TASK_QUEUE = "whistle"

DEMO_JURISDICTION = Path(__file__).parent / "data" / "demo_jurisdiction.yaml"
# Seconds an intake waits for its issue to start and register (WHISTLE_REGISTER_TIMEOUT).
DEFAULT_REGISTER_TIMEOUT = 10.0
# The most WHISTLE_ACTOR_ATTESTATION_MAX_AGE may be (seconds): whistle.attest carries update ids
# across a continue-as-new for as long as a copy signed within it could be good.
MAX_ATTESTATION_MAX_AGE = 3600


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WHISTLE_", extra="forbid")

    # Temporal client: the SDK's environment configuration (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
    # TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE) applies; these two
    # override it when set. Without either, 127.0.0.1:7233 and "default".
    temporal_address: str | None = None
    temporal_namespace: str | None = None
    database_url: str | None = Field(default=None, description="asyncpg URL of the read model")
    jurisdiction_file: Path = DEMO_JURISDICTION
    task_queue: str = TASK_QUEUE
    # Workflows a worker keeps in memory (Temporal's default). An issue evicted from the cache
    # replays its whole history when its next timer fires: size it to the open issues per worker.
    max_cached_workflows: int = Field(default=1000, ge=0)
    # whistle dev
    data_dir: Path = Path(".whistle")
    temporal_port: int = Field(default=7233, ge=1, le=65535)
    ui_port: int = Field(default=8233, ge=1, le=65535)
    api_port: int = Field(default=8000, ge=1, le=65535)
    host: str = "127.0.0.1"
    # Notifications to supervisors: "log" or an http(s) webhook URL.
    notifier: str = "log"
    # Prometheus /metrics (worker: also /livez and /readyz; API: its request metrics)
    metrics_address: str = Field(default="127.0.0.1:9464", pattern=r"^\S+:\d{1,5}$")
    api_metrics_address: str = Field(default="127.0.0.1:9465", pattern=r"^\S+:\d{1,5}$")
    log_format: str = Field(default="auto", pattern="^(auto|json|console)$")
    log_level: str = "INFO"
    # Payload encryption (AES-GCM): "kid:base64key,..." (first encrypts) or a file of such lines.
    codec_keys: str | None = Field(default=None, repr=False)
    codec_key_file: Path | None = None
    # Actor attestation (HMAC-SHA256), shared by the API and the workers: "kid:base64key,..."
    # (the first signs, all verify) or a file of such lines.
    actor_keys: str | None = Field(default=None, repr=False)
    actor_key_file: Path | None = None
    # How long an attestation is good, in seconds either side of its issued-at time (clock skew
    # between the API and the workers included): a captured header expires after it.
    actor_attestation_max_age: int = Field(default=300, ge=5, le=MAX_ATTESTATION_MAX_AGE)
    # HTTP API
    principals_file: Path | None = None
    token_secret: str | None = Field(default=None, repr=False, description="HMAC secret of residents' feedback tokens")
    rate_limit_key: str = "1200/minute"
    rate_limit_address: str = "600/minute"
    rate_limit_failed_keys: str = "60/minute"  # missing or unknown API keys, per client address
    # Where the limits live (the `limits` library's storage URI): memory:// counts per process;
    # redis://host:6379 (its client comes with whistle), memcached://... (memcachio) or mongodb://...
    # (motor) make the replicas count together; api/limits.py reads them through limits' asyncio storage.
    rate_limit_storage: str = "memory://"
    # Proxies (IP addresses or CIDR networks, comma separated) whose X-Forwarded-For is believed.
    trusted_proxies: str = ""
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # How long an intake waits for its issue's start and registration (normally some ten
    # milliseconds; a worker's first task after it starts takes longer) before answering 503.
    register_timeout: float = Field(default=DEFAULT_REGISTER_TIMEOUT, gt=0, le=60)
    codec_server: bool = False  # serve /codec/encode|decode for the Temporal Web UI and CLI
    codec_server_auth: bool = True  # ask for a supervisor's or ops key (whistle dev: off, local only)
    # Browser origins allowed to call /codec (the Temporal Web UI's address); comma separated.
    # Unset: the dev UI's (http://HOST:UI_PORT and http://localhost:UI_PORT).
    codec_cors_origins: str | None = None
    # The CLI's view of the API
    api_url: str = "http://127.0.0.1:8000"
    api_key: str | None = Field(default=None, repr=False)

    def keyring(self):
        from whistle.codec import load_keyring

        return load_keyring(self.codec_keys, self.codec_key_file)

    def actor_key_ring(self):
        from whistle.attest import load_actor_keys

        return load_actor_keys(self.actor_keys, self.actor_key_file, self.actor_attestation_max_age)

    def temporal(self) -> dict[str, object]:
        """What `whistle.temporal.connect` takes from these settings."""
        return {"address": self.temporal_address, "namespace": self.temporal_namespace}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = os.environ.get("WHISTLE_CONFIG")
        if toml:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Settings from environment and TOML; `overrides` are CLI flags (None means not given)."""
    if config_file is not None:
        if not config_file.is_file():
            raise FileNotFoundError(f"config file not found: {config_file}")
        os.environ["WHISTLE_CONFIG"] = str(config_file)
    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
