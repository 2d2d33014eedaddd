"""/docs renders with no network: Swagger UI's files come from the fastapi-offline wheel and
the API serves them; headless Chromium, with every host but 127.0.0.1 unresolvable, draws the
operations."""

from __future__ import annotations

from api.app import create_app
from tests.test_cli_issues import served
from tests.test_league_page import chromium  # skips this module where Chromium is missing
from whistle.config import Settings

OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


async def test_docs_render_offline():
    app = create_app(None, Settings(token_secret="t"))  # type: ignore[arg-type]  # /docs needs no deps
    async with served(app) as base:
        html = await _get(base, "/docs")
        assert "cdn" not in html.lower() and "swagger-ui-bundle.js" in html
        dom = await chromium(OFFLINE, "--virtual-time-budget=15000", "--dump-dom", f"{base}/docs")
    # Swagger UI drew the document: the title, the operations, their paths.
    assert 'class="swagger-ui"' in dom and "opblock" in dom, dom[-3000:]
    assert "/v1/issues/{issue_id}/actions/escalate" in dom and "/open311/v2/requests.{fmt}" in dom


async def _get(base: str, path: str) -> str:
    import httpx

    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.get(path)
        assert r.status_code == 200
        js = await http.get("/static-offline-docs/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        return r.text
