"""Page-number pagination with a capped page size on every list."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination


def _positive(text: str) -> bool:
    return text.isascii() and text.isdigit() and 0 < len(text) <= 9 and int(text) > 0


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        # A page that is not a positive integer is bad input (400); a page past the end is
        # a missing resource (404, DRF's behaviour).
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and raw not in self.last_page_strings and not _positive(raw):
            raise serializers.ValidationError({self.page_query_param: [_("页码须为正整数。")]})
        raw_size = request.query_params.get(self.page_size_query_param)
        if raw_size is not None and not _positive(raw_size):
            raise serializers.ValidationError(
                {self.page_size_query_param: [_("每页条数须为正整数。")]}
            )
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        out = super().get_paginated_response_schema(schema)
        out["required"] = ["count", "results"]
        return out

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        params = super().get_schema_operation_parameters(view)
        for param in params:
            param["schema"] = {"type": "integer", "minimum": 1, "maximum": 999_999_999}
            if param["name"] == self.page_size_query_param:
                param["description"] = (
                    f"每页条数（超过 {self.max_page_size} 按 {self.max_page_size} 计）"
                )
        return params
