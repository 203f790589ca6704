"""LangChain adapters: a `BaseRetriever` and the `search_knowledge_base` tool the agent calls.

The tool returns passages together with their citations so the agent can quote the source
document; it never returns amounts for a customer's own bill (those come from the billing core).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Optional

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ConfigDict, Field

from knowledge_base.retriever import DEFAULT_K, MAX_K, EmptyQueryError, Hit, KnowledgeRetriever


def hit_to_document(hit: Hit) -> Document:
    return Document(
        page_content=f"{hit.title}\n{hit.section}\n{hit.text}",
        metadata={
            "article_id": hit.article_id, "title": hit.title, "section": hit.section,
            "source": hit.citation.source, "effective_date": hit.citation.effective_date,
            "chunk_id": hit.chunk_id, "score": hit.score, "rank": hit.rank,
            "applies_to": list(hit.applies_to), "citation": str(hit.citation),
        },
    )


class KnowledgeBaseRetriever(BaseRetriever):
    """LangChain view of `KnowledgeRetriever`; `retriever=None` uses the process-wide default."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Optional[KnowledgeRetriever] = None
    k: int = DEFAULT_K
    category: Optional[str] = None

    def _resolve(self) -> KnowledgeRetriever:
        if self.retriever is None:
            from knowledge_base.service import default_retriever

            self.retriever = default_retriever()
        return self.retriever

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun
                                ) -> list[Document]:
        result = self._resolve().search(query, k=self.k, category=self.category)
        return [hit_to_document(h) for h in result.hits]


class SearchKnowledgeBaseInput(BaseModel):
    query: str = Field(description="客户的问题（原话即可，支持口语、繁体、错别字）")
    category: Optional[str] = Field(
        default=None,
        description="客户类别，用于只返回适用的政策：residential | ci_single | ci_two_part | agricultural",
    )
    k: int = Field(default=DEFAULT_K, ge=1, le=MAX_K, description="返回的段落数")


def make_search_tool(get_retriever: Callable[[], KnowledgeRetriever] | None = None) -> StructuredTool:
    """Build the tool around a retriever (tests pass their own; the agent uses the default)."""

    def _get() -> KnowledgeRetriever:
        if get_retriever is not None:
            return get_retriever()
        from knowledge_base.service import default_retriever

        return default_retriever()

    def search_knowledge_base(query: str, category: Optional[str] = None, k: int = DEFAULT_K) -> str:
        try:
            result = _get().search(query, k=k, category=category)
        except (EmptyQueryError, ValueError) as exc:
            return json.dumps({"error": str(exc)}, ensure_ascii=False)
        payload: dict[str, Any] = {
            "query": result.normalized_query,
            "truncated": result.truncated,
            "results": [
                {"article_id": h.article_id, "title": h.title, "section": h.section, "text": h.text,
                 "source": h.citation.source, "effective_date": h.citation.effective_date,
                 "citation": str(h.citation)}
                for h in result.hits
            ],
        }
        return json.dumps(payload, ensure_ascii=False)

    return StructuredTool.from_function(
        func=search_knowledge_base,
        name="search_knowledge_base",
        description=(
            "检索供电营业厅知识库（电价政策、账单解读、缴费渠道、违约金与催费、抄表、电费异议、投诉、"
            "隐私、户务变更、服务渠道）。返回相关段落及出处（文章编号、标题、章节、来源文件）。"
            "回答政策类问题前调用；不能用于查询客户本人的账单金额。"
        ),
        args_schema=SearchKnowledgeBaseInput,
    )


search_knowledge_base = make_search_tool()
