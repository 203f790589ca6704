"""The channels a conversation can come from, and what each may prove about a customer.

This is the lowest layer that needs to know: the agent refuses an unknown channel, and the
identity checks (`verify_identity`, `bind_wechat`) must know which proofs a channel's envelope
can carry — a WeChat openid, a hotline caller number — so it lives here, not in `channels`.
The web service's channel modules add their own spec with `register_channel` when they are
imported (`channels.adapters`); the channels the tools themselves rely on (and the internal
ones: CLI, Rasa, evals) are declared below, so the tools, the Rasa action server and the agent
work without the web service.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from tools.models import VerificationMethod


class UnknownChannel(ValueError):
    """A channel name no module registered; the message names the field."""


@dataclass(frozen=True)
class ChannelSpec:
    """A channel as the agent and the tools see it.

    `identity_key`: the key of `Agent.handle(identity=…)` under which the channel vouches for the
    customer (its envelope, never the user's words), or None. `verification`: the methods a
    conversation of this channel may use, in the order the agent tries them — a method other than
    `account_secret` also needs the envelope's identity. `reported`: shown per channel in the KPI
    report (customer-facing channels, not the CLI or evals).
    """

    name: str
    label: str
    identity_key: str | None = None
    verification: tuple[VerificationMethod, ...] = (VerificationMethod.ACCOUNT_SECRET,)
    reported: bool = True

    def __post_init__(self) -> None:
        if not self.name.isascii() or not self.name.isidentifier() or not self.name.islower():
            raise ValueError(f"name: a channel name is lower-case ASCII letters, digits and _, not {self.name!r}")
        if VerificationMethod.ACCOUNT_SECRET not in self.verification:
            raise ValueError(f"verification: every channel allows account_secret ({self.name})")
        if self.identity_key is None and len(self.verification) > 1:
            raise ValueError(f"identity_key: {self.name} allows envelope checks but names no identity")

    def allows(self, method: VerificationMethod | str) -> bool:
        return VerificationMethod(method) in self.verification


_BUILT_IN = (
    ChannelSpec("web", "网页"),
    ChannelSpec("wechat", "微信服务号", identity_key="openid",
                verification=(VerificationMethod.WECHAT_OPENID, VerificationMethod.ACCOUNT_SECRET)),
    ChannelSpec("ivr", "热线", identity_key="caller",
                verification=(VerificationMethod.HOTLINE, VerificationMethod.ACCOUNT_SECRET)),
    ChannelSpec("app", "掌上营业厅", reported=False),
    ChannelSpec("cli", "命令行", reported=False),
    ChannelSpec("rasa", "Rasa", reported=False),
    ChannelSpec("eval", "评测", reported=False),
)
_registry: dict[str, ChannelSpec] = {spec.name: spec for spec in _BUILT_IN}
_guard = threading.Lock()


def register_channel(spec: ChannelSpec) -> ChannelSpec:
    """Add a channel (idempotent for the same spec; a different spec under a taken name is refused)."""
    with _guard:
        known = _registry.get(spec.name)
        if known is not None and known != spec:
            raise ValueError(f"name: channel {spec.name!r} is already registered differently")
        _registry[spec.name] = spec
    return spec


def channel_spec(name: str) -> ChannelSpec:
    spec = _registry.get(name) if isinstance(name, str) else None
    if spec is None:
        raise UnknownChannel(f"channel: {name!r} is not one of {', '.join(_registry)}")
    return spec


def channel_names() -> tuple[str, ...]:
    return tuple(_registry)


def reported_channels() -> tuple[ChannelSpec, ...]:
    """Customer-facing channels, in registration order (the KPI report's columns)."""
    return tuple(spec for spec in _registry.values() if spec.reported)
