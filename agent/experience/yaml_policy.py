"""Reading a customer-experience data file (remedies, indicators) into its pydantic model.

A file that cannot be read, is not a mapping or fails validation is refused with the file's name
and the first wrong field, as the error type the caller names.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def load_validated(path: Path, model: type[Model], error: type[Exception]) -> Model:
    """`model` validated from the YAML mapping at `path`; `error` names the file and the field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"{path.name}: cannot read ({exc})") from exc
    if not isinstance(raw, dict):
        raise error(f"{path.name}: must be a mapping")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise error(f"{path.name}: {where + ': ' if where else ''}{message}") from exc
