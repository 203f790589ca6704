"""Send a scenario's messages through the channels' HTTP app (FastAPI TestClient), as a customer's
browser or the hotline's IVR would, while keeping the agent's full `Reply` for the judge.

The app gets the real Agent wrapped in a recorder: what the channel returned over HTTP must be
what the agent said (web), or a spoken rendering of it (IVR); the judge reads the agent's reply
(outcome, actions, citations) which the wire format does not all carry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

HTTP_CHANNELS = ("web", "ivr")  # WeChat needs a signed XML callback: run in-process with the openid


class ChannelMismatch(AssertionError):
    """The HTTP answer does not carry what the agent replied."""


@dataclass
class RecordingAgent:
    agent: Any
    replies: list[Any] = field(default_factory=list)

    def handle(self, conversation_id: str, channel: str, text: str, message_id: str | None = None,
               **kwargs: Any) -> Any:
        reply = self.agent.handle(conversation_id, channel, text, message_id, **kwargs)
        self.replies.append(reply)
        return reply

    def __getattr__(self, name: str) -> Any:  # state(), end(), rate() … of the real agent
        return getattr(self.agent, name)


class HttpChannelClient:
    """One conversation over the HTTP app: `handle` has the Agent's signature, so the runner's loop
    does not care whether it talks to the Agent directly or through a channel."""

    def __init__(self, agent: Any, channel: str, conversation_id: str,
                 identity: dict[str, str] | None) -> None:
        from fastapi.testclient import TestClient

        from channels.app import create_app
        from channels.settings import ChannelSettings

        if channel not in HTTP_CHANNELS:
            raise ValueError(f"channel: {channel!r} is not served over HTTP here")
        self.recorder = RecordingAgent(agent)
        self.client = TestClient(create_app(ChannelSettings.from_env(), agent=self.recorder))
        self.channel = channel
        digest = hashlib.sha1(conversation_id.encode()).hexdigest()[:24]
        self.wire_id = f"eval-{digest}"  # the web route accepts [A-Za-z0-9_-]{8,64}
        self.identity = identity or {}

    @property
    def agent_conversation_id(self) -> str:
        return self.wire_id if self.channel == "web" else f"ivr-{self.wire_id}"

    def handle(self, _conversation_id: str, channel: str, text: str, message_id: str | None = None,
               identity: dict[str, str] | None = None) -> Any:
        before = len(self.recorder.replies)
        if channel == "web":
            response = self.client.post(f"/api/chat/conversations/{self.wire_id}/messages",
                                        params={"stream": "false"},
                                        json={"text": text, "message_id": message_id})
        else:
            response = self.client.post("/ivr/turn", json={
                "call_id": self.wire_id, "transcript": text, "confidence": 0.95,
                "caller_number": self.identity.get("caller")})
        if response.status_code != 200:
            raise ChannelMismatch(f"{channel} HTTP {response.status_code}: {response.text[:300]}")
        body = response.json()
        if len(self.recorder.replies) == before:
            raise ChannelMismatch(f"{channel}: the channel answered without asking the agent: {body}")
        reply = self.recorder.replies[-1]
        if channel == "web" and body.get("text") != reply.text:
            raise ChannelMismatch(f"web: HTTP text {body.get('text')!r} is not the agent's {reply.text!r}")
        if channel == "ivr" and not body.get("speech"):
            raise ChannelMismatch(f"ivr: nothing to speak for the agent's {reply.text!r}")
        return reply

    def state(self, _conversation_id: str) -> Any:
        return self.recorder.agent.state(self.agent_conversation_id)

    def end(self, _conversation_id: str) -> None:
        self.recorder.agent.end(self.agent_conversation_id)
