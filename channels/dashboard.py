"""Operations dashboard API: the table-1 KPI report as JSON and CSV, and 12-month trends with the
targets of `channels/ops_policy.yaml` (staff only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response

from billing_core.db.engine import session_scope
from channels.deps import StaffDep
from channels.responses import STAFF_ONLY
from channels.kpi import PeriodError, kpi_report, kpi_trend, latest_period_with_data, to_csv
from channels.ops_policy import load_policy

router = APIRouter(prefix="/api/kpi", tags=["运营看板"], responses=STAFF_ONLY)

PERIOD_PATTERN = r"^[12]\d{3}-(0[1-9]|1[0-2])$"
Period = Annotated[str, Query(description="账期 YYYY-MM", pattern=PERIOD_PATTERN)]


def _report(period: str) -> Any:
    try:
        with session_scope() as session:
            return kpi_report(session, period)
    except PeriodError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc


@router.get("", summary="T/CI 1281 表1 指标（按渠道）")
def kpi_json(period: Period, _staff: StaffDep) -> dict[str, Any]:
    return _report(period).as_dict()


@router.get(".csv", summary="指标导出 CSV", response_class=Response)
def kpi_csv(period: Period, _staff: StaffDep) -> Response:
    body = "\ufeff" + to_csv(_report(period))  # BOM so Excel opens the Chinese text correctly
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="kpi-{period}.csv"'})


@router.get("/trend", summary="各指标近 12 个账期趋势（含目标值）")
def kpi_trend_json(_staff: StaffDep,
                   end: Annotated[str | None, Query(description="最后一个账期 YYYY-MM；缺省为最近有数据的账期",
                                                    pattern=PERIOD_PATTERN)] = None,
                   periods: Annotated[int, Query(ge=1, le=24, description="账期个数")] = 12) -> dict[str, Any]:
    targets = load_policy().targets
    try:
        with session_scope() as session:
            latest = latest_period_with_data(session)
            trend = kpi_trend(session, end or latest, periods)
    except PeriodError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc).replace("period:", "end:")) from exc
    for group in ("billing", "platform", "service"):
        for kpi in trend[group]:  # type: ignore[union-attr]
            target = targets.get(kpi["code"])
            kpi["target"] = None if target is None else str(target.target)
            kpi["better"] = None if target is None else target.better
    return {"latest_period": latest, **trend}
