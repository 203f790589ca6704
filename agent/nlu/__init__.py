"""Natural-language understanding of the local brain: intents, entities, normalised text.

    from agent.nlu import understand
    result = understand("你好，查下上个月电费，顺便问下怎么交", today=date(2026, 6, 3))
    result.intent_names            # ['greeting', 'lookup_bill', 'how_to_pay']
    result.first(BillingMonth)     # BillingMonth(text='上个月', year=2026, month=5, ...)

Intents and their examples are data in `agent/nlu/data/`; the classifier trains from them at
first use (seconds) and is cached. Nothing is downloaded: the embedding model is an installed
package (`knowledge_base.embeddings`).
"""

from agent.nlu.classifier import ClassifierSettings, IntentClassifier, IntentScore, get_classifier
from agent.nlu.entities import (
    AccountNumber,
    Amount,
    BillingMonth,
    DigitSequence,
    DigitTail,
    Energy,
    Entity,
    IdCardNumber,
    PhoneNumber,
    RecentBills,
    SatisfactionLevel,
    SatisfactionRating,
    extract_entities,
)
from agent.nlu.intent_data import UNCLEAR, IntentCategory, IntentSpec
from agent.nlu.normalize import normalize_text
from agent.nlu.understanding import ClauseIntent, Understanding, intent_catalogue, understand

__all__ = [
    "UNCLEAR",
    "AccountNumber",
    "Amount",
    "BillingMonth",
    "ClassifierSettings",
    "ClauseIntent",
    "DigitSequence",
    "DigitTail",
    "Energy",
    "Entity",
    "IdCardNumber",
    "IntentCategory",
    "IntentClassifier",
    "IntentScore",
    "IntentSpec",
    "PhoneNumber",
    "RecentBills",
    "SatisfactionLevel",
    "SatisfactionRating",
    "Understanding",
    "extract_entities",
    "get_classifier",
    "intent_catalogue",
    "normalize_text",
    "understand",
]
