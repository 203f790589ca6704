"""While a person holds a conversation, `Agent.handle` runs no turn and says so (`held_by_staff`),
deciding on the state it loads under the lock; the channel then records the message. And the
channel registry (`tools.channels`) decides which channels exist and which checks each allows."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select, update

from agent.agent import Agent, AgentInputError, ConversationNotFound
from agent.models import TurnRecord
from tests.agent.world import World
from tools import channels as channels_registry
from tools.channels import ChannelSpec, channel_spec, register_channel
from tools.models import HandoffRequest, HandoffStatus, VerificationMethod


def _turns(world: World) -> int:
    with world.sessions() as session:
        return session.scalar(select(func.count()).select_from(TurnRecord)) or 0


def test_a_held_conversation_gets_no_bot_turn_until_handed_back(world: World,
                                                                 make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    first = agent.handle("hold-1", "web", "我家停电了，什么时候来电")  # handed off: a waiting request
    assert first.handoff and not first.held_by_staff
    assert not agent.held_by_staff("hold-1")  # waiting is not held: the bot still answers
    assert not agent.handle("hold-1", "web", "电费怎么交").held_by_staff
    with world.sessions.begin() as session:  # staff accepted it (channels.assist takeover)
        session.execute(update(HandoffRequest).where(HandoffRequest.conversation_id == "hold-1")
                        .values(status=HandoffStatus.ACCEPTED))
    before = _turns(world)
    held = agent.handle("hold-1", "web", "电费怎么交", message_id="h1")
    assert held.held_by_staff and held.text == "" and _turns(world) == before
    assert agent.store.stored_reply("hold-1", "h1") is None  # the resend after hand-back gets a real turn
    agent.record_held_turn("hold-1", "电费怎么交", channel="web")
    assert _turns(world) == before + 1 and agent.state("hold-1").history[-1]["text"] == "电费怎么交"
    with pytest.raises(ConversationNotFound):  # another channel cannot hold or record it either
        agent.handle("hold-1", "wechat", "电费怎么交")
    with pytest.raises(ConversationNotFound):
        agent.record_held_turn("hold-1", "x", channel="ivr")
    with world.sessions.begin() as session:
        session.execute(update(HandoffRequest).where(HandoffRequest.conversation_id == "hold-1")
                        .values(status=HandoffStatus.CLOSED))
    assert not agent.handle("hold-1", "web", "电费怎么交", message_id="h1").held_by_staff


def test_channels_come_from_the_registry(make_agent: Callable[..., Agent], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channels_registry, "_registry", dict(channels_registry._registry))  # undone after
    agent = make_agent()
    with pytest.raises(AgentInputError, match="^channel: 'kiosk' is not one of"):
        agent.handle("reg-1", "kiosk", "你好")
    spec = register_channel(ChannelSpec("kiosk", "营业厅自助终端", reported=False))
    assert register_channel(ChannelSpec("kiosk", "营业厅自助终端", reported=False)) == spec  # idempotent
    with pytest.raises(ValueError, match="^name: channel 'kiosk' is already registered differently"):
        register_channel(ChannelSpec("kiosk", "别的", reported=False))
    assert agent.handle("reg-1", "kiosk", "电费怎么交").text
    assert not channel_spec("kiosk").allows(VerificationMethod.WECHAT_OPENID)
    assert channel_spec("wechat").identity_key == "openid" and channel_spec("ivr").allows("hotline")
    with pytest.raises(ValueError, match="^identity_key"):
        ChannelSpec("bad", "坏", verification=(VerificationMethod.HOTLINE, VerificationMethod.ACCOUNT_SECRET))
