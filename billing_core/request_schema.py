"""The JSON Schema of a bill request, generated from `BillRequest` so the two never drift.

`python -m billing_core.request_schema` rewrites `billing_core/schemas/bill_request.schema.json`;
a test fails when the committed file is out of date.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from billing_core.bill_types import BillRequest

SCHEMA_PATH = Path(__file__).with_name("schemas") / "bill_request.schema.json"
EXAMPLES_DIR = SCHEMA_PATH.parent / "examples"


def bill_request_schema() -> dict[str, Any]:
    """The request schema (draft 2020-12) with an id and a Chinese title for readers."""
    schema = BillRequest.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://powerdesk.example/schemas/bill_request.schema.json",
        "title": "BillRequest（电费试算请求）",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def render() -> str:
    return json.dumps(bill_request_schema(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")


if __name__ == "__main__":
    main()
