"""Parties (当事人) to disputes and petitions, and the log of who saw a full ID number.

The plain ID number is stored nowhere: only a Fernet token, a keyed hash for look-ups and
the masked form for display (DOMAIN.md §5). Decryption goes through
``services.party_reveal_id_number``, which checks the permission and writes the log.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from mediation.core import clock
from mediation.parties import crypto, idnumbers


class PartyKind(models.TextChoices):
    PERSON = "person", _("自然人")
    ORGANISATION = "organisation", _("法人或其他组织")


class Gender(models.TextChoices):
    MALE = "male", _("男")
    FEMALE = "female", _("女")


class Party(models.Model):
    name = models.CharField(_("姓名/名称"), max_length=200)
    kind = models.CharField(
        _("类型"), max_length=16, choices=PartyKind.choices, default=PartyKind.PERSON
    )
    # Derived from the ID number; blank when there is none.
    gender = models.CharField(_("性别"), max_length=8, choices=Gender.choices, blank=True)
    # In clear: staff call the parties (the case page's tel: link), SMS notices go to it and
    # the 检举控告 redaction needs the string to replace. Look-ups never use it: they go
    # through `phone_hash` (DOMAIN.md §5), so the column carries no index.
    phone = models.CharField(_("联系电话"), max_length=32, blank=True)
    phone_hash = models.CharField(
        _("联系电话（检索摘要）"), max_length=64, blank=True, db_index=True, editable=False
    )
    address = models.CharField(_("住址"), max_length=255, blank=True)
    # Whether the party agreed, at registration, to get SMS about the case (the 查询码 and
    # each step); without it no SMS is ever sent to them (README "The public side").
    sms_consent = models.BooleanField(_("同意接收短信"), default=False)
    sms_consent_at = models.DateTimeField(_("短信同意时间"), null=True, blank=True)
    id_number_encrypted = models.TextField(_("身份证号（密文）"), blank=True, editable=False)
    id_number_hash = models.CharField(
        _("身份证号（检索摘要）"), max_length=64, blank=True, db_index=True, editable=False
    )
    id_number_masked = models.CharField(
        _("身份证号（脱敏）"), max_length=18, blank=True, editable=False
    )
    birth_date = models.DateField(_("出生日期"), null=True, blank=True, editable=False)
    # Snapshot at creation (PIPL Art 31, under 14): it does not turn False on the 14th
    # birthday. Use `is_minor_on(day)` where the current age matters.
    is_minor = models.BooleanField(_("登记时未满14周岁"), default=False, editable=False)
    created_at = models.DateTimeField(_("登记时间"), default=clock.now, editable=False)

    class Meta:
        verbose_name = _("当事人")
        verbose_name_plural = _("当事人")
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The search box: a party's name, exact or as a prefix (`LIKE '张三%'`); the
            # pattern operator class makes a prefix LIKE an index range scan whatever the
            # database collation (PostgreSQL; other databases ignore the opclass).
            models.Index(
                fields=["name"], name="party_name_prefix_idx", opclasses=["varchar_pattern_ops"]
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # The look-up digest always follows the number, whoever changes it.
        self.phone_hash = crypto.phone_hash(self.phone) if self.phone else ""
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "phone" in update_fields:
            kwargs["update_fields"] = {*update_fields, "phone_hash"}
        super().save(*args, **kwargs)

    @property
    def has_id_number(self) -> bool:
        return bool(self.id_number_encrypted)

    @property
    def masked_id(self) -> str:
        """The ID number 前3后4 (15-digit: 前3后3); empty if none was recorded."""
        return self.id_number_masked

    @property
    def masked_phone(self) -> str:
        return idnumbers.mask_phone(self.phone)

    @property
    def masked_name(self) -> str:
        """Surname kept for people; organisation names are not personal data."""
        if self.kind == PartyKind.ORGANISATION:
            return self.name
        return idnumbers.mask_name(self.name)

    def is_minor_on(self, day: dt.date) -> bool:
        """Whether the party is under 14 on ``day``; False if the birth date is unknown."""
        if self.birth_date is None:
            return False
        return idnumbers.is_under(self.birth_date, idnumbers.MINOR_AGE, today=day)


class AppendOnlyViolation(RuntimeError):
    """An attempt to change or delete a row of an append-only audit table."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyViolation(f"{self.model.__name__} rows cannot be updated")

    def _update(self, values):
        # Model.save() of an existing row and bulk_update() come through here.
        raise AppendOnlyViolation(f"{self.model.__name__} rows cannot be updated")

    def delete(self):
        raise AppendOnlyViolation(f"{self.model.__name__} rows cannot be deleted")

    delete.alters_data = True
    delete.queryset_only = True


class RevealedItem(models.TextChoices):
    ID_NUMBER = "id_number", _("身份证号")
    PHONE = "phone", _("联系电话")


class IdNumberRevealLog(models.Model):
    """One row per full ID number (居民身份证法 Art 13, 19) or phone number shown to a user.
    Append-only.

    Besides the ORM guards here, migration 0002 adds a PostgreSQL trigger that refuses
    UPDATE and DELETE on the table, and 0004 one that refuses TRUNCATE.
    """

    party = models.ForeignKey(
        Party, verbose_name=_("当事人"), on_delete=models.PROTECT, related_name="id_reveals"
    )
    viewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("查看人"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    viewer_agency = models.ForeignKey(
        "agencies.Agency",
        verbose_name=_("查看人所属机构"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    at = models.DateTimeField(_("查看时间"), default=clock.now, db_index=True)
    item = models.CharField(
        _("查看内容"), max_length=16, choices=RevealedItem.choices, default=RevealedItem.ID_NUMBER
    )
    purpose = models.CharField(_("查看用途"), max_length=200)
    # Where the number was needed, e.g. "case:123"; free text so parties never imports cases.
    context = models.CharField(_("业务场景"), max_length=100, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("个人信息查看记录")
        verbose_name_plural = _("个人信息查看记录")
        ordering = ["-at", "-pk"]
        default_permissions = ("view",)  # rows are written by the service only

    def __str__(self) -> str:
        return f"{self.viewer_id} → {self.party_id} @ {self.at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AppendOnlyViolation("IdNumberRevealLog rows cannot be updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyViolation("IdNumberRevealLog rows cannot be deleted")
