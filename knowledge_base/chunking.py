"""Heading-aware chunks: one chunk per '## section', carrying the article title and section heading.

A customer question usually matches one section (「怎么申请」 vs 「需要什么材料」), so retrieval works on
sections; the title and heading are part of the chunk text because a bare section body often
does not repeat what it is about. Chunk ids are stable (article id + section position) and each
chunk has a content hash so ingestion can re-embed only what changed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from knowledge_base.articles import Article

MAX_SECTION_CHARS = 600  # longer sections are split at paragraph breaks
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    article_id: str
    title: str
    section: str
    text: str
    source: str
    category: str
    applies_to: tuple[str, ...]
    effective_date: str
    keywords: tuple[str, ...]
    path: str

    @property
    def document(self) -> str:
        """What gets embedded and shown: title, section heading, section text."""
        return f"{self.title}\n{self.section}\n{self.text}"

    @property
    def search_text(self) -> str:
        """What the lexical index sees: the document plus the customers' own words (keywords)."""
        return f"{self.document}\n{' '.join(self.keywords)}"

    @property
    def content_hash(self) -> str:
        payload = "\x1f".join([
            self.document, " ".join(self.keywords), self.source, self.category,
            ",".join(self.applies_to), self.effective_date, self.path,
        ])
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _split_sections(body: str, title: str) -> list[tuple[str, str]]:
    """Split a Markdown body into (heading, text) pairs at '##' (and deeper) headings."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line in body.splitlines():
        match = _HEADING.match(line)
        if match and len(match.group(1)) == 1:
            continue  # the '# title' line; the title is carried on every chunk anyway
        if match:
            sections.append((match.group(2).strip(), []))
        else:
            sections[-1][1].append(line)
    result = []
    for heading, lines in sections:
        text = "\n".join(lines).strip()
        if text:
            result.append((heading or title, text))
    return result


def _split_long(text: str, limit: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for paragraph in re.split(r"\n\s*\n", text):
        if current and len(current) + len(paragraph) + 2 > limit:
            parts.append(current)
            current = paragraph
        else:
            current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        parts.append(current)
    return parts


def chunk_article(article: Article, max_chars: int = MAX_SECTION_CHARS) -> list[Chunk]:
    chunks: list[Chunk] = []
    for heading, text in _split_sections(article.body, article.title):
        for part in _split_long(text, max_chars):
            chunks.append(Chunk(
                chunk_id=f"{article.id}#{len(chunks):02d}",
                article_id=article.id,
                title=article.title,
                section=heading,
                text=part,
                source=article.source,
                category=article.category,
                applies_to=article.applies_to,
                effective_date=article.effective_date.isoformat(),
                keywords=article.keywords,
                path=f"{article.path.parent.name}/{article.path.name}",
            ))
    return chunks


def chunk_articles(articles: list[Article]) -> list[Chunk]:
    return [chunk for article in articles for chunk in chunk_article(article)]
