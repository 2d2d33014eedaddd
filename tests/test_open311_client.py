"""A third-party Open311 client against the served API: bravado, a generic Swagger 2.0 client,
driven by a Swagger 2.0 description of GeoReport v2 (tests/open311/swagger.yaml), validating
every response."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import yaml

from tests.api_support import serve_api
from tests.test_cli_issues import served

SWAGGER = Path(__file__).parent / "open311" / "swagger.yaml"


def run_client(base: str) -> dict:
    from bravado.client import SwaggerClient

    spec = yaml.safe_load(SWAGGER.read_text())
    host = base.removeprefix("http://")
    spec.update(host=host, basePath="/open311/v2", schemes=["http"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bravado-core's own deprecation warnings
        c = SwaggerClient.from_spec(spec, config={"validate_responses": True, "use_models": False})
    j = {"response_format": "json", "jurisdiction_id": "demo-district"}
    services = c.services.list_services(**j).response().result
    created = c.requests.create_request(
        **j, service_code="tree-trimming", lat=39.951, long=116.39, api_key="key-open311-client"
    ).response().result
    rid = created[0]["service_request_id"]
    back = c.requests.get_request(**j, service_request_id=rid).response().result
    token = c.tokens.get_token(**j, token_id=created[0]["token"]).response().result
    return {"services": services, "created": created, "back": back, "token": token}


async def test_swagger_client_lists_posts_and_reads_back(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool) as api, served(api.app) as base:
        result = await asyncio.to_thread(run_client, base)
    assert len(result["services"]) == len(demo.categories)
    rid = result["created"][0]["service_request_id"]
    assert result["back"][0]["service_request_id"] == rid and result["back"][0]["status"] == "open"
    assert result["token"][0]["service_request_id"] == rid
