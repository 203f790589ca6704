"""`search_knowledge_base`: policy passages with their citations, as a tool like the others.

No verification needed (policy is public). When the conversation has a verified customer and no
category is given, results are filtered to articles that apply to that customer's category, so
a resident does not get the two-part tariff answer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import bindparam, select

from billing_core.db.models import Customer
from knowledge_base.retriever import DEFAULT_K, MAX_K, EmptyQueryError, KnowledgeRetriever
from tools.context import ToolContext
from tools.results import InvalidInput, NotFound, ToolResult

# Built once; a plain-table read on the session's connection (no ORM compile or loading step).
_CATEGORY_OF_ACCOUNT = select(Customer.__table__.c.category).where(
    Customer.__table__.c.account_no == bindparam("account_no"))

CustomerCategoryName = Literal["residential", "ci_single", "ci_two_part", "agricultural"]


class SearchKnowledgeBaseInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=500, description="客户的问题（原话即可，支持口语、繁体、错别字）")
    category: CustomerCategoryName | None = Field(
        default=None, description="客户类别；不填时，已核实客户按其类别过滤")
    k: int = Field(default=DEFAULT_K, ge=1, le=MAX_K, description="返回的段落数")


class Passage(BaseModel):
    rank: int
    article_id: str
    title: str
    section: str
    text: str
    source: str
    effective_date: str
    citation: str


class PassagesFound(ToolResult):
    status: Literal["ok"] = "ok"
    query: str
    category: str | None
    passages: list[Passage]


def _default_retriever() -> KnowledgeRetriever:
    from knowledge_base.service import default_retriever

    return default_retriever()


def search_knowledge_base(ctx: ToolContext, args: SearchKnowledgeBaseInput) -> ToolResult:
    category = args.category
    principal = ctx.verified()
    if category is None and principal is not None:
        with ctx.session_factory() as session:
            found = session.connection().scalar(_CATEGORY_OF_ACCOUNT, {"account_no": principal.account_no})
            category = found.value if found is not None else None
    retriever = (ctx.knowledge or _default_retriever)()
    try:
        result = retriever.search(args.query, k=args.k, category=category)
    except EmptyQueryError as exc:
        return InvalidInput(field="query", message=f"query: {exc}")
    if not result.hits:
        return NotFound(message="知识库里没有找到相关内容，可以换个说法，或转人工客服。")
    passages = [Passage(rank=h.rank, article_id=h.article_id, title=h.title, section=h.section, text=h.text,
                        source=h.citation.source, effective_date=h.citation.effective_date,
                        citation=str(h.citation)) for h in result.hits]
    best = passages[0]
    return PassagesFound(query=args.query, category=category, passages=passages,
                         message=f"{best.text}\n（出处：{best.citation}）")
