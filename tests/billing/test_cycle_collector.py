"""A cycle chunk runs with the cyclic garbage collector paused, and leaves it on however it ends."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from datetime import date

import pytest
from sqlalchemy.orm import Session

from billing_core.bill_types import Usage
from billing_core.consumption import Consumption
from billing_core.cycle.run import run_cycle
from tests.billing.ops_factories import add_customer


def test_the_collector_is_paused_inside_a_chunk_and_back_on_after_it_raises(session: Session) -> None:
    add_customer(session, 1)
    session.commit()
    seen: list[bool] = []

    def failing_loader(session: Session, ids: Sequence[int], start: date, end: date) -> dict[int, Consumption | Usage]:
        seen.append(gc.isenabled())
        raise RuntimeError("meter data store unreachable")

    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="unreachable"):
        run_cycle(session, "2026-07", issue_date=date(2026, 8, 2), usage_loader=failing_loader)
    assert seen == [False] and gc.isenabled()
    session.rollback()

    gc.disable()  # a caller that paused it itself keeps it paused
    try:
        with pytest.raises(RuntimeError):
            run_cycle(session, "2026-07", issue_date=date(2026, 8, 2), usage_loader=failing_loader)
        assert seen == [False, False] and not gc.isenabled()
    finally:
        gc.enable()
