"""`powerdesk billing load-readings`: a meter-data CSV loaded on SQLite and a real PostgreSQL (COPY)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from billing_core.cli.billing import app
from billing_core.db.engine import make_engine
from billing_core.db.models import Meter, Reading, ReadingRegister
from billing_core.readings_csv import ReadingsFileError, load_readings
from tests.billing.ops_factories import add_customer, add_daily_readings, add_meter

GOOD_AND_BAD = """asset_no,date,register,value
{a},2026-07-01,active_total,1000.500
{a},2026-07-02,active_total,1010.250
{a},2026-07-02,active_total,1010.250
NOPE-1,2026-07-02,active_total,5
{a},2026-07-32,active_total,1020
{a},2026-07-03,active_total,abc
{a},2026-07-03,active_totl,1020
{a},2026-07-03,active_total,1005
{a},2026-07-04,active_total,1030.1234
{a},2026-07-04,peak,-1
{b},2026-07-01,active_total,40
{b},2026-07-02,active_total,51
{b},2026-07-02,max_demand,7.5
{b},2026-07-03,max_demand,2.1
{a},2026-06-29,active_total,990
"""
#      line 2, 3 good; 4 duplicate; 5 unknown meter; 6 bad date; 7 non-numeric; 8 register;
#      9 backwards within the file; 10 four decimals; 11 negative; 12 below b's stored 30 June
#      reading (50); 13 good; 14, 15 max_demand (a level: may fall); 16 above a's stored 30 June (980)


@pytest.fixture
def meters(session: Session) -> tuple[str, str]:
    a = add_meter(session, add_customer(session, 1))
    b = add_meter(session, add_customer(session, 2))
    add_daily_readings(session, a, date(2026, 6, 30), date(2026, 6, 30), "980", "0")
    add_daily_readings(session, b, date(2026, 6, 30), date(2026, 6, 30), "50", "0")
    session.commit()
    return a.asset_no, b.asset_no


def stored(session: Session) -> list[tuple[str, date, str, Decimal]]:
    session.expire_all()
    return [(asset, day, str(register), value) for asset, day, register, value in session.execute(
        select(Meter.asset_no, Reading.read_date, Reading.register, Reading.value)
        .join(Meter, Meter.id == Reading.meter_id).order_by(Meter.asset_no, Reading.register, Reading.read_date))]


def test_good_rows_load_and_every_bad_row_is_named_by_line_and_reason(
        session: Session, meters: tuple[str, str], tmp_path: Path) -> None:
    a, b = meters
    path = tmp_path / "july.csv"
    path.write_text(GOOD_AND_BAD.format(a=a, b=b), encoding="utf-8")
    result = load_readings(session, path, batch_rows=4)  # small batches: checks must hold across them
    reasons = {line: reason for line, _raw, reason in result.rejects}
    assert sorted(reasons) == [4, 5, 6, 7, 8, 9, 10, 11, 12, 16]
    assert "重复" in reasons[4] and "第 3 行" in reasons[4]
    assert "未知表计 NOPE-1" in reasons[5]
    assert reasons[6].startswith("date:")
    assert reasons[7].startswith("value:") and "数字" in reasons[7]
    assert reasons[8].startswith("register:")
    assert "倒走" in reasons[9] and "2026-07-02" in reasons[9]
    assert "三位小数" in reasons[10]
    assert "负" in reasons[11]
    assert "倒走" in reasons[12] and "2026-06-30" in reasons[12]
    assert "倒走" in reasons[16] and "高于其后 2026-06-30" in reasons[16]
    assert (result.rows, result.loaded, result.already_loaded) == (15, 5, 0)
    assert stored(session) == [
        (a, date(2026, 6, 30), "active_total", Decimal("980.000")),
        (a, date(2026, 7, 1), "active_total", Decimal("1000.500")),
        (a, date(2026, 7, 2), "active_total", Decimal("1010.250")),
        (b, date(2026, 6, 30), "active_total", Decimal("50.000")),
        (b, date(2026, 7, 2), "active_total", Decimal("51.000")),  # 40 on 1 July was below 50
        (b, date(2026, 7, 2), "max_demand", Decimal("7.500")),
        (b, date(2026, 7, 3), "max_demand", Decimal("2.100")),
    ]


def test_loading_the_same_file_again_changes_nothing(session: Session, meters: tuple[str, str],
                                                     tmp_path: Path) -> None:
    a, b = meters
    path = tmp_path / "july.csv"
    path.write_text(GOOD_AND_BAD.format(a=a, b=b), encoding="utf-8")
    first = load_readings(session, path)
    before = stored(session)
    second = load_readings(session, path)
    assert stored(session) == before
    assert (second.loaded, second.already_loaded) == (0, first.loaded)
    assert [line for line, _, _ in second.rejects] == [line for line, _, _ in first.rejects]


def test_a_value_differing_from_the_stored_one_is_refused_not_overwritten(
        session: Session, meters: tuple[str, str], tmp_path: Path) -> None:
    a, _ = meters
    path = tmp_path / "fix.csv"
    path.write_text(f"asset_no,date,register,value\n{a},2026-06-30,active_total,981\n", encoding="utf-8")
    result = load_readings(session, path)
    assert result.loaded == 0 and "已入库示数 980.000 不一致" in result.rejects[0][2]


def test_columns_in_another_order_and_a_bad_header(session: Session, meters: tuple[str, str], tmp_path: Path) -> None:
    a, _ = meters
    path = tmp_path / "reordered.csv"
    path.write_text(f"\ufeffvalue,register,date,asset_no\n1001,active_total,2026-07-01,{a}\n", encoding="utf-8")
    assert load_readings(session, path).loaded == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("asset_no,day,register,value\n", encoding="utf-8")
    with pytest.raises(ReadingsFileError, match="缺少列 date"):
        load_readings(session, bad)


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    monkeypatch.setenv("POWERDESK_DATABASE_URL", database_url)
    engine = make_engine(database_url)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


def _curve(start: str, step: str, *, fall_at: int | None = None, blank: tuple[int, ...] = ()) -> list[str]:
    """24 hourly points rising by `step` from `start` (a fall at point `fall_at`, blanks at `blank`)."""
    points = []
    for hour in range(1, 25):
        value = Decimal(start) + Decimal(step) * hour - (Decimal(5) if fall_at is not None and hour >= fall_at else 0)
        points.append("" if hour in blank else f"{value:.3f}")
    return points


def test_the_24_point_export_stores_the_2400_point_and_checks_the_others(
        session: Session, meters: tuple[str, str], tmp_path: Path) -> None:
    a, b = meters
    header = ["asset_no", "date", "register", *(f"p{h:02d}" for h in range(1, 25))]
    rows = [
        [a, "2026-07-01", "active_total", *_curve("980", "0.5", blank=(3, 4))],   # good: p24 = 992.000
        [a, "2026-07-02", "active_total", *_curve("992", "0.5", fall_at=12)],     # falls at 12:00
        [a, "2026-07-03", "active_total", *_curve("1000", "0.5")[:-1], ""],       # no 24:00 point
        [a, "2026-07-04", "active_total", *_curve("1000", "0.5")[:-2], "x", "1013"],  # p23 not a number
        [b, "2026-07-01", "max_demand", "7", "3", *["2"] * 22],                   # a level may fall
    ]
    path = tmp_path / "curve.csv"
    with path.open("w", newline="", encoding="utf-8") as stream:
        csv.writer(stream).writerows([header, *rows])
    result = load_readings(session, path)
    assert result.loaded == 2 and [line for line, _raw, _why in result.rejects] == [3, 4, 5]
    reasons = [why for _line, _raw, why in result.rejects]
    assert reasons[0].startswith("p12: 示数倒走") and reasons[1].startswith("p24:") and reasons[2].startswith("p23:")
    assert (a, date(2026, 7, 1), "active_total", Decimal("992.000")) in stored(session)
    assert (b, date(2026, 7, 1), "max_demand", Decimal("2")) in stored(session)


def test_the_command_writes_a_rejects_csv_and_exits_3(cli_database: Session, tmp_path: Path) -> None:
    meter = add_meter(cli_database, add_customer(cli_database, 7))
    cli_database.commit()
    path = tmp_path / "m.csv"
    rows = [f"{meter.asset_no},2026-07-{day:02d},active_total,{100 + day}" for day in range(1, 31)]
    path.write_text("asset_no,date,register,value\n" + "\n".join(rows) + "\nX,2026-07-01,peak,1\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["load-readings", str(path)])
    assert result.exit_code == 3, result.output
    assert "入库 30 行" in result.stdout and "退回 1 行" in result.stdout
    with (tmp_path / "m.csv.rejects.csv").open(encoding="utf-8") as stream:
        assert list(csv.reader(stream)) == [["line", "asset_no", "date", "register", "value", "reason"],
                                            ["32", "X", "2026-07-01", "peak", "1", "asset_no: 未知表计 X"]]
    assert cli_database.scalar(select(func.count()).select_from(Reading)) == 30
    assert cli_database.scalar(select(func.count()).select_from(Reading).where(
        Reading.register == ReadingRegister.ACTIVE_TOTAL)) == 30
    again = runner.invoke(app, ["load-readings", str(path), "--rejects", str(tmp_path / "r2.csv")])
    assert again.exit_code == 3 and "已入库跳过 30 行" in again.stdout
    missing = runner.invoke(app, ["load-readings", str(tmp_path / "absent.csv")])
    assert missing.exit_code == 2 and "无法读取" in missing.stderr
