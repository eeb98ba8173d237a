"""Admin for parties: ID numbers are entered in plain text once, then only ever shown masked.

Creation goes through ``services.party_create``; the token and the hash are never shown
(they are ``editable=False`` and not listed). The ID number cannot be changed here.

`PartyAdmin` is registered by the cases admin (`mediation.cases.admin`), which scopes it to the
parties of cases the user may see (the one visibility rule lives with the cases; parties do
not depend on cases).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from mediation.agencies.selectors import user_scope
from mediation.parties import idnumbers
from mediation.parties.models import IdNumberRevealLog, Party, PartyKind
from mediation.parties.services import party_create


class PartyAddForm(forms.ModelForm):
    id_number = forms.CharField(
        label=_("身份证号"),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text=_("18位（或旧版15位）；保存后只显示脱敏号码。"),
    )

    class Meta:
        model = Party
        fields = ("kind", "name", "id_number", "phone", "address")

    def clean_id_number(self) -> str:
        text = self.cleaned_data.get("id_number", "")
        if not text:
            return ""
        try:
            return idnumbers.validate_id_number(text)
        except idnumbers.InvalidIdNumber as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_phone(self) -> str:
        try:
            return idnumbers.normalise_phone(self.cleaned_data.get("phone", ""))
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("id_number") and cleaned.get("kind") != PartyKind.PERSON:
            self.add_error("id_number", _("单位当事人不登记居民身份证号"))
        return cleaned


class PartyChangeForm(forms.ModelForm):
    class Meta:
        model = Party
        fields = ("name", "phone", "address")

    clean_phone = PartyAddForm.clean_phone


class PartyAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "id_display", "phone_display", "is_minor", "created_at")
    list_filter = ("kind", "is_minor")
    search_fields = ("name",)
    # Name only: admin search is a GET, and a full ID number in a query string would end up
    # in access logs and browser history.
    readonly_fields = ("kind", "id_display", "gender", "birth_date", "is_minor", "created_at")
    form = PartyChangeForm

    @admin.display(description=_("身份证号"))
    def id_display(self, obj: Party) -> str:
        return obj.masked_id or "—"

    @admin.display(description=_("联系电话"))
    def phone_display(self, obj: Party) -> str:
        return obj.masked_phone or "—"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["kind", "name", "id_number", "phone", "address"]
        return [
            "kind",
            "name",
            "id_display",
            "gender",
            "birth_date",
            "is_minor",
            "phone",
            "address",
            "created_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = PartyChangeForm if obj is not None else PartyAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def save_form(self, request, form, change):
        if change:
            return super().save_form(request, form, change)
        data = form.cleaned_data
        return party_create(
            name=data["name"],
            id_number=data["id_number"] or None,
            phone=data["phone"],
            address=data["address"],
            kind=data["kind"],
        )

    def save_model(self, request, obj, form, change):
        if change:  # on add, party_create has saved it
            super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        if change:  # Party has no relations edited here; the add form was never saved
            super().save_related(request, form, formsets, change)


@admin.register(IdNumberRevealLog)
class IdNumberRevealLogAdmin(admin.ModelAdmin):
    """Read-only: rows are written by ``party_reveal_id_number`` and never changed."""

    list_display = ("at", "item", "party", "viewer", "viewer_agency", "purpose", "context")
    list_filter = ("item", "viewer_agency")
    list_select_related = ("party", "viewer", "viewer_agency")
    search_fields = ("purpose", "context", "viewer__username")
    date_hierarchy = "at"

    def get_queryset(self, request):
        """Superusers see every reveal; others those made by viewers of their agency scope."""
        qs = super().get_queryset(request)
        if request.user.is_active and request.user.is_superuser:
            return qs
        return qs.filter(viewer_agency_id__in=user_scope(request.user).below)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
