"""`powerdesk insights show | scan`: smart analysis for operators (the agent's tools use the same code).

`show --account 户号` prints one customer's month so far, forecast, anomaly alerts, agency/market
outlook and saving advice; `scan` lists the anomaly alerts of every customer (or the first N), the
batch the notices worker reads. Read-only; bad input names the field and exits with 2.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Annotated, Any

import typer
from sqlalchemy import select

from billing_core.cli.schema_check import ensure_schema

app = typer.Typer(help="智能数据分析：本月用电与电费预测、用电异常提醒、节电建议（只读）。", no_args_is_help=True)


def _today(value: str | None) -> date:
    if value is None:
        from datetime import UTC, datetime

        return (datetime.now(UTC) + timedelta(hours=8)).date()  # Beijing time, where the utility is
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        typer.echo(f"错误：--today: {value!r} 不是 YYYY-MM-DD 日期", err=True)
        raise typer.Exit(code=2) from None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump())
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)  # Decimal: exact digits


@app.command()
def show(
    account: Annotated[str, typer.Option("--account", help="12 位户号")],
    today: Annotated[str | None, typer.Option("--today", help="按哪一天分析（YYYY-MM-DD，默认北京时间今天）")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON")] = False,
) -> None:
    """One customer's insights."""
    from billing_core.db.engine import session_scope
    from billing_core.db.models import Customer
    from billing_core.insights.service import saving_advice_for, usage_insights

    day = _today(today)
    ensure_schema("billing")
    with session_scope() as session:
        customer = session.scalar(select(Customer).where(Customer.account_no == account.strip()))
        if customer is None:
            typer.echo(f"错误：--account: 户号 {account} 不存在", err=True)
            raise typer.Exit(code=2)
        insights = usage_insights(session, customer, day)
        _, items = saving_advice_for(session, customer, day)
    if as_json:
        typer.echo(json.dumps(_plain({"forecast": insights.forecast, "alerts": insights.alerts,
                                      "market": insights.market, "advice": items}), ensure_ascii=False, indent=2))
        return
    typer.echo(insights.forecast.summary_cn())
    typer.echo(f"预测方法：{insights.forecast.method}")
    for alert in insights.alerts:
        typer.echo(f"异常：{alert.message}")
    if not insights.alerts:
        typer.echo("异常：无")
    if insights.market is not None:
        typer.echo(f"购电：{insights.market.message}")
    for number, item in enumerate(items, start=1):
        typer.echo(f"建议 {number}：{item.message}")


@app.command()
def scan(
    today: Annotated[str | None, typer.Option("--today", help="按哪一天分析（YYYY-MM-DD）")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="只看前 N 户")] = None,
) -> None:
    """Anomaly alerts of every customer (户号, kind, sentence), one per line."""
    import numpy as np

    from billing_core.db.engine import session_scope
    from billing_core.db.models import Customer
    from billing_core.insights.anomalies import backwards_alerts, scan_many
    from billing_core.insights.history import load_histories
    from billing_core.insights.policy import load_policy

    day = _today(today)
    ensure_schema("billing")
    policy = load_policy()
    as_of = day - timedelta(days=1)
    first = as_of - timedelta(days=policy.anomalies.window_days + 400)
    found = 0
    with session_scope() as session:
        query = select(Customer.id, Customer.account_no).order_by(Customer.id)
        rows = session.execute(query.limit(limit) if limit else query).all()
        for offset in range(0, len(rows), 2000):
            chunk = rows[offset : offset + 2000]
            histories = load_histories(session, [r[0] for r in chunk], first, as_of)
            matrix = np.stack([histories[r[0]].kwh for r in chunk])
            alerts = scan_many(matrix, first, as_of, policy.anomalies)
            since = as_of - timedelta(days=policy.anomalies.report_days - 1)
            for (cid, account), row_alerts in zip(chunk, alerts, strict=True):
                for alert in row_alerts + backwards_alerts(histories[cid], since):
                    typer.echo(f"{account}\t{alert.kind}\t{alert.message}")
                    found += 1
    typer.echo(f"共 {found} 条用电异常提醒（{len(rows)} 户，截至 {as_of}）。")
