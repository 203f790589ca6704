"""Retrieval eval: labelled customer queries against the knowledge base (hit@k, MRR, latency)."""
