"""Connecting to Temporal the one way every process does: pydantic data converter, and the
search attributes of the public contract."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from whistle.codec import EncryptionCodec, Keyring

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


def data_converter(keyring: Keyring | None) -> DataConverter:
    """The pydantic converter, with the AES-GCM codec when a keyring is given. Every client,
    worker and Replayer of whistle uses this."""
    if keyring is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(keyring))


def client_interceptors(tracer_provider=None) -> list:
    """Every whistle client's interceptors, in order: the one place to add one. Those that are
    also worker interceptors (the SDK's TracingInterceptor) run in the client's workers too."""
    from whistle.tracing import temporal_tracing

    return [*temporal_tracing(tracer_provider)]


async def connect(address: str, namespace: str = "default", keyring: Keyring | None = None) -> Client:
    return await Client.connect(
        address, namespace=namespace, data_converter=data_converter(keyring), interceptors=client_interceptors()
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
