"""Query-string filters of the case list, validated like a request body (unknown value → 400)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from mediation.accounts.models import User
from mediation.agencies.models import Agency
from mediation.cases.models import ALL_STATES, Case, CaseKind, Category, Channel
from mediation.cases.selectors import (
    CaseFilters,
    case_filter,
    case_search_q,
    parse_search,
    working_day_horizon,
)

MAX_ID = 2**63 - 1
MAX_DUE_WITHIN = 366


class CaseFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CaseKind.choices, required=False, help_text="案件类别")
    state = serializers.ChoiceField(
        choices=[(s, s) for s in ALL_STATES], required=False, help_text="当前状态"
    )
    holder_agency = serializers.PrimaryKeyRelatedField(
        queryset=Agency.objects.all(), required=False, help_text="承办机构 id"
    )
    category = serializers.PrimaryKeyRelatedField(
        queryset=Category.objects.all(), required=False, help_text="类型 id"
    )
    channel = serializers.PrimaryKeyRelatedField(
        queryset=Channel.objects.all(), required=False, help_text="来源渠道 id"
    )
    overdue = serializers.BooleanField(
        required=False, help_text="true：有已逾期的办理期限；false：没有"
    )
    due_within = serializers.IntegerField(
        min_value=0,
        max_value=MAX_DUE_WITHIN,
        required=False,
        help_text="办理期限在今后 N 个工作日内到期（尚未逾期）",
    )
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), required=False, help_text="承办人 id"
    )
    registered_from = serializers.DateField(required=False, help_text="登记日期起（含）")
    registered_to = serializers.DateField(required=False, help_text="登记日期止（含）")
    q = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text=(
            "搜索：案号（全号或序号）、当事人姓名（完整或开头）、18位身份证号、联系电话、"
            "标题和简要情况中的文字"
        ),
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        lo, hi = attrs.get("registered_from"), attrs.get("registered_to")
        for name in ("registered_from", "registered_to"):
            day = attrs.get(name)
            if day is not None and not 1990 <= day.year <= 2199:
                raise serializers.ValidationError({name: [_("日期超出有效范围。")]})
        if lo and hi and lo > hi:
            raise serializers.ValidationError({"registered_to": [_("结束日期不能早于开始日期。")]})
        return attrs

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # Ids beyond bigint never match a row; refuse them before any query.
        for name in ("holder_agency", "category", "channel", "assignee"):
            raw = data.get(name) if hasattr(data, "get") else None
            if isinstance(raw, str) and raw.isascii() and raw.isdigit() and int(raw) > MAX_ID:
                raise serializers.ValidationError({name: [_("无效的编号。")]})
        return super().to_internal_value(data)


def apply_case_filters(
    qs: QuerySet[Case],
    params: dict[str, Any],
    *,
    user: Any,
    now: dt.datetime,
    today: dt.date,
    calendar_factory: Any,
) -> QuerySet[Case]:
    """The validated query string as the domain's filters and search (`cases.selectors`, the
    same as the web lists')."""

    def pk(name: str) -> int | None:
        value = params.get(name)
        return value.pk if value is not None else None

    due_by = None
    if "due_within" in params:
        due_by = working_day_horizon(today, params["due_within"], calendar_factory())
    filters = CaseFilters(
        kind=params.get("kind", ""),
        state=params.get("state", ""),
        category_id=pk("category"),
        channel_id=pk("channel"),
        holder_agency_id=pk("holder_agency"),
        assignee_id=pk("assignee"),
        registered_from=params.get("registered_from"),
        registered_to=params.get("registered_to"),
        overdue=params.get("overdue"),
        due_by=due_by,
    )
    qs = case_filter(qs, filters, now=now)
    terms = parse_search(params.get("q") or "")
    if terms is not None:
        qs = qs.filter(case_search_q(user, terms))
    return qs
