"""Sentence-by-sentence replies: the splitter the LLM brain's stream goes through, and the events
`Agent.stream` (and `Agent.handle(on_event=…)`) hands to a channel.

A streamed LLM reply is cut into sentences as the model writes it; each sentence passes the
grounding guard before it leaves (`agent.graph`). A sentence with an unbacked figure is held: the
model stops, the reply is regenerated or replaced by the safe template exactly as for a whole
reply, and — if earlier sentences already went out — a `Retract` event comes first, so the channel
wipes what it showed and then shows the final reply. The last event is always `Final`, carrying
the `Reply` exactly as `Agent.handle` returns it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# Where a Chinese (or English) sentence ends. A full stop inside a number (12.34) is not one.
SENTENCE_ENDS = frozenset("。！？；!?;\n…")
# What may follow the end and still belongs to the sentence: closing quotes and brackets.
CLOSERS = frozenset("」』”’\"'）)】》")


@dataclass(frozen=True)
class Sentence:
    """One guarded sentence of the reply, ready to show."""

    text: str


@dataclass(frozen=True)
class Retract:
    """Everything shown of this reply so far is withdrawn; the final reply replaces it."""

    # "ungrounded": a held sentence, the safe template follows; "replaced": a held sentence, a
    # grounded regeneration follows; "fallback": the endpoint failed mid-stream, the local brain answered.
    reason: str


@dataclass(frozen=True)
class Final:
    """The turn is done: the `Reply` as `Agent.handle` returns it."""

    reply: Any  # agent.agent.Reply (not imported: agent.agent imports this module)


StreamEvent = Sentence | Retract | Final


class SentenceSplitter:
    """Incremental: `feed` model deltas, get back the sentences they complete; `flush` the rest.

    A sentence ends at 。！？；!?; a newline or …, together with any end marks and closing quotes
    right after it (「好的！」 stays whole, 「？！」 is one end); an ASCII full stop ends a
    sentence only when followed by a space or newline, so 12.34 and 3.5 度 are never cut. An end
    at the very tail of the buffer waits for the next delta, which may still add a closer.
    """

    def __init__(self) -> None:
        self.buffer = ""

    def feed(self, delta: str) -> list[str]:
        self.buffer += delta
        out: list[str] = []
        while (cut := self._cut()) is not None:
            out.append(self.buffer[:cut])
            self.buffer = self.buffer[cut:]
        return out

    def flush(self) -> str:
        rest, self.buffer = self.buffer, ""
        return rest

    def _cut(self) -> int | None:
        text = self.buffer
        for i, char in enumerate(text):
            if char in SENTENCE_ENDS:
                pass
            elif char == ".":
                if i + 1 >= len(text):
                    return None  # 12. → wait: the next delta says whether it is 12.34
                if text[i + 1] not in " \n":
                    continue
            else:
                continue
            j = i + 1
            while j < len(text) and (text[j] in SENTENCE_ENDS or text[j] in CLOSERS):
                j += 1
            if j >= len(text):
                return None  # an end at the tail: a closing quote may still come
            if text[:j].strip():
                return j
        return None


def split_sentences(text: str) -> list[str]:
    """A whole text cut the way a stream of it would be (the pieces join back to `text`)."""
    splitter = SentenceSplitter()
    pieces = splitter.feed(text)
    rest = splitter.flush()
    return [*pieces, rest] if rest else pieces


def iter_sentences(deltas: Iterator[str]) -> Iterator[str]:
    """Sentences from a stream of deltas, the unfinished tail last."""
    splitter = SentenceSplitter()
    for delta in deltas:
        yield from splitter.feed(delta)
    rest = splitter.flush()
    if rest:
        yield rest


class Relay:
    """Passes a turn's guarded sentences to a channel and closes with the reply it ends with.

    If what went out is not the final reply (a sentence was held, the endpoint failed mid-stream
    and the local brain answered, or the turn failed), a `Retract` goes before the `Final`.
    """

    def __init__(self, on_event: Callable[[StreamEvent], None]) -> None:
        self.on_event = on_event
        self.sent: list[str] = []

    def sentence(self, text: str) -> None:
        self.sent.append(text)
        self.on_event(Sentence(text))

    def finish(self, reply: Any) -> None:
        shown = "".join(self.sent)
        if shown and shown != reply.text:
            reason = "fallback" if reply.brain == "local" else "ungrounded" if not reply.grounded else "replaced"
            self.on_event(Retract(reason))
        self.on_event(Final(reply))
