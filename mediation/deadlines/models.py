"""Clocks on cases and the holiday data behind them.

Every state that carries a statutory limit has a `Clock` row while the case is in it. The
`due_at` instant (end of the due day, Asia/Shanghai) is indexed for running clocks, so sweeps
are plain indexed range queries (RELIABILITY.md §2.1).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

# Holiday data is entered for these years only: a typo such as 20277 or 1027 is a form error,
# not a calendar the arithmetic would overflow on.
HOLIDAY_YEAR_MIN, HOLIDAY_YEAR_MAX = 2000, 2099


def validate_holiday_date(value) -> None:
    if not HOLIDAY_YEAR_MIN <= value.year <= HOLIDAY_YEAR_MAX:
        raise ValidationError(
            _("日期须在 %(min)s 年至 %(max)s 年之间。"),
            params={"min": HOLIDAY_YEAR_MIN, "max": HOLIDAY_YEAR_MAX},
            code="holiday_year_range",
        )


class ClockStatus(models.TextChoices):
    RUNNING = "running", _("计时中")
    PAUSED = "paused", _("已暂停")
    STOPPED = "stopped", _("已停止")


class Clock(models.Model):
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="clocks")
    rule_code = models.CharField(_("规则代码"), max_length=64)
    kind = models.CharField(_("性质"), max_length=16)  # duty / window / watch (policy.ClockKind)
    entered_state = models.CharField(_("起始状态"), max_length=32)
    start_date = models.DateField(_("起算日"))
    nominal_due = models.DateField(_("名义到期日"))
    due = models.DateField(_("到期日"))
    due_at = models.DateTimeField(_("到期时刻"))
    provisional = models.BooleanField(_("临时结果"), default=False)
    extra_days = models.PositiveIntegerField(_("延长天数"), default=0)
    paused_days = models.PositiveIntegerField(_("暂停天数"), default=0)
    explanation = models.JSONField(_("计算说明"), default=list)
    status = models.CharField(
        _("状态"), max_length=16, choices=ClockStatus.choices, default=ClockStatus.RUNNING
    )
    started_at = models.DateTimeField(_("开始时间"))
    stopped_at = models.DateTimeField(_("停止时间"), null=True, blank=True)
    stop_reason = models.CharField(_("停止原因"), max_length=64, blank=True)
    # Bumped whenever the due time changes, so reminders planned for an older
    # generation can be told apart (issue 3).
    generation = models.PositiveIntegerField(default=1)
    # The agency that owes the duty, when it is not whoever holds the case: the receiver of a
    # referral owes its acceptance (referral.police_ack, dispute.assign_ack, petition.notify /
    # objection while forwarded). Its reminders go to it, and an overdue one escalates against
    # it. Null: the holder agency (which may change while the clock runs).
    agency = models.ForeignKey(
        "agencies.Agency",
        verbose_name=_("责任机构"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )

    class Meta:
        verbose_name = _("期限")
        verbose_name_plural = _("期限")
        indexes = [
            models.Index(
                fields=["due_at"],
                name="clock_running_due_idx",
                condition=models.Q(status="running"),
            ),
            models.Index(fields=["case", "status"], name="clock_case_status_idx"),
            # On-time statistics: stopped duty clocks by when they stopped.
            models.Index(
                fields=["stopped_at"],
                name="clock_duty_stopped_idx",
                condition=models.Q(kind="duty", status="stopped"),
            ),
        ]
        constraints = [
            # At most one live clock per rule on a case.
            models.UniqueConstraint(
                fields=["case", "rule_code"],
                condition=models.Q(status__in=["running", "paused"]),
                name="clock_one_live_per_rule",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule_code} → {self.due}"


class ClockPause(models.Model):
    """A paused interval (hearing 听证, expert assessment 鉴定). Both ends count."""

    clock = models.ForeignKey(Clock, on_delete=models.CASCADE, related_name="pauses")
    start_date = models.DateField(_("暂停开始"))
    end_date = models.DateField(_("暂停结束"), null=True, blank=True)
    reason = models.CharField(_("原因"), max_length=200)

    class Meta:
        verbose_name = _("期限暂停")
        verbose_name_plural = _("期限暂停")
        ordering = ["start_date"]

    def __str__(self) -> str:
        return f"{self.start_date} – {self.end_date or '…'} {self.reason}"


class HolidayOverride(models.Model):
    """An administrator-entered day from a State Council holiday notice (国办发明电).

    Overrides win over the chinese-calendar package, for any year.
    """

    date = models.DateField(_("日期"), unique=True, validators=[validate_holiday_date])
    is_workday = models.BooleanField(_("是否上班"))
    name = models.CharField(_("名称"), max_length=64, blank=True)
    source = models.CharField(_("依据"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("节假日调整")
        verbose_name_plural = _("节假日调整")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {'班' if self.is_workday else '休'} {self.name}"


class HolidayYear(models.Model):
    """Declares that every rest day and 调休 workday of `year` has been entered as overrides.

    Without it, dates of a year the package does not cover are computed weekends-only and
    marked provisional (DOMAIN.md §2.3).
    """

    year = models.PositiveIntegerField(
        _("年份"),
        unique=True,
        validators=[MinValueValidator(HOLIDAY_YEAR_MIN), MaxValueValidator(HOLIDAY_YEAR_MAX)],
    )
    source = models.CharField(_("依据"), max_length=200)
    entered_at = models.DateTimeField(_("录入时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("已录入年度")
        verbose_name_plural = _("已录入年度")
        ordering = ["year"]

    def __str__(self) -> str:
        return str(self.year)


class HolidayChangeStatus(models.TextChoices):
    PENDING = "pending", _("待重新计算")
    DONE = "done", _("已重新计算")


class HolidayChange(models.Model):
    """One committed change of the holiday data and the dates whose day it changed (issue 10).

    Written by `mediation.deadlines.holidays.holiday_change` in the transaction that changed
    `HolidayOverride` / `HolidayYear` rows; the recompute job (`holidays_recompute`) re-dates
    every live clock whose counting span contains one of `dates`, then marks it done.
    """

    created_at = models.DateTimeField(_("调整时间"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("操作人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    source = models.CharField(_("依据"), max_length=200, blank=True)
    # ISO dates whose day (workday flag, name or known-ness) differs before and after.
    dates = models.JSONField(_("变动日期"), default=list)
    first_date = models.DateField(_("最早变动日期"))
    last_date = models.DateField(_("最晚变动日期"))
    status = models.CharField(
        _("状态"),
        max_length=16,
        choices=HolidayChangeStatus.choices,
        default=HolidayChangeStatus.PENDING,
    )
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    counts = models.JSONField(_("统计"), default=dict, blank=True)

    class Meta:
        verbose_name = _("节假日数据变更")
        verbose_name_plural = _("节假日数据变更")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["id"],
                name="holidaychange_pending_idx",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.first_date}–{self.last_date}"


class ReminderStatus(models.TextChoices):
    PLANNED = "planned", _("待发送")
    SENT = "sent", _("已发送")
    CANCELLED = "cancelled", _("已取消")


class Reminder(models.Model):
    """A reminder before a running duty clock is due (issue 3). The row is the schedule.

    One row per (clock, generation, offset): a clock whose due time moves gets a new
    generation, so re-planning never duplicates and stale reminders are told apart. Planned by
    `mediation.deadlines.reminders.plan_reminders_for_case`; sent by the reminder sweep
    (`mediation.escalation.sweeps`), which claims due rows with FOR UPDATE SKIP LOCKED.
    """

    # No index of its own: reminder_one_per_offset (clock, generation, offset) leads with it.
    clock = models.ForeignKey(
        Clock, on_delete=models.CASCADE, related_name="reminders", db_index=False
    )
    generation = models.PositiveIntegerField()
    offset_code = models.CharField(_("提醒档位"), max_length=16)
    send_at = models.DateTimeField(_("计划发送时间"))
    status = models.CharField(
        _("状态"), max_length=16, choices=ReminderStatus.choices, default=ReminderStatus.PLANNED
    )
    created_at = models.DateTimeField(_("创建时间"))
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("取消时间"), null=True, blank=True)
    cancel_reason = models.CharField(_("取消原因"), max_length=64, blank=True)
    # True when the reminder went out inside an after-outage digest.
    digested = models.BooleanField(_("合并发送"), default=False)

    class Meta:
        verbose_name = _("期限提醒")
        verbose_name_plural = _("期限提醒")
        constraints = [
            models.UniqueConstraint(
                fields=["clock", "generation", "offset_code"], name="reminder_one_per_offset"
            ),
        ]
        indexes = [
            models.Index(
                fields=["send_at"],
                name="reminder_planned_send_idx",
                condition=models.Q(status="planned"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.clock_id}/{self.generation}/{self.offset_code} @ {self.send_at}"


class HolidayNotice(HolidayOverride):
    """The admin's 导入放假通知 page (法定期限 → 导入放假通知): a proxy, no table of its own."""

    class Meta:
        proxy = True
        verbose_name = _("导入放假通知")
        verbose_name_plural = _("导入放假通知")
