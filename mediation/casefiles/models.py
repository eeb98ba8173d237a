"""The case file (卷宗, 人民调解法 Art 27; DOMAIN.md §3.3): attachments, session records,
follow-up visits, oral-agreement registers, and the log of who downloaded what.

The rows refer to cases by string (`"cases.Case"`): this app imports nothing from `cases`, so
the case steps (`cases.steps`) can write these rows inside a case action's transaction.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from mediation.parties.models import AppendOnlyQuerySet, AppendOnlyViolation


class DocumentType(models.TextChoices):
    """The county file index of DOMAIN.md §3.3, in its order (the dossier keeps it)."""

    APPLICATION = "application", _("人民调解申请书/受理登记表")
    RIGHTS_NOTICE = "rights_notice", _("当事人权利义务告知书")
    IDENTITY = "identity", _("当事人身份证明")
    POWER_OF_ATTORNEY = "power_of_attorney", _("授权委托书")
    INVESTIGATION = "investigation", _("调查记录")
    EVIDENCE = "evidence", _("证据材料")
    SESSION_RECORD = "session_record", _("人民调解记录")
    AGREEMENT = "agreement", _("人民调解协议书")
    PERFORMANCE = "performance", _("履行凭证")
    FOLLOW_UP = "follow_up", _("回访记录")
    CONFIRMATION = "confirmation", _("司法确认材料")
    FILE_NOTES = "file_notes", _("卷宗情况说明")
    OTHER = "other", _("其他材料")


DOCUMENT_ORDER = {value: i for i, value in enumerate(DocumentType.values)}


class Attachment(models.Model):
    """A file of the case file. The bytes live in Django's storage (`stored_name`, a name the
    system chose); the user's file name is kept only for display (`original_name`). Never
    deleted: withdrawing hides it from the file and records an event."""

    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="attachments")
    doc_type = models.CharField(_("材料类型"), max_length=32, choices=DocumentType.choices)
    description = models.CharField(_("说明"), max_length=500, blank=True)
    original_name = models.CharField(_("原文件名"), max_length=255)
    stored_name = models.CharField(_("存储名"), max_length=255, unique=True, editable=False)
    content_type = models.CharField(_("文件类型"), max_length=100)
    size = models.PositiveBigIntegerField(_("大小（字节）"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    pages = models.PositiveIntegerField(_("页数"), null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("上传人"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    uploaded_by_agency = models.ForeignKey(
        "agencies.Agency", on_delete=models.PROTECT, null=True, related_name="+"
    )
    uploaded_at = models.DateTimeField(_("上传时间"))
    withdrawn_at = models.DateTimeField(_("撤回时间"), null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("撤回人"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    withdraw_reason = models.CharField(_("撤回理由"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("卷宗材料")
        verbose_name_plural = _("卷宗材料")
        ordering = ["uploaded_at", "pk"]
        indexes = [models.Index(fields=["case", "uploaded_at"], name="attachment_case_idx")]

    def __str__(self) -> str:
        return self.original_name

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyViolation("卷宗材料不可删除，只能撤回")

    @property
    def is_image(self) -> bool:
        return self.content_type in ("image/jpeg", "image/png")

    @property
    def is_pdf(self) -> bool:
        return self.content_type == "application/pdf"


class FileAccessKind(models.TextChoices):
    ATTACHMENT = "attachment", _("下载材料")
    DOSSIER = "dossier", _("导出卷宗")


class FileAccess(models.Model):
    """Who downloaded which file of which case, when. Append-only."""

    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="+")
    attachment = models.ForeignKey(
        Attachment, on_delete=models.PROTECT, null=True, blank=True, related_name="accesses"
    )
    kind = models.CharField(_("类型"), max_length=16, choices=FileAccessKind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("下载人"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    agency = models.ForeignKey(
        "agencies.Agency", on_delete=models.PROTECT, null=True, related_name="+"
    )
    at = models.DateTimeField(_("时间"), db_index=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("材料下载记录")
        verbose_name_plural = _("材料下载记录")
        ordering = ["-at", "-pk"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} {self.case_id} @ {self.at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyViolation("下载记录不可修改")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyViolation("下载记录不可删除")


class MediationSession(models.Model):
    """调解记录 / 笔录 (人民调解法 Art 27): one sitting of the mediation. Several per case.

    Issue 14's SMS notice of a session reads `started_at` and `place` from here (the event is
    `EventKind.RECORD_SESSION`, whose data carries the session id)."""

    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="sessions")
    started_at = models.DateTimeField(_("调解时间"))
    place = models.CharField(_("调解地点"), max_length=200)
    mediators = models.CharField(_("调解员"), max_length=300)
    parties_present = models.ManyToManyField(
        "cases.CaseParty", verbose_name=_("到场当事人"), related_name="+", blank=True
    )
    others_present = models.CharField(_("其他在场人员"), max_length=500, blank=True)
    content = models.TextField(_("调解记录内容"))
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("记录人"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    recorded_at = models.DateTimeField(_("记录时间"))

    class Meta:
        verbose_name = _("调解记录")
        verbose_name_plural = _("调解记录")
        ordering = ["started_at", "pk"]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M} {self.place}"


class Performance(models.TextChoices):
    PERFORMED = "performed", _("已履行")
    PARTLY = "partly", _("部分履行")
    NOT_PERFORMED = "not_performed", _("未履行")


class Satisfaction(models.TextChoices):
    SATISFIED = "satisfied", _("满意")
    BASIC = "basic", _("基本满意")
    UNSATISFIED = "unsatisfied", _("不满意")


class EscalationRisk(models.TextChoices):
    NONE = "none", _("无")
    LOW = "low", _("较低")
    HIGH = "high", _("较高")


class FollowUpVisit(models.Model):
    """回访记录 (DOMAIN.md §3.3): interim visits while the agreement is performed, and the
    final one recorded when the case is closed (`final`)."""

    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="visits")
    visited_on = models.DateField(_("回访日期"))
    visited_party = models.ForeignKey(
        "cases.CaseParty",
        verbose_name=_("被回访人"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    agreement = models.ForeignKey(
        "cases.Agreement",
        verbose_name=_("调解协议"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    reason = models.CharField(_("回访事由"), max_length=500, blank=True)
    performance = models.CharField(
        _("履行情况"), max_length=16, choices=Performance.choices, default=Performance.PERFORMED
    )
    satisfaction = models.CharField(_("满意度"), max_length=16, choices=Satisfaction.choices)
    lawsuit = models.BooleanField(_("已起诉"), default=False)
    risk = models.CharField(
        _("激化风险"), max_length=8, choices=EscalationRisk.choices, default=EscalationRisk.NONE
    )
    measures = models.TextField(_("采取的措施"), blank=True)
    final = models.BooleanField(_("结案回访"), default=False)
    visitor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("回访人"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    recorded_at = models.DateTimeField(_("记录时间"))

    class Meta:
        verbose_name = _("回访记录")
        verbose_name_plural = _("回访记录")
        ordering = ["visited_on", "pk"]

    def __str__(self) -> str:
        return f"{self.visited_on} {self.get_performance_display()}"


class OralAgreementRecord(models.Model):
    """口头协议登记 (人民调解法 Arts 28, 30): the mediator records the content of an agreement
    the parties reached orally; it took effect the day it was reached."""

    case = models.ForeignKey(
        "cases.Case", on_delete=models.PROTECT, related_name="oral_agreement_records"
    )
    agreement = models.OneToOneField(
        "cases.Agreement", on_delete=models.PROTECT, related_name="oral_record"
    )
    facts = models.TextField(_("纠纷简要情况"))
    content = models.TextField(_("协议内容"))
    performance = models.CharField(_("履行方式和期限"), max_length=500, blank=True)
    parties_confirmed = models.BooleanField(_("当事人已确认"), default=False)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("登记人"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    registered_at = models.DateTimeField(_("登记时间"))

    class Meta:
        verbose_name = _("口头协议登记")
        verbose_name_plural = _("口头协议登记")
        ordering = ["registered_at", "pk"]

    def __str__(self) -> str:
        return f"口头协议登记 {self.registered_at:%Y-%m-%d}"
