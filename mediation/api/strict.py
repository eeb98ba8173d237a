"""JSON request bodies get exactly the JSON types the schema documents: no coercion.

DRF coerces by default: a `CharField` takes `0` as "0", an `IntegerField` takes "12", 1.0 and
true, a `BooleanField` takes "yes" and 1, a primary-key field takes a float (1e400, infinity,
is an OverflowError, a 500). The schema says `string`, `integer`, `boolean`, so a client that
sends another type gets a 400 naming the field, as schemathesis' negative tests expect.

`StrictTypesMixin` goes first in a request serializer's bases; it also refuses keys the
serializer does not know. Query strings (QueryDicts,
where everything is text) and form bodies are left to the fields' own parsing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

_TEXT = (serializers.CharField, serializers.ChoiceField, serializers.DateField)
_TEXT += (serializers.DateTimeField, serializers.TimeField, serializers.DurationField)
_NUMBER = (serializers.IntegerField, serializers.PrimaryKeyRelatedField)
_LIST = (serializers.ListField, serializers.ListSerializer, serializers.MultipleChoiceField)


def type_problem(field: serializers.Field, value: Any) -> Any:
    """Why `value` is not of the JSON type `field` documents, or None."""
    if value is None:
        return None  # the field's own allow_null check answers
    if isinstance(field, serializers.JSONField):
        return None
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else _("须为布尔值 true 或 false。")
    if isinstance(field, _NUMBER):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else _("须为整数。")
    if isinstance(field, _LIST):
        if not isinstance(value, list):
            return _("须为列表。")
        child = getattr(field, "child", None)
        if child is not None:
            for item in value:
                problem = type_problem(child, item)
                if problem:
                    return problem
        return None
    if isinstance(field, _TEXT):
        return None if isinstance(value, str) else _("须为字符串。")
    if isinstance(field, serializers.Serializer):
        return None if isinstance(value, Mapping) else _("须为对象。")
    return None


class StrictTypesMixin:
    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping) and not isinstance(data, QueryDict):
            fields = self.fields  # type: ignore[attr-defined]
            # Unknown keys are refused too (the schema says additionalProperties: false):
            # a misspelt field must not be dropped silently.
            errors = {str(k): [_("未知字段。")] for k in data if k not in fields}
            for name, field in fields.items():
                if field.read_only or name not in data:
                    continue
                problem = type_problem(field, data[name])
                if problem:
                    errors[name] = [problem]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)  # type: ignore[misc]
