"""The web chat with the LLM brain, over the real `ChatOpenAI` client and a loopback server
replaying recorded streams: sentences leave one by one in a live stream, a figure invented
mid-stream never reaches the page (a `retract`, then the safe reply), local turns keep the
single SSE body."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from agent.agent import Agent
from agent.llm_brain import LLMBrain, LLMSettings, make_chat_model
from agent.state import InMemoryStateStore
from channels.app import create_app
from tests.agent.llm_fakes import Recorded, completion, replay_server
from tests.channels.conftest import make_settings, new_web_conversation, sse_events as _events


def _post(recorded: list[Recorded], text: str) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    with replay_server(recorded) as server:
        settings = LLMSettings(base_url=server.url, model="deepseek-chat", api_key="k", timeout=5.0)
        agent = Agent(brain="llm", llm=LLMBrain(make_chat_model(settings)), store=InMemoryStateStore())
        with TestClient(create_app(make_settings(), agent)) as client:
            cid = new_web_conversation(client)
            response = client.post(f"/api/chat/conversations/{cid}/messages", json={"text": text})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return response, _events(response.text)


def test_llm_reply_streams_live_sentence_by_sentence(seeded_database: str) -> None:
    response, events = _post([Recorded(completion("您好！我是电费客服。请问有什么可以帮您？"))], "你好")
    assert "content-length" not in response.headers  # a StreamingResponse, not one prepared body
    assert [kind for kind, _ in events] == ["delta", "delta", "delta", "reply"]
    assert [data["text"] for kind, data in events[:-1]] == ["您好！", "我是电费客服。", "请问有什么可以帮您？"]
    assert events[-1][1]["text"] == "您好！我是电费客服。请问有什么可以帮您？"


def test_figure_invented_mid_stream_is_retracted_before_it_is_sent(seeded_database: str) -> None:
    recorded = [Recorded(completion("您好。您这个月的电费是358.20元，比上月高。")),
                Recorded(completion("您这个月电费大约300元。"))]
    response, events = _post(recorded, "这个月电费多少")
    assert "358" not in response.text and "300" not in response.text  # never on the wire
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["delta", "retract"] and kinds[-1] == "reply"
    assert events[0][1]["text"] == "您好。" and events[1][1]["reason"] == "ungrounded"
    reply = events[-1][1]
    after = "".join(data["text"] for kind, data in events[2:] if kind == "delta")
    assert after == reply["text"] and "抱歉" in reply["text"]  # what the page shows after the retract


def test_local_brain_turns_keep_the_single_body(client: TestClient) -> None:
    cid = new_web_conversation(client)
    response = client.post(f"/api/chat/conversations/{cid}/messages", json={"text": "电费怎么交"})
    assert response.status_code == 200 and response.headers["content-length"]
