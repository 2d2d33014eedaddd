"""A third-party Open311 client against the served API: bravado, a generic Swagger 2.0 client,
driven by the GeoReport v2 swagger file the spec publishes, validating every response."""

from __future__ import annotations

import asyncio
import json
import warnings
from pathlib import Path

from tests.api_support import serve_api
from tests.test_cli_issues import served

SWAGGER = Path(__file__).resolve().parents[2] / "shared" / "open311-schemas" / "swagger.json"


def run_client(base: str) -> dict:
    from bravado.client import SwaggerClient

    spec = json.loads(SWAGGER.read_text())
    host = base.removeprefix("http://")
    spec.update(host=host, basePath="/open311/v2", schemes=["http"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "uid format is not registered"
        c = SwaggerClient.from_spec(spec, config={"validate_responses": True, "use_models": False})
    j = {"response_format": "json", "jurisdiction_id": "demo-district"}
    services = c.services_response_format.get_services_response_format(**j).response().result
    created = c.requests_response_format.post_requests_response_format(
        **j, service_code="tree-trimming", lat=39.951, long=116.39, api_key="key-open311-client"
    ).response().result
    rid = created[0]["service_request_id"]
    back = c.request.get_request_service_request_id_response_format(**j, service_request_id=rid).response().result
    token = c.tokens.get_tokens_token_id_response_format(**j, token_id=created[0]["token"]).response().result
    return {"services": services, "created": created, "back": back, "token": token}


async def test_swagger_client_lists_posts_and_reads_back(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool) as api, served(api.app) as base:
        result = await asyncio.to_thread(run_client, base)
    assert len(result["services"]) == len(demo.categories)
    rid = result["created"][0]["service_request_id"]
    assert result["back"][0]["service_request_id"] == rid and result["back"][0]["status"] == "open"
    assert result["token"][0]["service_request_id"] == rid
