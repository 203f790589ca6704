"""Where agent turns run: the event loop for the local brain, a thread when a caller must be able to
stop waiting (WeChat's deadline), and a pool of N threads with POWERDESK_TURN_CONCURRENCY=N."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from agent.agent import Reply
from channels.app import create_app
from channels.settings import ChannelSettings
from tests.channels.conftest import make_settings


class RecordingAgent:
    """Answers at once and notes the thread each turn ran on."""

    def __init__(self, brain: str) -> None:
        self.brain = brain
        self.threads: list[int] = []

    def handle(self, conversation_id: str, channel: str, text: str, message_id: str | None = None,
               **_: Any) -> Reply:
        self.threads.append(threading.get_ident())
        return Reply(conversation_id=conversation_id, text="好的", grounded=True)

    def state(self, _conversation_id: str) -> None:
        return None


async def _turn_threads(settings: ChannelSettings, brain: str, *, off_loop: bool) -> tuple[int, list[int]]:
    agent = RecordingAgent(brain)
    services = create_app(settings, agent).state.services
    await services.turn("web-execution-01", "web", "你好", off_loop=off_loop)
    return threading.get_ident(), agent.threads


@pytest.mark.parametrize(("brain", "concurrency", "off_loop", "on_loop"), [
    ("local", 0, False, True),   # automatic: CPU-bound local turns on the loop, no GIL hand-offs
    ("local", 0, True, False),   # WeChat: a deadline needs the turn off the loop
    ("local", 2, False, False),  # POWERDESK_TURN_CONCURRENCY=2: a thread pool again
    ("llm", 0, False, False),    # LLM turns wait on the endpoint: threads
])
def test_where_a_turn_runs(brain: str, concurrency: int, off_loop: bool, on_loop: bool) -> None:
    loop_thread, turn_threads = anyio.run(
        lambda: _turn_threads(make_settings(turn_concurrency=concurrency), brain, off_loop=off_loop))
    assert len(turn_threads) == 1
    assert (turn_threads[0] == loop_thread) is on_loop


def test_a_negative_setting_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="POWERDESK_TURN_CONCURRENCY"):
        anyio.run(lambda: _turn_threads(make_settings(turn_concurrency=-1), "local", off_loop=False))
