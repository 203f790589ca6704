"""What one turn carries through the dialogue engine: the input, the state, and what was done.

Both brains read and fill the same `Turn`, so the guard, the records and the `Reply` the channel
receives do not care which brain answered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from agent.models import Outcome
from agent.replies import Rendered
from agent.state import ConversationState
from agent.toolbox import ToolBox


@dataclass
class Parsed:
    """The understanding of a message, in the engine's terms (from `agent.nlu.understand`)."""

    intents: list[str]
    entities: dict[str, Any] = field(default_factory=dict)
    confidence: float = 1.0
    candidates: list[tuple[str, float]] = field(default_factory=list)  # likeliest intents, best first
    out_of_scope_sure: bool = True  # an out-of-scope intent is handed off only when sure
    clause_of: dict[str, str] = field(default_factory=dict)  # intent -> the clause that asked for it
    unsure: set[str] = field(default_factory=set)  # reported intents no clause is sure of


@dataclass
class Turn:
    state: ConversationState
    text: str
    today: date
    toolbox: ToolBox
    parsed: Parsed = field(default_factory=lambda: Parsed(intents=[]))
    understood: bool = False  # `parsed` holds this message's understanding
    brain: str = "local"
    parts: list[Rendered] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)
    passages: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    tickets: list[str] = field(default_factory=list)
    handoff: bool = False
    csat: int | str | None = None  # the rating given in this turn, if any
    llm_turn: Any = None  # the LLM brain's turn, kept for a regeneration
    reply_text: str | None = None  # free text (LLM brain) instead of rendered parts
    awaiting: str | None = None
    choices: list[str] = field(default_factory=list)  # quick replies offered (web buttons, numbered text)
    grounded: bool = True
    violations: list[str] = field(default_factory=list)
    fell_back: bool = False
    # Set by a streaming caller: each guarded sentence of an LLM reply is passed here as it is ready.
    emit: Callable[[str], None] | None = None
    # Writes of this turn's other records (the 负面体验 record), run in the turn record's transaction.
    record_steps: list[Callable[[Any], None]] = field(default_factory=list)

    def say(self, rendered: Rendered) -> None:
        self.parts.append(rendered)

    @property
    def text_out(self) -> str:
        if self.reply_text is not None:
            return self.reply_text
        return "".join(p.text for p in self.parts)

    @property
    def awaiting_out(self) -> str | None:
        if self.awaiting is not None:
            return self.awaiting
        return self.parts[-1].awaiting if self.parts else None
