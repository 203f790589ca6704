"""The one shape of a channel in the web service: its spec, its router, and how to reach a customer.

A channel module (`web_chat`, `wechat`, `ivr`, `alipay`) builds one `ChannelAdapter` and is listed
in `channels.registry`; that is all a new channel touches besides its own module. What the agent
and the tools need to know about a channel — its name, which envelope identity it vouches for,
which verification methods it allows — is its `tools.channels.ChannelSpec` (the lowest layer
that uses it); a new channel registers its spec from its own module with `register_channel`.

Everything else is the same for every channel and lives elsewhere: `Agent.handle` refuses another
channel's conversation and answers `held_by_staff` while a person holds it (the channel then
records the message with `Services.record_held`), and the staff console pushes a staff reply
through the adapter's `push`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from tools.channels import ChannelSpec

if TYPE_CHECKING:
    from channels.deps import Services

# (services, the customer's envelope identity, text): deliver a message outside a request/response
# turn — a staff reply, or a reply that missed the channel's passive-reply deadline.
Push = Callable[["Services", str, str], Awaitable[None]]


@dataclass(frozen=True)
class ChannelAdapter:
    spec: ChannelSpec
    router: APIRouter
    push: Push | None = None  # None: the channel cannot reach a customer unasked (web reads the transcript)

    @property
    def name(self) -> str:
        return self.spec.name

    def identity(self, sender: str | None) -> dict[str, str]:
        """`Agent.handle(identity=…)` for what the channel's envelope vouches for (openid, caller …)."""
        key = self.spec.identity_key
        return {key: sender} if key and sender else {}

    def envelope_identity(self, channel_identity: dict[str, Any]) -> str | None:
        """The customer's identity on this channel, from a conversation state's `channel_identity`."""
        key = self.spec.identity_key
        value = channel_identity.get(key) if key else None
        return str(value) if value else None
