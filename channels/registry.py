"""Every channel of the web service, in one place: `create_app` mounts their routers, the staff
console pushes through them, the KPI report has a column per customer-facing channel.

A new channel is its module (an `ADAPTER` with its router and, if the agent must know a new
identity, a `register_channel` call) plus one line here.
"""

from __future__ import annotations

from typing import Any

from channels import alipay, ivr, web_chat, wechat
from channels.adapter import ChannelAdapter
from channels.deps import Services

ADAPTERS: tuple[ChannelAdapter, ...] = (web_chat.ADAPTER, wechat.ADAPTER, ivr.ADAPTER, alipay.ADAPTER)
_BY_NAME = {adapter.name: adapter for adapter in ADAPTERS}


def adapter_for(channel: str) -> ChannelAdapter | None:
    return _BY_NAME.get(channel)


async def push_to_customer(services: Services, state: Any, text: str) -> bool:
    """Send `text` to the customer of a conversation state through its channel, when the channel
    can reach a customer unasked and the state knows who they are; False otherwise."""
    adapter = adapter_for(state.channel) if state is not None else None
    if adapter is None or adapter.push is None:
        return False
    who = adapter.envelope_identity(state.channel_identity)
    if who is None:
        return False
    await adapter.push(services, who, text)
    return True
