"""Operations endpoints: liveness, Prometheus metrics, and API docs that work offline.

FastAPI's default /docs page loads Swagger UI from a CDN; here its files come from the
`swagger-ui-bundle` package, as in FastAPI's "self-hosting JavaScript and CSS for docs" recipe.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from billing_core.db.engine import get_engine
from channels.deps import ServicesDep
from channels.metrics import CONTENT_TYPE_LATEST, exposition

router = APIRouter(tags=["运维"])

FAVICON = Path(__file__).parent / "web" / "favicon.ico"


class Health(BaseModel):
    status: str  # "ok" | "degraded" | "starting" | "failed"
    database: str
    loading: str | None = None  # while starting: what is being loaded
    steps: list[dict[str, object]] = []  # what start-up loaded, with seconds


@router.get("/healthz", response_model=Health, summary="就绪与数据库连通检查（启动加载中返回 503 starting）",
            responses={503: {"model": Health, "description": "正在启动（加载模型、知识库）或启动失败"}})
def healthz(request: Request) -> Response:
    readiness = request.app.state.readiness.snapshot()
    if readiness["status"] != "ready":
        body = Health(status=str(readiness["status"]), database="unchecked",
                      loading=readiness["loading"], steps=readiness["steps"])  # type: ignore[arg-type]
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # noqa: BLE001 - report, don't crash the probe
        database = f"error: {type(exc).__name__}"
    body = Health(status="ok" if database == "ok" else "degraded", database=database,
                  steps=readiness["steps"])  # type: ignore[arg-type]
    return JSONResponse(body.model_dump(), status_code=200)


@router.get("/metrics", summary="Prometheus 指标（多进程时汇总所有工作进程）", response_class=Response)
def metrics(services: ServicesDep) -> Response:
    return Response(exposition(services.metrics), media_type=CONTENT_TYPE_LATEST)


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    return FileResponse(FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})


DOCS_ASSETS = "/docs-assets"


@router.get("/docs", include_in_schema=False)
def docs(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url, title="PowerDesk API 文档",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
    )
