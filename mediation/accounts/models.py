"""Users belong to one agency and hold one role there."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    MEDIATOR = "mediator", _("调解员")
    POLICE_OFFICER = "police_officer", _("民警")
    COURT_CLERK = "court_clerk", _("法庭书记员")
    JUDICIAL_OFFICER = "judicial_officer", _("司法所工作人员")
    PETITION_OFFICER = "petition_officer", _("信访工作人员")
    SUPERVISOR = "supervisor", _("督办人员")
    ADMINISTRATOR = "administrator", _("系统管理员")


class User(AbstractUser):
    agency = models.ForeignKey(
        "agencies.Agency",
        verbose_name=_("所属机构"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="members",
    )
    role = models.CharField(_("角色"), max_length=32, choices=Role.choices, default=Role.MEDIATOR)
    display_name = models.CharField(_("姓名"), max_length=64, blank=True)
    phone = models.CharField(_("手机号"), max_length=20, blank=True)

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")
        permissions = [
            ("reveal_id_number", _("可查看完整身份证号")),
        ]

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def is_supervisor(self) -> bool:
        return self.role in (Role.SUPERVISOR, Role.ADMINISTRATOR)
