"""Statistics rollups: small tables the statistics page reads instead of millions of case rows.

Written only by `services.stats_refresh` (a full, set-based recompute in one transaction);
read by `selectors`. Every dated table is at day granularity (Asia/Shanghai), so any date
range can be summed. Agencies are plain ids (no foreign-key constraint: the rows are derived
data, replaced wholesale on every refresh).

Two ways of keying by agency:
- `agency`: the case's current holder agency (tables that show a row per agency);
- `scope`: every agency at or above the holder (the holder and each of its ancestors), so a
  supervisor's numbers, which cover their agency and everything below it, are the rows of
  one `scope` value: a county supervisor reads a few hundred rows, not one per village.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


def _agency(**kwargs):
    return models.ForeignKey(
        "agencies.Agency",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        **kwargs,
    )


class StatsSnapshot(models.Model):
    """The last refresh (one row, pk 1): what instant the rollups describe."""

    as_of = models.DateTimeField(_("统计截至"))
    finished_at = models.DateTimeField(_("完成时间"))
    duration_ms = models.PositiveIntegerField(_("耗时（毫秒）"))

    class Meta:
        verbose_name = _("统计快照")
        verbose_name_plural = _("统计快照")

    def __str__(self) -> str:
        return f"{self.as_of:%Y-%m-%d %H:%M}"


class AgencyScope(models.Model):
    """The agency tree at `as_of` as (scope, agency) pairs: every agency with itself and each
    agency above it. A scope's holder-keyed rows are read with a sub-select on this table."""

    scope = _agency()
    agency = _agency()

    class Meta:
        indexes = [models.Index(fields=["scope", "agency"], name="report_scope_agency_idx")]

    def __str__(self) -> str:
        return f"{self.scope_id} ⊇ {self.agency_id}"


class OpenCaseCount(models.Model):
    """Open (non-terminal) cases at `as_of`, by holder agency, kind and state."""

    agency = _agency()
    kind = models.CharField(max_length=16)
    state = models.CharField(max_length=32)
    n = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["agency"], name="report_open_agency_idx")]

    def __str__(self) -> str:
        return f"{self.agency_id} {self.kind} {self.state}: {self.n}"


class OnTimeDaily(models.Model):
    """Duty clocks stopped on `day`, by holder agency; on time if stopped by the due instant."""

    agency = _agency()
    day = models.DateField()
    stopped = models.PositiveIntegerField()
    on_time = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day", "agency"], name="report_ontime_day_idx")]

    def __str__(self) -> str:
        return f"{self.agency_id} {self.day}: {self.on_time}/{self.stopped}"


class OnTimeMonthly(models.Model):
    """`OnTimeDaily` summed by calendar month (`month` is its first day): a county's year is
    a few thousand rows instead of a few hundred thousand."""

    agency = _agency()
    month = models.DateField()
    stopped = models.PositiveIntegerField()
    on_time = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["month", "agency"], name="report_ontime_month_idx")]

    def __str__(self) -> str:
        return f"{self.agency_id} {self.month:%Y-%m}: {self.on_time}/{self.stopped}"


class DueDaily(models.Model):
    """Duty clocks due on `day` (their due date) and how many of them went overdue by
    `as_of`: stopped after the due instant, or still running past it."""

    scope = _agency()
    day = models.DateField()
    due = models.PositiveIntegerField()
    overdue = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["scope", "day"], name="report_due_scope_day_idx")]

    def __str__(self) -> str:
        return f"{self.scope_id} {self.day}: {self.overdue}/{self.due}"


class RegisteredDaily(models.Model):
    """Cases registered on `day`, by kind, category and intake channel."""

    scope = _agency()
    day = models.DateField()
    kind = models.CharField(max_length=16)
    category_id = models.IntegerField(null=True)
    channel_id = models.IntegerField()
    n = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["scope", "day"], name="report_reg_scope_day_idx")]

    def __str__(self) -> str:
        return f"{self.scope_id} {self.day} {self.kind}: {self.n}"


class StateTimeDaily(models.Model):
    """Stays in a state that ended on `day`: how many, and their total length in seconds."""

    scope = _agency()
    day = models.DateField()
    kind = models.CharField(max_length=16)
    state = models.CharField(max_length=32)
    n = models.PositiveIntegerField()
    seconds = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["scope", "day"], name="report_state_scope_day_idx")]

    def __str__(self) -> str:
        return f"{self.scope_id} {self.day} {self.kind} {self.state}: {self.n}"
