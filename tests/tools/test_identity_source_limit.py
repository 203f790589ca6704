"""One source (a web address, a caller number, an openid) failing against many DIFFERENT 户号 is
locked, although the spray never reaches the per-account or per-conversation limits; the refusal
is the same whether a 户号 exists or not, parallel guesses get no more tries, staff see and can
lift it, and a malformed limit is refused at load. SQLite and PostgreSQL (`world`)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from tests.tools.conftest import ACCOUNT_A, ACCOUNT_B, World
from tests.tools.factories import NOW
from tools.identity_locks import StaffPrincipal, active_identity_locks, lift_identity_lock
from tools.models import IdentityAttempt, LockScope
from tools.registry import call_tool
from tools.service_policy import POLICY_PATH, load_policy

ATTACKER = "203.0.113.7"
LIMIT = load_policy().verification.max_accounts_per_source  # 10 in the shipped policy
GHOSTS = [f"4401999{n:05d}" for n in range(40)]  # 户号 no customer has


def _guess(world: World, i: int, account: str, *, source: str = ATTACKER, minutes: float = 0,
           last4: str = "0000") -> object:
    ctx = world.ctx(f"spray-{source}-{i}", source=source, clock=lambda: NOW + timedelta(minutes=minutes))
    return call_tool(ctx, "verify_identity", {"account_no": account, "last4": last4})


def _plain(message: str) -> str:
    return re.sub(r"HO\d+", "HO…", message)


def test_a_spray_over_many_accounts_locks_the_source_and_says_nothing_about_them(world: World) -> None:
    results = [_guess(world, i, account) for i, account in enumerate(GHOSTS[:LIMIT - 1])]
    assert {r.status for r in results} == {"failed"}  # one wrong answer per 户号: no other limit is near
    locked = _guess(world, LIMIT, GHOSTS[LIMIT])
    assert locked.status == "locked" and locked.locked_until == NOW + timedelta(minutes=60)
    # Locked now: a real 户号 with the right tail and a ghost get the same words (only the hand-off no.).
    real = _guess(world, 100, ACCOUNT_B, minutes=1, last4="9000")
    ghost = _guess(world, 101, GHOSTS[30], minutes=1)
    assert real.status == ghost.status == "locked"
    assert _plain(real.message) == _plain(ghost.message) and "该户号" not in real.message
    assert ACCOUNT_B not in real.message
    # Another source is not touched, and the lock ends on time.
    assert _guess(world, 102, ACCOUNT_B, source="198.51.100.2", minutes=1, last4="9000").status == "verified"
    assert _guess(world, 103, ACCOUNT_B, minutes=61, last4="9000").status == "verified"
    with world.sessions() as session:
        refused = session.scalars(select(IdentityAttempt).where(IdentityAttempt.refused_by_lock.is_(True))).all()
        assert [(a.claimed_account, a.source) for a in refused] == [(ACCOUNT_B, f"web:{ATTACKER}")]


def test_the_same_account_again_is_not_a_different_account(world: World) -> None:
    for i in range(4):  # four wrong tails for one 户号 from one address: the 户号 limit's business
        assert _guess(world, i, ACCOUNT_A, last4=f"00{i}1").status == "failed"
    for i, account in enumerate(GHOSTS[:LIMIT - 2]):  # with A: LIMIT - 1 different 户号
        assert _guess(world, 10 + i, account).status == "failed"
    assert _guess(world, 99, GHOSTS[LIMIT]).status == "locked"


def test_a_caller_number_spraying_account_numbers_is_locked(world: World) -> None:
    def call(i: int, account: str) -> str:
        ctx = world.ctx(f"ivr-spray-{i}", channel="ivr", identity="13700000000")
        return call_tool(ctx, "verify_identity", {"method": "account_secret", "account_no": account,
                                                  "last4": "0000"}).status

    assert [call(i, a) for i, a in enumerate(GHOSTS[:LIMIT])] == ["failed"] * (LIMIT - 1) + ["locked"]
    with world.sessions() as session:
        [view] = active_identity_locks(session, NOW, scope=LockScope.SOURCE)
    assert view.key == "ivr:137****0000" and view.account_no is None  # masked like every phone number
    assert (view.wrong_answers, view.conversations, view.channels) == (LIMIT, LIMIT, ["ivr"])


def test_parallel_sprays_get_no_more_accounts_than_sequential_ones(world: World) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda i: _guess(world, i, GHOSTS[i]).status, range(LIMIT + 8)))
    assert sorted(statuses) == ["failed"] * (LIMIT - 1) + ["locked"] * 9


def test_staff_lift_a_source_lock_and_its_count_starts_again(world: World) -> None:
    for i, account in enumerate(GHOSTS[:LIMIT]):
        _guess(world, i, account)
    with world.sessions() as session:
        [view] = active_identity_locks(session, NOW, scope=LockScope.SOURCE)
        lift_identity_lock(session, StaffPrincipal("staff:0042"), view.id, "营业厅公共电脑，已核实为柜台演示", NOW)
    assert _guess(world, 50, GHOSTS[LIMIT + 1], minutes=1).status == "failed"
    assert _guess(world, 51, ACCOUNT_B, minutes=1, last4="9000").status == "verified"


def test_a_malformed_source_limit_is_refused_naming_file_and_field(tmp_path: Path) -> None:
    data = yaml.safe_load(POLICY_PATH.read_text(encoding="utf-8"))
    for field, bad in (("max_accounts_per_source", 1), ("source_lock_minutes", "一小时"),
                       ("source_window_minutes", None)):
        broken = {**data, "verification": {**data["verification"], field: bad}}
        path = tmp_path / "service_policy.yaml"
        path.write_text(yaml.safe_dump(broken, allow_unicode=True), encoding="utf-8")
        with pytest.raises(ValueError, match=rf"service_policy\.yaml: verification\.{field}"):
            load_policy(path)
