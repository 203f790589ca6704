"""Operations endpoints: liveness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from billing_core.db import get_engine
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
