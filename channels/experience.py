"""Staff routes of the voice of the customer (issue 15): the periodic satisfaction report as one HTML
page (or Markdown), the needs loop, and the guide's four kinds of CX indicators for the KPI dashboard.
Staff only: the reports hold aggregates and masked references, never a customer's number or name."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import HTMLResponse, PlainTextResponse

from agent.experience.voc.indicators import KIND_CN, default_indicators, indicator_values
from agent.experience.voc.needs import KIND_CN as NEED_KIND_CN
from agent.experience.voc.needs import needs
from agent.experience.voc.periods import PeriodError
from agent.experience.voc.report import format_html, format_markdown, satisfaction_report
from billing_core.db.engine import session_scope
from channels.dashboard import PERIOD_PATTERN
from channels.deps import StaffDep
from channels.kpi import latest_period_with_data
from channels.responses import STAFF_ONLY

router = APIRouter(tags=["客户体验"], responses=STAFF_ONLY)
OptionalPeriod = Annotated[str | None, Query(description="账期 YYYY-MM；缺省为最近有数据的账期", pattern=PERIOD_PATTERN)]


def _period(period: str | None) -> str:
    if period:
        return period
    with session_scope() as session:
        return latest_period_with_data(session)


@router.get("/api/cx/report", summary="客户满意度报告（HTML 或 Markdown）", response_class=HTMLResponse,
            responses={200: {"content": {"text/html": {}, "text/markdown": {}}}})
def cx_report(_staff: StaffDep, period: OptionalPeriod = None,
              format: Annotated[Literal["html", "md"], Query(description="html 或 md")] = "html",  # noqa: A002
              topics: Annotated[bool, Query(description="附高频问题分析")] = True) -> Any:
    chosen = _period(period)
    try:
        with session_scope() as session:
            report = satisfaction_report(session, chosen, topics=topics)
    except PeriodError as exc:  # pragma: no cover - the pattern already refuses it
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
    if format == "md":
        return PlainTextResponse(format_markdown(report), media_type="text/markdown; charset=utf-8")
    return HTMLResponse(format_html(report))


@router.get("/api/cx/needs", summary="诉求闭环：未能当场解决的诉求、响应时限与状态")
def cx_needs(_staff: StaffDep,
             overdue: Annotated[bool, Query(description="只列超期未办的")] = False) -> dict[str, Any]:
    now = datetime.now(UTC)
    with session_scope() as session:
        rows = needs(session, now)
    if overdue:
        rows = [n for n in rows if n.overdue and not n.closed]
    return {"as_of": now.isoformat(), "overdue": sum(1 for n in rows if n.overdue and not n.closed),
            "needs": [{"kind": n.kind, "kind_name": NEED_KIND_CN[n.kind], "reference": n.reference,
                       "channel": n.channel, "account": n.account, "opened_at": n.opened_at.isoformat(),
                       "due_at": n.due_at.isoformat(), "state": n.state, "overdue": n.overdue,
                       "summary": n.summary} for n in rows]}


@router.get("/api/kpi/indicators", summary="客户体验测量指标（导则 §8.8：交互/感知/行为/结果）")
def kpi_indicators(_staff: StaffDep, period: OptionalPeriod = None) -> dict[str, Any]:
    chosen = _period(period)
    with session_scope() as session:
        values = indicator_values(session, chosen)
    policy = default_indicators()
    return {"period": chosen, "version": policy.version, "source": policy.source, "kinds": KIND_CN,
            "indicators": [v.as_dict() for v in values]}
