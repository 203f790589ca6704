"""Operations endpoints: liveness, Prometheus metrics, and API docs that work offline.

FastAPI's default /docs page loads Swagger UI from a CDN; here its files come from the
`swagger-ui-bundle` package, as in FastAPI's "self-hosting JavaScript and CSS for docs" recipe.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from billing_core.db.engine import get_engine
from channels.deps import ServicesDep

router = APIRouter(tags=["运维"])


class Health(BaseModel):
    status: str
    database: str


@router.get("/healthz", response_model=Health, summary="存活与数据库连通检查")
def healthz() -> Health:
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # noqa: BLE001 - report, don't crash the probe
        database = f"error: {type(exc).__name__}"
    return Health(status="ok" if database == "ok" else "degraded", database=database)


@router.get("/metrics", summary="Prometheus 指标", response_class=Response)
def metrics(services: ServicesDep) -> Response:
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)


DOCS_ASSETS = "/docs-assets"


@router.get("/docs", include_in_schema=False)
def docs(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url, title="PowerDesk API 文档",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
    )
