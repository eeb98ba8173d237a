"""Notifications (the in-app inbox) and their outbound deliveries (the outbox).

A `Notification` is one message to one user; the row itself is the in-app channel. Each
outbound channel (e-mail, group-robot webhook, SMS) is a `Delivery` row with its own state
machine `pending → sending → sent | failed` (RELIABILITY.md §2.3, §2.6):

- `pending` rows whose `next_attempt_at` has come are claimable;
- a worker claims one row by setting `sending` with a lease (`lease_until`, `claimed_by`);
  a `sending` row whose lease has expired (the worker died) is claimable again;
- the message carries an idempotency key derived from the notification id, so a resend after
  a crash between "provider accepted" and "row marked sent" can be deduplicated downstream.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class NotificationKind(models.TextChoices):
    REMINDER = "reminder", _("期限提醒")
    DIGEST = "digest", _("提醒汇总")
    ESCALATION = "escalation", _("超期督办")
    SUPERVISION_NOTE = "supervision_note", _("督办意见")
    REASSIGNED = "reassigned", _("改派")
    HANDOFF = "handoff", _("待办移交")
    FEEDBACK = "feedback", _("办理反馈")
    # To a party (当事人), by SMS only: the 查询码 and each public step (README "The public side").
    PARTY_SMS = "party_sms", _("当事人短信")
    # A party rated the outcome 不满意: the supervisor over the handling agency looks at it.
    RATING = "rating", _("群众评价")


class Notification(models.Model):
    """One message to one user, or (exactly one of the two) to one party of a case: a party
    has no inbox; their notification exists for its SMS delivery (kind `party_sms`, sent only
    with the party's consent, `mediation.cases.party_notices`)."""

    # No index of its own: notification_inbox_idx (recipient, -created_at) leads with it.
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("接收人"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
    )
    party = models.ForeignKey(
        "parties.Party",
        verbose_name=_("当事人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    kind = models.CharField(_("类型"), max_length=32, choices=NotificationKind.choices)
    case = models.ForeignKey(
        "cases.Case",
        verbose_name=_("案件"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="notifications",
    )
    subject = models.CharField(_("标题"), max_length=200)
    body = models.TextField(_("内容"))
    # Idempotency key: what the notification is about, e.g. "reminder:12:user:3". Unique
    # (notification_key_unique), so a sweep that runs twice (two beats, a redelivered task)
    # cannot notify twice. A constraint rather than unique=True: that would add a second,
    # varchar_pattern_ops index for LIKE, which no query uses and every insert maintains.
    key = models.CharField(_("幂等键"), max_length=200)
    data = models.JSONField(_("数据"), default=dict, blank=True)
    created_at = models.DateTimeField(_("创建时间"))
    read_at = models.DateTimeField(_("阅读时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("通知")
        verbose_name_plural = _("通知")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["recipient", "-created_at"], name="notification_inbox_idx"),
            models.Index(
                fields=["recipient"],
                name="notification_unread_idx",
                condition=models.Q(read_at__isnull=True),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["key"], name="notification_key_unique"),
            models.CheckConstraint(
                condition=(
                    models.Q(recipient__isnull=False, party__isnull=True)
                    | models.Q(recipient__isnull=True, party__isnull=False)
                ),
                name="notification_user_xor_party",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recipient_id}: {self.subject}"

    @property
    def idempotency_key(self) -> str:
        return f"notification-{self.pk}"


class DeliveryChannel(models.TextChoices):
    EMAIL = "email", _("电子邮件")
    WEBHOOK = "webhook", _("群机器人")
    SMS = "sms", _("短信")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("待发送")
    SENDING = "sending", _("发送中")
    SENT = "sent", _("已发送")
    FAILED = "failed", _("发送失败")


class Delivery(models.Model):
    # No index of its own: delivery_one_per_channel (notification, channel) leads with it.
    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    channel = models.CharField(_("渠道"), max_length=16, choices=DeliveryChannel.choices)
    status = models.CharField(
        _("状态"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("尝试次数"), default=0)
    next_attempt_at = models.DateTimeField(_("下次尝试时间"))
    lease_until = models.DateTimeField(_("租约到期"), null=True, blank=True)
    claimed_by = models.CharField(_("处理进程"), max_length=200, blank=True)
    # Set when a sweep hands the id to a Celery delivery task; until then the next sweep does
    # not hand it out again. If the message is lost (Redis flushed), it is handed out again.
    dispatched_until = models.DateTimeField(_("派发有效期"), null=True, blank=True)
    address = models.CharField(_("发送地址"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("创建时间"))
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)
    failed_at = models.DateTimeField(_("失败时间"), null=True, blank=True)
    last_error = models.TextField(_("最近错误"), blank=True)
    # The provider's id of the message (SMS), for its delivery reports and complaints.
    # (A database default: the outbox's set-based INSERTs name their columns.)
    provider_message_id = models.CharField(
        _("服务商消息编号"), max_length=100, blank=True, default="", db_default=""
    )

    class Meta:
        verbose_name = _("发送记录")
        verbose_name_plural = _("发送记录")
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "channel"], name="delivery_one_per_channel"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_pending_idx",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["lease_until"],
                name="delivery_sending_idx",
                condition=models.Q(status="sending"),
            ),
            # Health: the oldest undelivered delivery.
            models.Index(
                fields=["created_at"],
                name="delivery_undelivered_idx",
                condition=models.Q(status__in=["pending", "sending"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notification_id}/{self.channel} {self.status}"


class ChannelPreference(models.Model):
    """Channel choices of one user or one agency (exactly one of the two is set).

    A user's e-mail/SMS follow the user's row, else their agency's row, else the defaults
    (e-mail on, SMS off). The group-robot webhook follows the holder agency's row (default on,
    when the agency has a `webhook_url`). The in-app inbox cannot be switched off.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("用户"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="channel_preference",
    )
    agency = models.OneToOneField(
        "agencies.Agency",
        verbose_name=_("机构"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="channel_preference",
    )
    email = models.BooleanField(_("电子邮件"), default=True)
    sms = models.BooleanField(_("短信"), default=False)
    webhook = models.BooleanField(_("群机器人"), default=True)

    class Meta:
        verbose_name = _("通知渠道偏好")
        verbose_name_plural = _("通知渠道偏好")
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(user__isnull=False, agency__isnull=True)
                    | models.Q(user__isnull=True, agency__isnull=False)
                ),
                name="channel_preference_user_xor_agency",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user or self.agency}"
