"""Send a scenario's messages through the channels' HTTP app (FastAPI TestClient), as a customer's
browser or the hotline's IVR would, while keeping the agent's full `Reply` for the judge.

The app gets the real Agent wrapped in a recorder: what the channel returned over HTTP must be
what the agent said (web, WeChat's passive XML reply), or a spoken rendering of it (IVR); the
judge reads the agent's reply (outcome, actions, citations) which the wire format does not all
carry. WeChat messages are signed XML callbacks (plain mode) from the scenario's openid.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

HTTP_CHANNELS = ("web", "ivr", "wechat")
WECHAT_TOKEN = "powerdesk-eval"  # the callback's signing token in the eval's own app settings


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
        from dataclasses import replace

        from fastapi.testclient import TestClient

        from channels.app import create_app
        from channels.settings import ChannelSettings

        if channel not in HTTP_CHANNELS:
            raise ValueError(f"channel: {channel!r} is not served over HTTP here")
        self.recorder = RecordingAgent(agent)
        # Plain-mode WeChat with a known token; a generous reply deadline, because a reply that
        # misses it would go out through WeChat's customer-service API, which is not reachable here.
        settings = replace(ChannelSettings.from_env(), wechat_token=WECHAT_TOKEN, wechat_aes_key=None,
                           wechat_reply_deadline_seconds=60.0)
        self.settings = settings
        self.client = TestClient(create_app(settings, agent=self.recorder))
        self.channel = channel
        digest = hashlib.sha1(conversation_id.encode()).hexdigest()[:24]
        self.wire_id = f"eval-{digest}"  # the hotline's call id
        if channel == "web":
            # The server names a web conversation; its token comes back as a cookie the client keeps.
            created = self.client.post("/api/chat/conversations")
            if created.status_code != 201:
                raise ChannelMismatch(f"web HTTP {created.status_code}: {created.text[:300]}")
            self.wire_id = created.json()["conversation_id"]
        self.identity = identity or {}
        self.openid = self.identity.get("openid") or f"oEVAL-{digest}"
        self._sent = 0

    @property
    def agent_conversation_id(self) -> str:
        if self.channel == "wechat":
            return f"wechat-{self.openid}"
        return self.wire_id if self.channel == "web" else f"ivr-{self.wire_id}"

    def _ivr(self, text: str) -> Any:
        """POST a hotline turn signed as the telephony platform signs it (channels.ivr_auth)."""
        import json

        from channels.ivr_auth import signed_headers

        body = json.dumps({"call_id": self.wire_id, "transcript": text, "confidence": 0.95,
                           "caller_number": self.identity.get("caller")}, ensure_ascii=False).encode()
        return self.client.post("/ivr/turn", content=body,
                                headers=signed_headers(self.settings.ivr_secrets[0], body))

    def _wechat(self, text: str) -> str:
        """POST a signed text message from the openid; the text of the passive reply."""
        import defusedxml.ElementTree as SafeET
        from wechatpy.utils import WeChatSigner

        self._sent += 1
        timestamp, nonce = str(int(time.time())), f"n{self._sent}-{self.wire_id}"
        signer = WeChatSigner()
        signer.add_data(WECHAT_TOKEN, timestamp, nonce)
        body = (f"<xml><ToUserName><![CDATA[gh_powerdesk]]></ToUserName>"
                f"<FromUserName><![CDATA[{self.openid}]]></FromUserName><CreateTime>{timestamp}</CreateTime>"
                f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content>"
                f"<MsgId>{int(self.wire_id[5:17], 16)}{self._sent:04d}</MsgId></xml>")
        response = self.client.post("/wechat", params={"signature": signer.signature, "timestamp": timestamp,
                                                       "nonce": nonce, "openid": self.openid},
                                    content=body.encode("utf-8"), headers={"Content-Type": "text/xml"})
        if response.status_code != 200:
            raise ChannelMismatch(f"wechat HTTP {response.status_code}: {response.text[:300]}")
        if response.text == "success":
            raise ChannelMismatch("wechat: no passive reply (the turn missed the deadline or was dropped)")
        content = SafeET.fromstring(response.content).findtext("Content")
        return content or ""

    def handle(self, _conversation_id: str, channel: str, text: str, message_id: str | None = None,
               identity: dict[str, str] | None = None) -> Any:
        before = len(self.recorder.replies)
        if channel == "wechat":
            wire_text = self._wechat(text)
            if len(self.recorder.replies) == before:
                raise ChannelMismatch(f"wechat: the channel answered without asking the agent: {wire_text!r}")
            reply = self.recorder.replies[-1]
            if wire_text != reply.text:
                raise ChannelMismatch(f"wechat: reply {wire_text!r} is not the agent's {reply.text!r}")
            return reply
        if channel == "web":
            response = self.client.post(f"/api/chat/conversations/{self.wire_id}/messages",
                                        params={"stream": "false"},
                                        json={"text": text, "message_id": message_id})
        else:
            response = self._ivr(text)
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
