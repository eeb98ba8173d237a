"""The public side's own rows: online applications, the parties' ratings, the look-up log.

The case itself (and its 查询码) belongs to `mediation.cases`: an online application is an
ordinary registration with channel 网上申请; this app keeps only what the door adds.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from mediation.parties.models import AppendOnlyQuerySet, AppendOnlyViolation


class OnlineApplication(models.Model):
    """申请调解 made online (`/public/apply/`): the case it became, and what the form added."""

    case = models.OneToOneField(
        "cases.Case", on_delete=models.PROTECT, related_name="online_application"
    )
    place = models.CharField(_("纠纷发生地（村/社区、地点）"), max_length=200)
    requests = models.TextField(_("申请事项"))
    privacy_notice_version = models.CharField(_("已阅读的个人信息告知版本"), max_length=32)
    # HMAC of the applicant's phone and ID number together: "the same person's open
    # application" is one indexed look-up, never a comparison of numbers in clear.
    applicant_key = models.CharField(max_length=64, db_index=True, editable=False)
    address_hash = models.CharField(_("提交地址（摘要）"), max_length=64, editable=False)
    submitted_at = models.DateTimeField(_("提交时间"))

    class Meta:
        verbose_name = _("网上申请")
        verbose_name_plural = _("网上申请")

    def __str__(self) -> str:
        return f"{self.case_id} {self.submitted_at:%Y-%m-%d}"


class RatingValue(models.TextChoices):
    SATISFIED = "satisfied", _("满意")
    BASIC = "basic", _("基本满意")
    UNSATISFIED = "unsatisfied", _("不满意")


class Rating(models.Model):
    """A party's 满意度评价 of how their case was handled (信访工作条例 Art 21; DOMAIN.md §4.3):
    once per party per case, changeable within `PUBLIC_RATING_CHANGE_DAYS` of the first."""

    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="ratings")
    party = models.ForeignKey("parties.Party", on_delete=models.PROTECT, related_name="+")
    # The agency that handled the case when it was rated: the statistics count by it.
    agency = models.ForeignKey(
        "agencies.Agency", verbose_name=_("办理机构"), on_delete=models.PROTECT, related_name="+"
    )
    value = models.CharField(_("评价"), max_length=16, choices=RatingValue.choices)
    comment = models.TextField(_("意见"), blank=True)
    rated_at = models.DateTimeField(_("首次评价时间"))
    changed_at = models.DateTimeField(_("最近修改时间"))
    changes = models.PositiveIntegerField(_("修改次数"), default=0)
    # 不满意: the supervisor over the handling agency looks at it (the supervision page).
    reviewed_at = models.DateTimeField(_("督办人员查看时间"), null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("查看人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = _("群众评价")
        verbose_name_plural = _("群众评价")
        constraints = [
            models.UniqueConstraint(fields=["case", "party"], name="rating_once_per_party"),
        ]
        indexes = [
            models.Index(fields=["rated_at"], name="rating_rated_at_idx"),
            models.Index(
                fields=["agency"],
                name="rating_unreviewed_idx",
                condition=models.Q(value="unsatisfied", reviewed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case_id}/{self.party_id} {self.value}"


class LookupAttempt(models.Model):
    """One look-up at `/public/track/`: when, from which address (keyed hash), found or not.
    Append-only (the brute-force record)."""

    at = models.DateTimeField(_("时间"), db_index=True)
    address_hash = models.CharField(_("地址（摘要）"), max_length=64)
    success = models.BooleanField(_("成功"))
    case = models.ForeignKey(
        "cases.Case", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("查询记录")
        verbose_name_plural = _("查询记录")
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {'✓' if self.success else '✗'}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AppendOnlyViolation("LookupAttempt rows cannot be updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyViolation("LookupAttempt rows cannot be deleted")
