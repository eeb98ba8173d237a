"""Agencies (机构) in a hierarchy: village/residents' committee → township → county."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AgencyKind(models.TextChoices):
    POLICE_STATION = "police_station", _("派出所")
    PEOPLES_COURT = "peoples_court", _("人民法庭")
    JUDICIAL_OFFICE = "judicial_office", _("司法所")
    MEDIATION_COMMITTEE = "mediation_committee", _("人民调解委员会")
    PETITION_OFFICE = "petition_office", _("信访办")
    PEACE_OFFICE = "peace_office", _("平安办/综治中心")
    GOVERNMENT = "government", _("人民政府")


class AgencyLevel(models.TextChoices):
    VILLAGE = "village", _("村（居）")
    TOWNSHIP = "township", _("乡镇（街道）")
    COUNTY = "county", _("县（区）")


class AgencyQuerySet(models.QuerySet["Agency"]):
    def active(self) -> AgencyQuerySet:
        return self.filter(is_active=True)


class Agency(models.Model):
    code = models.SlugField(_("代码"), max_length=64, unique=True)
    name = models.CharField(_("名称"), max_length=200)
    kind = models.CharField(_("类型"), max_length=32, choices=AgencyKind.choices)
    level = models.CharField(_("层级"), max_length=16, choices=AgencyLevel.choices)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("上级机构"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    # Prefix of case numbers, e.g. "将官池" in "(2026)将官池人调字第0001号".
    # Unique: the prefix names the organ in the case number, which is unique system-wide.
    case_number_prefix = models.CharField(_("案号前缀"), max_length=32, unique=True)
    head = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("负责人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    webhook_url = models.URLField(_("群机器人 Webhook"), blank=True)
    is_active = models.BooleanField(_("启用"), default=True)

    objects = AgencyQuerySet.as_manager()

    class Meta:
        verbose_name = _("机构")
        verbose_name_plural = _("机构")
        ordering = ["level", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        seen = {self.pk}
        node = self.parent
        while node is not None:
            if node.pk in seen:
                raise ValidationError({"parent": _("上级机构不能形成循环。")})
            seen.add(node.pk)
            node = node.parent

    def ancestors(self) -> list[Agency]:
        """Parents up to the root, nearest first."""
        out: list[Agency] = []
        node = self.parent
        while node is not None and len(out) < 16:
            out.append(node)
            node = node.parent
        return out

    def descendant_ids(self) -> set[int]:
        """This agency and every agency below it (the hierarchy is a few levels deep)."""
        ids = {self.pk}
        frontier = [self.pk]
        while frontier:
            frontier = list(
                Agency.objects.filter(parent_id__in=frontier).values_list("pk", flat=True)
            )
            frontier = [i for i in frontier if i not in ids]
            ids.update(frontier)
        return ids


class ReviewingOrgan(models.Model):
    """An organ that reviews (复查) or re-reviews (复核) an agency's decisions besides the next
    agency up the tree: 信访工作条例 Arts 35–36 name "上一级机关", which is not always the
    tree parent (a township 信访办 whose matters the township government reviews, say).

    `mediation.agencies.selectors.reviewers_of` reads the parent and these rows; a 复查 or 复核
    request naming any other organ is refused.
    """

    agency = models.ForeignKey(
        Agency,
        verbose_name=_("原办理机关"),
        on_delete=models.CASCADE,
        related_name="reviewing_organs",
    )
    reviewer = models.ForeignKey(
        Agency, verbose_name=_("复查/复核机关"), on_delete=models.CASCADE, related_name="+"
    )
    note = models.CharField(_("依据"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("复查复核机关")
        verbose_name_plural = _("复查复核机关")
        constraints = [
            models.UniqueConstraint(fields=["agency", "reviewer"], name="reviewing_organ_unique"),
            models.CheckConstraint(
                condition=~models.Q(agency=models.F("reviewer")), name="reviewing_organ_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agency} → {self.reviewer}"
