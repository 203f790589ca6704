"""`powerdesk demo …`: seed the demo utility and run its monthly billing (compute only).

`make run` calls `powerdesk db upgrade`, `powerdesk demo seed --if-empty`, `powerdesk demo cycle`,
so a fresh checkout shows a working billing desk with two commands.
"""

from __future__ import annotations

import typer

from billing_core.db.engine import session_scope
from billing_core.cli.schema_check import ensure_schema
from billing_core.cycle.run import compute_period
from billing_core.demo.seed import CYCLE_PERIOD, DemoNotEmptyError, is_empty, seed_demo
from billing_core.errors import BillingError
from billing_core.money import yuan

app = typer.Typer(help="演示电力公司：生成可复现的客户、读数、账单与缴费数据，并计算当月账单。", no_args_is_help=True)

CATEGORY_CN = {"residential": "居民", "ci_single": "工商业单一制", "ci_two_part": "工商业两部制", "agricultural": "农业"}
CHANNEL_CN = {"wechat_pay": "微信支付", "alipay": "支付宝", "bank_withholding": "银行代扣", "counter": "营业厅柜台",
              "prepaid": "预存抵扣", "bank_transfer": "银行转账"}


@app.command()
def seed(
    customers: int = typer.Option(2000, min=1, max=200_000, help="客户数量"),
    seed: int = typer.Option(42, help="随机种子：相同种子生成相同数据"),
    if_empty: bool = typer.Option(False, "--if-empty", help="数据库已有客户时什么也不做"),
) -> None:
    """生成演示电力公司（约 2000 户、13 个月逐日读数、12 个月账单与缴费、2026-09 银行对账单）。"""
    ensure_schema("billing")
    try:
        with session_scope() as session:
            if not is_empty(session):
                if if_empty:
                    typer.echo("数据库已有客户数据，跳过演示数据生成。")
                    return
                raise DemoNotEmptyError("数据库中已有客户数据，演示数据只能写入空数据库（可用 --if-empty 跳过）",
                                        field="database")
            summary = seed_demo(session, customers=customers, seed=seed)
    except BillingError as exc:
        typer.echo(f"错误：{exc}", err=True)
        raise typer.Exit(2) from exc
    kinds = "，".join(f"{CATEGORY_CN.get(k, k)} {n}" for k, n in sorted(summary.customers.items()))
    channels = "，".join(f"{CHANNEL_CN.get(k, k)} {n}" for k, n in sorted(summary.payments.items()))
    typer.echo(f"演示数据已生成（种子 {summary.seed}，用时 {summary.seconds:.1f} 秒）")
    typer.echo(f"  客户 {sum(summary.customers.values())} 户：{kinds}；微信绑定 {summary.wechat_bound} 户")
    typer.echo(f"  电表 {summary.meters} 块（年内换表 {summary.replaced_meters} 户），读数 {summary.readings} 条")
    typer.echo(f"  账单 {summary.bills} 张，合计 {yuan(summary.bill_total)}；未缴 {summary.unpaid_bills} 张，"
               f"欠费/逾期客户 {summary.overdue_accounts} 户")
    typer.echo(f"  缴费：{channels}")
    for reason, count in summary.unbilled.most_common():
        typer.echo(f"  未出账 {count} 期：{reason}")
    typer.echo(f"  读数倒走待复核：{'、'.join(summary.backwards_accounts) or '无'}；"
               f"缺抄户：{len(summary.missing_day_accounts)} 户")
    if summary.statement_path:
        exceptions = "，".join(f"{k}={v}" for k, v in summary.statement_exceptions.items())
        typer.echo(f"  银行对账单：{summary.statement_path}（异常：{exceptions or '无'}）")


@app.command()
def cycle(period: str = typer.Option(CYCLE_PERIOD, help="账期 YYYY-MM")) -> None:
    """计算账期内尚无账单客户的电费（只计算、不发行），并打印摘要与一张示例账单。"""
    ensure_schema("billing")
    try:
        with session_scope() as session:
            summary = compute_period(session, period)
    except BillingError as exc:
        typer.echo(f"错误：{exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{summary.period} 账单计算：新计算 {summary.computed} 张，合计 {yuan(summary.total)}；"
               f"已有账单 {summary.already_billed} 张（未重复计算）")
    if summary.held_for_review:
        typer.echo(f"读数异常待复核、暂不出账 {len(summary.held_for_review)} 户：")
        for account_no, why in summary.held_for_review[:10]:
            typer.echo(f"  {account_no}：{why}")
    if summary.failed:
        typer.echo(f"无法计算 {len(summary.failed)} 户（首条：{summary.failed[0][0]} {summary.failed[0][1]}）")
    if summary.sample:
        account_no, name, bill = summary.sample
        typer.echo(f"示例账单 户号 {account_no} {name}，{bill.period_start} 至 {bill.period_end}，"
                   f"电量 {bill.total_kwh} 千瓦时：")
        for line in bill.lines:
            typer.echo(f"  {line.name}：{line.quantity} {line.unit} × {line.unit_price} = {yuan(line.amount)}")
        typer.echo(f"  合计 {yuan(bill.total)}（{bill.rounding}）")
