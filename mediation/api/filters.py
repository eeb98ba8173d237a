"""Query-string filters of the case list, validated like a request body (unknown value → 400)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from mediation.agencies.models import Agency
from mediation.cases.models import ALL_STATES, Case, CaseKind, Category, Channel
from mediation.deadlines.models import Clock, ClockStatus
from mediation.deadlines.policy import Calendar, ClockKind

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
    q = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="案号或标题包含"
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # Ids beyond bigint never match a row; refuse them before any query.
        for name in ("holder_agency", "category", "channel"):
            raw = data.get(name) if hasattr(data, "get") else None
            if isinstance(raw, str) and raw.isascii() and raw.isdigit() and int(raw) > MAX_ID:
                raise serializers.ValidationError({name: [_("无效的编号。")]})
        return super().to_internal_value(data)


def _duty_clocks() -> QuerySet[Clock]:
    return Clock.objects.filter(
        case_id=OuterRef("pk"), status=ClockStatus.RUNNING, kind=ClockKind.DUTY.value
    )


def working_day_horizon(today: dt.date, n: int, calendar: Calendar) -> dt.date:
    """The n-th working day after `today` (today itself for n = 0)."""
    day, counted = today, 0
    while counted < n:
        day += dt.timedelta(days=1)
        if calendar.day(day).is_workday:
            counted += 1
    return day


def apply_case_filters(
    qs: QuerySet[Case],
    params: dict[str, Any],
    *,
    now: dt.datetime,
    today: dt.date,
    calendar_factory: Any,
) -> QuerySet[Case]:
    if "kind" in params:
        qs = qs.filter(kind=params["kind"])
    if "state" in params:
        qs = qs.filter(state=params["state"])
    if "holder_agency" in params:
        qs = qs.filter(holder_agency=params["holder_agency"])
    if "category" in params:
        qs = qs.filter(category=params["category"])
    if "channel" in params:
        qs = qs.filter(channel=params["channel"])
    if "overdue" in params:
        overdue = Exists(_duty_clocks().filter(due_at__lt=now))
        qs = qs.filter(overdue) if params["overdue"] else qs.exclude(overdue)
    if "due_within" in params:
        horizon = working_day_horizon(today, params["due_within"], calendar_factory())
        qs = qs.filter(Exists(_duty_clocks().filter(due_at__gte=now, due__lte=horizon)))
    q = (params.get("q") or "").strip()
    if q:
        qs = qs.filter(Q(number__icontains=q) | Q(title__icontains=q))
    return qs
