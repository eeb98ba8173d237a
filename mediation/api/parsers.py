"""JSON request bodies that PostgreSQL can store, or a 400: never a 500 from the parser."""

from __future__ import annotations

import math
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _has_unencodable_text(data: Any) -> bool:
    """Lone surrogates (valid JSON escapes such as "\\ud800") cannot be encoded as UTF-8;
    numbers beyond a double (1e400 reads as infinity) are no numbers either."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, also refusing deep nesting and text that is not valid Unicode."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nesting too deep") from None
        if _has_unencodable_text(data):
            raise ParseError("JSON parse error - invalid Unicode text or number out of range")
        return data
