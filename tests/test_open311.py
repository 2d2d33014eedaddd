"""Open311 GeoReport v2: every response validates against the published JSON Schemas
(tests/open311/, written from the spec for this project); XML is well formed; errors have the spec's shape."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from xml.etree import ElementTree

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.api_support import serve_api
from tests.helpers import listed

SCHEMAS = Path(__file__).parent / "open311"
KEY = "key-open311-client"
PHONE = "13700001111"


def schema(name: str) -> jsonschema.protocols.Validator:
    registry = Registry().with_resources(
        (f, Resource.from_contents(json.loads((SCHEMAS / f).read_text()), default_specification=DRAFT7))
        for f in ("service.json", "request.json", "request-created.json")
    )
    return jsonschema.Draft7Validator(json.loads((SCHEMAS / name).read_text()), registry=registry)


def valid(name: str, data) -> None:
    errors = sorted(schema(name).iter_errors(data), key=str)
    assert not errors, errors[0]


@pytest.fixture
async def api(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool) as a:
        yield a


async def post(api, fmt="json", headers=None, **fields):
    form = {"api_key": KEY, "service_code": "tree-trimming", "address_id": "heping-a1-c1-g1", "description": "树倒了"} | fields
    form = {k: v for k, v in form.items() if v is not None}
    return await api.http.post(f"/open311/v2/requests.{fmt}", data=form, headers=headers or {})


def test_schemas_are_there_and_bite():
    assert (SCHEMAS / "request.json").is_file(), SCHEMAS
    with pytest.raises(AssertionError):
        valid("requests.json", [{"service_request_id": "x", "service_code": "y", "requested_datetime": "z"}])  # no status
    with pytest.raises(AssertionError):
        valid("services.json", [{"service_code": 1, "service_name": "n", "metadata": False, "type": "realtime"}])
    with pytest.raises(AssertionError):
        valid("request-created.json", [{"service_notice": "neither an id nor a token"}])


async def test_discovery(api):
    d = (await api.http.get("/open311/v2/discovery.json")).json()
    assert d["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    xml = ElementTree.fromstring((await api.http.get("/open311/v2/discovery.xml")).content)
    assert xml.tag == "discovery" and xml.find("endpoints/endpoint/formats/format").text == "application/json"


async def test_services_and_definitions(api, demo):
    r = await api.http.get("/open311/v2/services.json")
    valid("services.json", r.json())
    assert len(r.json()) == len(demo.categories)
    with_attributes = [c for c in demo.categories if c.attributes]
    assert {s["service_code"] for s in r.json() if s["metadata"]} == {c.id for c in with_attributes}
    for c in with_attributes:
        d = (await api.http.get(f"/open311/v2/services/{c.id}.json")).json()
        valid("service-definition.json", d)
        assert [a["code"] for a in d["attributes"]] == [a.code for a in c.attributes]
    xml = ElementTree.fromstring((await api.http.get("/open311/v2/services.xml")).content)
    assert xml.tag == "services" and len(xml.findall("service")) == len(demo.categories)
    xml = ElementTree.fromstring((await api.http.get(f"/open311/v2/services/{with_attributes[0].id}.xml")).content)
    assert xml.tag == "service_definition" and xml.find("attributes/attribute/code") is not None
    r = await api.http.get("/open311/v2/services/unicorns.json")
    assert r.status_code == 404 and r.json()[0]["code"] == 404


async def test_post_then_read_back(api):
    r = await post(api, first_name="王", last_name="五", phone=PHONE, email="wangwu@example.cn")
    assert r.status_code == 200, r.text
    valid("request-created.json", r.json())
    [created] = r.json()
    assert created["service_request_id"].startswith("open311-") and created["token"]
    rid = created["service_request_id"]
    one = (await api.http.get(f"/open311/v2/requests/{rid}.json")).json()
    valid("requests.json", one)
    assert one[0]["status"] == "open" and one[0]["service_code"] == "tree-trimming"
    assert one[0]["expected_datetime"] and one[0]["agency_responsible"]
    assert (await api.http.get(f"/open311/v2/request/{rid}.json")).json() == one
    token = (await api.http.get(f"/open311/v2/tokens/{created['token']}.json")).json()
    assert token == [{"service_request_id": rid, "token": created["token"]}]
    import asyncio

    await asyncio.sleep(0.3)  # the list reads the read model
    listed = (await api.http.get("/open311/v2/requests.json", params={"service_code": "tree-trimming"})).json()
    valid("requests.json", listed)
    assert rid in {x["service_request_id"] for x in listed}
    everything = json.dumps([one, listed, token], ensure_ascii=False)
    assert PHONE not in everything and "wangwu" not in everything and "王" not in everything
    xml = ElementTree.fromstring((await api.http.get(f"/open311/v2/requests/{rid}.xml")).content)
    assert xml.tag == "service_requests" and xml.find("request/service_request_id").text == rid


async def test_post_with_coordinates_address_and_attributes(api, demo):
    grid = demo.unit("jianguo-a1-c2-g2")
    r = await post(api, address_id=None, lat=str(grid.lat), long=str(grid.long))
    assert r.status_code == 200
    rid = r.json()[0]["service_request_id"]
    assert (await api.http.get(f"/open311/v2/requests/{rid}.json")).json()[0]["address_id"] == grid.id
    r = await post(api, address_id=None, address_string=f"{demo.unit(grid.parent).name}西门")
    assert r.status_code == 200
    r = await post(api, service_code="noise", **{"attribute[time_of_day]": "夜间(22:00-6:00)"})
    assert r.status_code == 200, r.text


async def test_idempotency_key_makes_a_retry_the_same_request(api):
    headers = {"Idempotency-Key": f"client-{uuid.uuid4().hex[:8]}"}
    first, again = await post(api, headers=headers), await post(api, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()[0]["service_request_id"] == again.json()[0]["service_request_id"]
    runs = await listed(api.app.state.deps.client, f'WorkflowId="issue-{first.json()[0]["service_request_id"]}"')
    assert len(runs) == 1


async def test_parameters_in_the_query_string_as_the_swagger_file_sends_them(api):
    params = {"api_key": KEY, "service_code": "tree-trimming", "lat": "39.951", "long": "116.39", "jurisdiction_id": "demo-district"}
    r = await api.http.post("/open311/v2/requests.json", params=params)
    assert r.status_code == 200, r.text
    assert r.json()[0]["service_request_id"].startswith("open311-")


@pytest.mark.parametrize(
    ("fields", "status", "says"),
    [
        ({"api_key": None}, 401, "API key"),
        ({"api_key": "wrong"}, 401, "unknown API key"),
        ({"api_key": "key-ops"}, 403, "may not submit"),
        ({"api_key": "key-hotline-12345"}, 403, "submits on channel hotline"),
        ({"service_code": None}, 400, "service_code"),
        ({"service_code": "unicorns"}, 400, "unknown category"),
        ({"address_id": None, "lat": "31.23", "long": "121.47"}, 400, "outside the jurisdiction"),
        ({"address_id": None, "lat": "39.9"}, 400, "both lat and long"),
        ({"address_id": None, "lat": "north", "long": "east"}, 400, "numbers"),
        ({"address_id": None}, 400, "give a location"),
        ({"description": "长" * 4001}, 400, "description"),
        ({"phone": "not a phone"}, 400, "phone"),
        ({"service_code": "noise"}, 400, "time_of_day"),
    ],
)
async def test_post_errors(api, fields, status, says):
    for fmt in ("json", "xml"):
        r = await post(api, fmt=fmt, **fields)
        assert r.status_code == status, r.text
        if fmt == "json":
            [error] = r.json()
            assert error["code"] == status and says in error["description"]
        else:
            xml = ElementTree.fromstring(r.content)
            assert xml.tag == "errors" and says in xml.find("error/description").text


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"status": "pending"}, "status"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, "90 days"),
        ({"page_size": "5000"}, "page_size"),
        ({"page": "zero"}, "integers"),
        ({"jurisdiction_id": "gotham"}, "jurisdiction_id"),
    ],
)
async def test_list_errors(api, params, says):
    r = await api.http.get("/open311/v2/requests.json", params=params)
    assert 400 <= r.status_code < 500 and says in r.json()[0]["description"]


async def test_list_filters_status_dates_and_pages(api):
    ids = [(await post(api)).json()[0]["service_request_id"] for _ in range(3)]
    import asyncio

    await asyncio.sleep(0.3)
    page1 = (await api.http.get("/open311/v2/requests.json", params={"page_size": 2, "page": 1})).json()
    page2 = (await api.http.get("/open311/v2/requests.json", params={"page_size": 2, "page": 2})).json()
    valid("requests.json", page1)
    assert len(page1) == 2 and not {x["service_request_id"] for x in page1} & {x["service_request_id"] for x in page2}
    assert (await api.http.get("/open311/v2/requests.json", params={"status": "closed"})).json() == []
    by_id = (await api.http.get("/open311/v2/requests.json", params={"service_request_id": ",".join(ids), "status": "closed"})).json()
    assert {x["service_request_id"] for x in by_id} == set(ids)  # service_request_id overrides other filters
    old = (await api.http.get("/open311/v2/requests.json", params={"end_date": "2020-01-01T00:00:00Z"})).json()
    assert old == []


async def test_unknown_format_and_request(api):
    assert (await api.http.get("/open311/v2/services.csv")).status_code == 404
    r = await api.http.get("/open311/v2/requests/open311-nothing.json")
    assert r.status_code == 404 and r.json()[0]["code"] == 404
    assert (await api.http.get("/open311/v2/tokens/nothing.json")).status_code == 404
