"""Escalations of overdue duty clocks (超期督办) and the sweep log.

The ladder (DOMAIN.md §4.5–4.6, §6 conventions): a running DUTY clock past its due time is
escalated to level 1 (the holder agency's head); without acknowledgement within
`escalation.ack` (1 working day) to level 2 (the township 综治中心 / 平安办 supervisors); then to
level 3 (county supervisors). `UniqueConstraint(clock, level)` makes each level happen once per
clock however many sweeps, beats or workers race (RELIABILITY.md §2.4).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class EscalationStatus(models.TextChoices):
    OPEN = "open", _("待签收")
    ACKNOWLEDGED = "acknowledged", _("已签收")
    RESOLVED = "resolved", _("已办结")
    # A holiday-calendar correction moved the clock's due date into the future (issue 10):
    # kept with its reason, out of every queue, and no bar to escalating the clock again.
    SUPERSEDED = "superseded", _("已失效（期限调整）")


class EscalationLevel(models.IntegerChoices):
    HOLDER_HEAD = 1, _("承办机构负责人")
    TOWNSHIP = 2, _("乡镇综治中心")
    COUNTY = 3, _("县级督办")


class Escalation(models.Model):
    # No single-column indexes on the foreign keys: the composite indexes in Meta lead with
    # them (clock: escalation_one_per_level, case: escalation_case_idx, agency:
    # escalation_queue_idx), and the user columns, null until someone acts, get partial ones.
    # The sweep inserts escalations by the thousand; each index is written on every insert.
    clock = models.ForeignKey(
        "deadlines.Clock", on_delete=models.PROTECT, related_name="escalations", db_index=False
    )
    case = models.ForeignKey(
        "cases.Case", on_delete=models.PROTECT, related_name="escalations", db_index=False
    )
    level = models.PositiveSmallIntegerField(_("督办层级"), choices=EscalationLevel.choices)
    status = models.CharField(
        _("状态"), max_length=16, choices=EscalationStatus.choices, default=EscalationStatus.OPEN
    )
    # The agency whose queue holds it: the holder (1), the township peace office (2), the
    # county agency (3). Null when the hierarchy has no such agency (still visible in admin).
    agency = models.ForeignKey(
        "agencies.Agency",
        verbose_name=_("督办机构"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="escalations",
        db_index=False,
    )
    created_at = models.DateTimeField(_("督办时间"))
    # The escalation's own clock: `escalation.ack` (1 working day, end of that day).
    ack_due_at = models.DateTimeField(_("签收期限"))
    acknowledged_at = models.DateTimeField(_("签收时间"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("签收人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    resolved_at = models.DateTimeField(_("办结时间"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("办结人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    resolution = models.CharField(_("办结原因"), max_length=64, blank=True)
    # Set when this escalation stops being a candidate for climbing: the next level was
    # created, or the climb was found blocked (another level acknowledged or resolved). Keeps
    # the climb's claim an index range over live candidates only.
    climb_done_at = models.DateTimeField(_("升级处理时间"), null=True, blank=True)
    # The 督办单 (supervision notice): case, clock, due date, days overdue, level, and the
    # supervisors' notes appended by the actions. A printable view renders it later.
    data = models.JSONField(_("督办单"), default=dict)
    # The supervising agency that issues the 督办单 to the agency that owes the duty, and the
    # notice's number 督字〔year〕第N号 from that agency's counter for the year
    # (`NoticeSequence`). Set by the sweep right after it creates the escalation
    # (`escalations_number_notices`); null for the moment in between.
    issuer = models.ForeignKey(
        "agencies.Agency",
        verbose_name=_("督办单签发机构"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    notice_year = models.PositiveSmallIntegerField(_("督办单年度"), null=True, blank=True)
    notice_number = models.PositiveIntegerField(_("督办单编号"), null=True, blank=True)

    class Meta:
        verbose_name = _("超期督办")
        verbose_name_plural = _("超期督办")
        ordering = ["-created_at", "-id"]
        constraints = [
            # Superseded escalations (a holiday correction moved the due date) do not count.
            models.UniqueConstraint(
                fields=["clock", "level"],
                name="escalation_one_per_level",
                condition=~models.Q(status="superseded"),
            ),
            models.CheckConstraint(
                condition=models.Q(level__gte=1, level__lte=3), name="escalation_level_1_3"
            ),
            # Partial: a new escalation (not yet numbered) writes no entry into it.
            models.UniqueConstraint(
                fields=["issuer", "notice_year", "notice_number"],
                name="escalation_notice_number_unique",
                condition=models.Q(notice_number__isnull=False),
            ),
        ]
        indexes = [
            models.Index(
                fields=["ack_due_at", "id"],
                name="escalation_climb_idx",
                condition=models.Q(status="open", climb_done_at__isnull=True, level__lt=3),
            ),
            models.Index(
                fields=["clock"],
                name="escalation_live_idx",
                condition=models.Q(status__in=["open", "acknowledged"]),
            ),
            models.Index(fields=["agency", "status"], name="escalation_queue_idx"),
            models.Index(fields=["case", "status"], name="escalation_case_idx"),
            models.Index(
                fields=["acknowledged_by"],
                name="escalation_ack_by_idx",
                condition=models.Q(acknowledged_by__isnull=False),
            ),
            models.Index(
                fields=["resolved_by"],
                name="escalation_resolved_by_idx",
                condition=models.Q(resolved_by__isnull=False),
            ),
            # Escalations still waiting for their 督办单 number (a few, for one sweep step).
            models.Index(
                fields=["id"],
                name="escalation_unnumbered_idx",
                condition=models.Q(notice_year__isnull=True),
            ),
            models.Index(
                fields=["issuer"],
                name="escalation_issuer_idx",
                condition=models.Q(issuer__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case_id} L{self.level} {self.status}"

    @property
    def notice_label(self) -> str:
        """督字〔2026〕第12号; empty until numbered."""
        if self.notice_number is None or self.notice_year is None:
            return ""
        return f"督字〔{self.notice_year}〕第{self.notice_number}号"


class NoticeSequence(models.Model):
    """Per issuing agency and year: the last 督办单 number it gave."""

    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    year = models.PositiveSmallIntegerField()
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("督办单编号")
        verbose_name_plural = _("督办单编号")
        constraints = [
            models.UniqueConstraint(fields=["agency", "year"], name="notice_sequence_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.agency_id}/{self.year}: {self.last_value}"


class SweepRun(models.Model):
    """One run of the sweep (beat task or `manage.py sweep`).

    Health reads the last finished run; two rows with overlapping times show two beats or
    workers sweeping at once, which is harmless (SKIP LOCKED + unique keys) but visible.
    """

    started_at = models.DateTimeField(_("开始时间"))
    finished_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    # The `now` the sweep used (differs from started_at under a test clock or --now).
    swept_until = models.DateTimeField(_("扫描时刻"))
    trigger = models.CharField(_("触发方式"), max_length=32)
    runner = models.CharField(_("进程"), max_length=200, blank=True)
    counts = models.JSONField(_("统计"), default=dict)
    error = models.TextField(_("错误"), blank=True)

    class Meta:
        verbose_name = _("扫描记录")
        verbose_name_plural = _("扫描记录")
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["-finished_at"], name="sweeprun_finished_idx")]

    def __str__(self) -> str:
        return f"{self.trigger} {self.started_at:%Y-%m-%d %H:%M:%S}"
