"""Load knowledge articles (Markdown + YAML front matter) into typed `Article` objects.

Articles are data: adding one is adding a file. A broken file must never stop ingestion of the
others, so loading collects one `ArticleError` per bad file (naming the file and the field) and
carries on.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ARTICLE_CATEGORIES = (
    "tariff", "bill", "payment", "due", "meter", "dispute",
    "complaint", "privacy", "account", "channel", "scope",
)
CUSTOMER_CATEGORIES = ("residential", "ci_single", "ci_two_part", "agricultural")
REQUIRED_KEYS = ("id", "title", "category", "applies_to", "effective_date", "source", "keywords")

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.S)
_ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def default_articles_dir() -> Path:
    """Articles ship inside the package; POWERDESK_KB_ARTICLES_DIR points elsewhere (tests, a utility)."""
    override = os.environ.get("POWERDESK_KB_ARTICLES_DIR")
    return Path(override) if override else Path(__file__).resolve().parent / "articles"


class ArticleError(ValueError):
    """A file that is not a valid article; the message names the file and the offending field."""

    def __init__(self, path: Path, message: str, field_name: str | None = None) -> None:
        self.path = Path(path)
        self.field_name = field_name
        where = f"{self.path}" + (f" [{field_name}]" if field_name else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    category: str
    applies_to: tuple[str, ...]  # expanded: [all] becomes every customer category
    effective_date: dt.date
    source: str
    keywords: tuple[str, ...]
    body: str
    path: Path = field(compare=False)

    def applies(self, customer_category: str | None) -> bool:
        return customer_category is None or customer_category in self.applies_to


@dataclass
class LoadResult:
    articles: list[Article]
    errors: list[ArticleError]


def _as_str_list(value: object, path: Path, key: str) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in re.split(r"[,，、]", value) if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise ArticleError(path, "must be a list of strings", key)
    return [str(v).strip() for v in value if str(v).strip()]


def parse_article(path: Path) -> Article:
    """Parse one article file; raise ArticleError naming the file and field on any problem."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArticleError(path, f"cannot read file as UTF-8: {exc}") from exc
    match = _FRONT_MATTER.match(raw)
    if not match:
        raise ArticleError(path, "missing YAML front matter between '---' lines", "front_matter")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise ArticleError(path, f"front matter is not valid YAML: {exc}", "front_matter") from exc
    if not isinstance(meta, dict):
        raise ArticleError(path, "front matter must be a mapping of keys", "front_matter")
    for key in REQUIRED_KEYS:
        if key not in meta or meta[key] in (None, "", []):
            raise ArticleError(path, "required key is missing or empty", key)

    article_id = str(meta["id"]).strip()
    if not _ID_PATTERN.match(article_id):
        raise ArticleError(path, f"id {article_id!r} must be lowercase words joined by '-'", "id")
    if article_id != path.stem:
        raise ArticleError(path, f"id {article_id!r} must equal the file name {path.stem!r}", "id")
    category = str(meta["category"]).strip()
    if category not in ARTICLE_CATEGORIES:
        raise ArticleError(path, f"unknown category {category!r}; one of {', '.join(ARTICLE_CATEGORIES)}",
                           "category")

    applies = _as_str_list(meta["applies_to"], path, "applies_to")
    if "all" in applies:
        applies = list(CUSTOMER_CATEGORIES)
    unknown = [a for a in applies if a not in CUSTOMER_CATEGORIES]
    if unknown or not applies:
        raise ArticleError(
            path, f"unknown customer category {unknown}; use {list(CUSTOMER_CATEGORIES)} or [all]", "applies_to")

    effective = meta["effective_date"]
    if isinstance(effective, dt.datetime):
        effective = effective.date()
    elif not isinstance(effective, dt.date):
        try:
            effective = dt.date.fromisoformat(str(effective).strip())
        except ValueError as exc:
            raise ArticleError(path, f"{effective!r} is not a YYYY-MM-DD date", "effective_date") from exc

    body = match.group(2).strip()
    if not body:
        raise ArticleError(path, "article body is empty", "body")
    return Article(
        id=article_id,
        title=str(meta["title"]).strip(),
        category=category,
        applies_to=tuple(a for a in CUSTOMER_CATEGORIES if a in applies),
        effective_date=effective,
        source=str(meta["source"]).strip(),
        keywords=tuple(_as_str_list(meta["keywords"], path, "keywords")),
        body=body,
        path=path,
    )


def load_articles(directory: Path | None = None) -> LoadResult:
    """Load every `*.md` under `directory` (recursively, sorted); bad files become errors, not exceptions."""
    directory = Path(directory) if directory else default_articles_dir()
    articles: list[Article] = []
    errors: list[ArticleError] = []
    seen: dict[str, Path] = {}
    if not directory.is_dir():
        return LoadResult(articles, errors)
    for path in sorted(directory.rglob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        try:
            article = parse_article(path)
        except ArticleError as exc:
            errors.append(exc)
            continue
        if article.id in seen:
            errors.append(ArticleError(path, f"duplicate id, already used by {seen[article.id]}", "id"))
            continue
        seen[article.id] = path
        articles.append(article)
    return LoadResult(articles, errors)
