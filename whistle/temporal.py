"""Connecting to Temporal the one way every process does: the SDK's environment configuration
(address, namespace, TLS / mTLS, API key), the pydantic data converter with the payload codec,
actor attestation, and the search attributes of the public contract."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from whistle.attest import ActorAttestation, ActorKeys
from whistle.codec import EncryptionCodec, Keyring

DEFAULT_ADDRESS = "127.0.0.1:7233"

ISSUE_STAGE = SearchAttributeKey.for_keyword("IssueStage")
OWNER_UNIT = SearchAttributeKey.for_keyword("OwnerUnit")
STREET = SearchAttributeKey.for_keyword("Street")
CATEGORY = SearchAttributeKey.for_keyword("Category")
CHANNEL = SearchAttributeKey.for_keyword("Channel")
OVERDUE = SearchAttributeKey.for_bool("Overdue")
DUE_AT = SearchAttributeKey.for_datetime("DueAt")

SEARCH_ATTRIBUTES = (ISSUE_STAGE, OWNER_UNIT, STREET, CATEGORY, CHANNEL, OVERDUE, DUE_AT)
# `temporal server start-dev --search-attribute` spelling of each type.
_CLI_TYPE = {"KEYWORD": "Keyword", "BOOL": "Bool", "DATETIME": "Datetime"}


def search_attribute_flags() -> list[str]:
    flags = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={_CLI_TYPE[key.indexed_value_type.name]}"]
    return flags


def data_converter(keyring: Keyring | None, strict: bool = True) -> DataConverter:
    """The pydantic converter, with the AES-GCM codec when a keyring is given. Every client,
    worker and Replayer of whistle uses this; only a Replayer of histories recorded before the
    codec passes strict=False."""
    if keyring is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(keyring, strict))


def client_interceptors(tracer_provider=None) -> list:
    """Every whistle client's interceptors but the actor attestation, in order: the one place to
    add one. Those that are also worker interceptors (the SDK's TracingInterceptor) run in the
    client's workers too."""
    from whistle.tracing import temporal_tracing

    return [*temporal_tracing(tracer_provider)]


class TemporalUnreachable(RuntimeError):
    """Temporal's frontend does not answer at the configured address, said in one line."""


def connect_config(
    address: str | None = None, namespace: str | None = None, env: dict[str, str] | None = None
) -> ClientConnectConfig:
    """Client.connect's arguments from the SDK's environment configuration (TEMPORAL_ADDRESS,
    TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*, TEMPORAL_PROFILE and its TOML file),
    with WHISTLE_TEMPORAL_ADDRESS / _NAMESPACE (`address`, `namespace`) winning when given."""
    config = ClientConfigProfile.load(override_env_vars=env).to_client_connect_config()
    if address:
        config["target_host"] = address
    if namespace:
        config["namespace"] = namespace
    config.setdefault("target_host", DEFAULT_ADDRESS)
    config.setdefault("namespace", "default")
    return config


async def connect(
    address: str | None = None,
    namespace: str | None = None,
    keyring: Keyring | None = None,
    actor_keys: ActorKeys | None = None,
) -> Client:
    """A client that encrypts payloads (keyring) and attests the actor of every update it sends
    (actor_keys); a worker built on it checks both."""
    interceptors = [ActorAttestation(actor_keys, keyring)] if actor_keys is not None else []
    config = connect_config(address, namespace)
    try:
        return await Client.connect(
            **config, data_converter=data_converter(keyring), interceptors=interceptors + client_interceptors(),
        )
    except RuntimeError as exc:
        if not str(exc).startswith("Failed client connect"):
            raise
        raise TemporalUnreachable(f"cannot reach Temporal at {config['target_host']} ({' '.join(str(exc).split())})") from None


async def connect_settings(settings, actors: bool = True) -> Client:
    """The client of a whistle process (worker, API, CLI) from its settings."""
    return await connect(
        settings.temporal_address, settings.temporal_namespace, settings.keyring(),
        settings.actor_key_ring() if actors else None,
    )


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register the contract's search attributes on a cluster (idempotent); returns those added."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )
    from temporalio.service import RPCError, RPCStatusCode

    try:
        listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
        present = set(listed.custom_attributes)
    except RPCError as err:
        # Java's time-skipping test server implements Add but not List.
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        present = set()
    missing = {
        key.name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{key.indexed_value_type.name}")
        for key in SEARCH_ATTRIBUTES
        if key.name not in present
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)


def quiet_runtime() -> Runtime:
    """A Temporal runtime that logs only errors: for commands that draw their own output
    (`whistle simulate`) or print figures (benchmarks)."""
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))
