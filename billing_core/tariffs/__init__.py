"""Tariffs: the versioned price data (`data/`), its library, and the bill engine with one module
per tariff family (residential, commercial & industrial, agricultural).

A new tariff family is one module here plus its YAML in `data/`.
"""
