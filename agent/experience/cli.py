"""`powerdesk cx`: customer classes, tags and portraits (guide §5.1, §8.3, §8.6, §8.7).

    powerdesk cx classes list                         # the policy's classes and service standards
    powerdesk cx classes set 户号 vip_1 --reason … --by 王敏   # staff-set 重要客户 level (audited)
    powerdesk cx classes clear 户号 --reason … --by 王敏
    powerdesk cx tags refresh [--as-of 2026-10-20]    # recompute every customer's tags and classes
    powerdesk cx portraits refresh                    # cluster customers, describe the clusters
    powerdesk cx portraits show
    powerdesk cx refresh                              # both refreshes from one read of the records
    powerdesk cx show 户号                             # one customer's classes, tags and portrait
    powerdesk cx negative report --week 2026-W48      # negative experiences (agent/experience/negative)
    powerdesk cx voc report --period 2026-11 --format html   # voice of the customer (agent/experience/voc)
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, time as day_time

import typer

from agent.experience.negative.cli import app as negative_app
from agent.experience.voc.cli import app as voc_app

app = typer.Typer(help="客户体验：客户分类、标签与画像、差异化服务（指南 §5.1、§8.3、§8.6、§8.7）。",
                  no_args_is_help=True)
classes_app = typer.Typer(help="客户分类：查看分类标准，设置或取消重要客户等级（需说明理由，留审计记录）。",
                          no_args_is_help=True)
tags_app = typer.Typer(help="客户标签：从账单、缴费、会话与工单记录重新计算。", no_args_is_help=True)
portraits_app = typer.Typer(help="客户画像：按用电与交互特征聚类。", no_args_is_help=True)
app.add_typer(classes_app, name="classes")
app.add_typer(tags_app, name="tags")
app.add_typer(portraits_app, name="portraits")
app.add_typer(negative_app, name="negative")
app.add_typer(voc_app, name="voc")


def _as_of(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        typer.echo(f"错误：--as-of：日期应为 YYYY-MM-DD，收到 {value!r}", err=True)
        raise typer.Exit(2) from exc
    return datetime.combine(day, day_time(16, 0), tzinfo=UTC)  # the end of that day in Guangzhou


def _policy():  # type: ignore[no-untyped-def]
    from agent.experience.policy import ClassificationPolicyError, load_policy

    try:
        return load_policy()
    except ClassificationPolicyError as exc:
        typer.echo(f"错误：{exc}", err=True)
        raise typer.Exit(2) from exc


@classes_app.command("list")
def list_classes() -> None:
    """列出分类、认定依据、服务责任单位与服务标准。"""
    policy = _policy()
    typer.echo(f"{policy.version}（{policy.effective_date} 起执行）")
    for c in policy.classes:
        basis = "人工认定" if c.basis == "staff" else "数据计算"
        sla = f"，投诉{c.service.complaint_contact_hours}小时内联系" if c.service.complaint_contact_hours else ""
        queue = f"，队列：{c.service.complaint_queue}" if c.service.complaint_queue else ""
        typer.echo(f"{c.code:20} {c.group}/{c.name}（{basis}）责任单位：{c.responsible_unit}{sla}{queue}")
        typer.echo(f"{'':20} 标准：{c.criteria_text}")


def _set_or_clear(account_no: str, class_code: str | None, reason: str, by: str) -> None:
    from billing_core.cli.schema_check import ensure_schema
    from billing_core.db.engine import session_scope
    from agent.experience.classes import ClassInputError, clear_staff_class, set_staff_class

    policy = _policy()
    ensure_schema("billing", "tools", "agent")
    try:
        with session_scope() as session:
            if class_code is None:
                previous = clear_staff_class(session, account_no, reason, by, channel="cli")
                typer.echo(f"已取消 {account_no} 的重要客户等级（原为 {previous}）" if previous else
                           f"{account_no} 没有人工认定的等级，未作修改（已记录）")
            else:
                done = set_staff_class(session, account_no, class_code, reason, by, channel="cli", policy=policy)
                typer.echo(f"已将 {account_no} 认定为{done.name}（认定人：{done.set_by}，理由：{done.reason}）")
    except ClassInputError as exc:
        typer.echo(f"错误：{exc}", err=True)
        raise typer.Exit(2) from exc


@classes_app.command("set")
def set_class(account_no: str = typer.Argument(..., help="12位户号"),
              class_code: str = typer.Argument(..., help="vip_special / vip_1 / vip_2"),
              reason: str = typer.Option(..., "--reason", help="认定理由（如：市人民医院，中断供电危及生命）"),
              by: str = typer.Option(..., "--by", help="认定人")) -> None:
    """设置客户的重要客户等级（表1 高可靠性客户）。"""
    _set_or_clear(account_no, class_code, reason, by)


@classes_app.command("clear")
def clear_class(account_no: str = typer.Argument(..., help="12位户号"),
                reason: str = typer.Option(..., "--reason", help="取消理由"),
                by: str = typer.Option(..., "--by", help="操作人")) -> None:
    """取消客户的重要客户等级。"""
    _set_or_clear(account_no, None, reason, by)


@tags_app.command("refresh")
def refresh_tags_command(as_of: str | None = typer.Option(None, "--as-of", help="按此日期计算（默认今天）")) -> None:
    """重新计算全部客户的标签与数据分类。"""
    from billing_core.cli.schema_check import ensure_schema
    from billing_core.db.engine import session_scope
    from agent.experience.tags import refresh_tags

    policy = _policy()
    when = _as_of(as_of)
    ensure_schema("billing", "tools", "agent")
    started = time.perf_counter()
    with session_scope() as session:
        result = refresh_tags(session, when, policy)
    typer.echo(f"已计算 {result.customers} 户客户的标签（{result.tags} 个，{result.tagged} 户有标签），"
               f"用时 {time.perf_counter() - started:.1f} 秒，策略 {result.policy_version}")
    for cls in policy.derived_classes:
        typer.echo(f"  {cls.name}：{result.by_class.get(cls.code, 0)} 户")


@app.command("refresh")
def refresh_all_command(as_of: str | None = typer.Option(None, "--as-of", help="按此日期计算（默认今天）")) -> None:
    """一次读取记录，重新计算全部客户的标签、数据分类与画像（= tags refresh + portraits refresh）。"""
    from billing_core.cli.schema_check import ensure_schema
    from billing_core.db.engine import session_scope
    from agent.experience.portraits import TooFewCustomers, refresh_all

    policy = _policy()
    when = _as_of(as_of)
    ensure_schema("billing", "tools", "agent")
    started = time.perf_counter()
    try:
        with session_scope() as session:
            tags, portraits = refresh_all(session, when, policy)
    except TooFewCustomers as exc:
        typer.echo(f"错误：{exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"已计算 {tags.customers} 户客户的标签（{tags.tags} 个）与画像（k={portraits.k}，"
               f"轮廓系数 {portraits.score:.3f}），用时 {time.perf_counter() - started:.1f} 秒")
    _print_clusters(portraits.clusters)


@portraits_app.command("refresh")
def refresh_portraits_command(as_of: str | None = typer.Option(None, "--as-of", help="按此日期计算（默认今天）")) -> None:
    """按用电与交互特征对客户聚类（k 由轮廓系数在2–8中选定）。"""
    from billing_core.cli.schema_check import ensure_schema
    from billing_core.db.engine import session_scope
    from agent.experience.portraits import TooFewCustomers, refresh_portraits

    policy = _policy()
    when = _as_of(as_of)
    ensure_schema("billing", "tools", "agent")
    started = time.perf_counter()
    try:
        with session_scope() as session:
            result = refresh_portraits(session, when, policy)
    except TooFewCustomers as exc:
        typer.echo(f"错误：{exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"已为 {result.customers} 户客户画像：k={result.k}（轮廓系数 {result.score:.3f}），"
               f"用时 {time.perf_counter() - started:.1f} 秒")
    _print_clusters(result.clusters)


def _print_clusters(clusters: list[dict]) -> None:  # type: ignore[type-arg]
    for c in clusters:
        typer.echo(f"  群{c['no']}：{c['label']}（{c['size']} 户，{c['share']:.1%}）")


@portraits_app.command("show")
def show_portraits() -> None:
    """显示最近一次画像的分群与选 k 依据。"""
    from billing_core.cli.schema_check import ensure_schema
    from billing_core.db.engine import session_scope
    from agent.experience.portraits import latest_run

    ensure_schema("billing", "tools", "agent")
    with session_scope() as session:
        run = latest_run(session)
        if run is None:
            typer.echo("还没有画像，请先运行 powerdesk cx tags refresh 和 powerdesk cx portraits refresh", err=True)
            raise typer.Exit(1)
        typer.echo(f"画像 #{run.id}，{run.computed_at:%Y-%m-%d %H:%M} UTC，{run.customers} 户，k={run.k}")
        typer.echo(f"选 k 依据：{run.criterion}；各 k 轮廓系数：{run.scores}")
        _print_clusters(run.clusters)


@app.command("show")
def show(account_no: str = typer.Argument(..., help="12位户号")) -> None:
    """显示一户客户的分类、标签（附来源记录）与画像。"""
    from billing_core.cli.schema_check import ensure_schema
    from billing_core.db.engine import session_scope
    from agent.experience.view import customer_experience

    policy = _policy()
    ensure_schema("billing", "tools", "agent")
    with session_scope() as session:
        view = customer_experience(session, account_no, policy)
    if view is None:
        typer.echo(f"错误：account_no：户号 {account_no} 不存在", err=True)
        raise typer.Exit(2)
    typer.echo(f"户号 {account_no}")
    typer.echo("分类：" + ("；".join(f"{c.name}（{c.basis_label}，{c.responsible_unit}）" for c in view.classes) or "无"))
    if view.staff_class is not None:
        typer.echo(f"  人工认定：{view.staff_class.name}，{view.staff_class.set_by}，理由：{view.staff_class.reason}")
    typer.echo(f"标签（计算于 {view.computed_at or '未计算'}）：")
    for tag in view.tags:
        sources = "，".join(f"{e.kind}#{','.join(map(str, e.ids[:5]))}" for e in tag.evidence)
        typer.echo(f"  [{tag.dimension}] {tag.label}  ← {sources or '—'}")
    typer.echo(f"画像：{view.portrait.label if view.portrait else '未计算'}")
