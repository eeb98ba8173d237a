"""Writes for parties. The only code that encrypts or decrypts ID numbers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction

from mediation.core import clock
from mediation.core.errors import InvalidInput, NotFound, PermissionDenied
from mediation.core.text import has_visible_text
from mediation.parties import crypto, idnumbers
from mediation.parties.models import IdNumberRevealLog, Party, PartyKind, RevealedItem

REVEAL_PERMISSION = "accounts.reveal_id_number"


def _clean_phone(phone: str) -> str:
    try:
        return idnumbers.normalise_phone(phone)
    except ValueError as exc:
        raise InvalidInput(str(exc), details={"field": "phone"}) from None


def _full_clean(party: Party) -> None:
    try:
        party.full_clean()
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        label = (
            "" if field == NON_FIELD_ERRORS else f"{Party._meta.get_field(field).verbose_name}："
        )
        raise InvalidInput(f"{label}{messages[0]}", details=exc.message_dict) from None


def party_create(
    *,
    name: str,
    id_number: str | None = None,
    phone: str = "",
    address: str = "",
    kind: str = PartyKind.PERSON,
    today: dt.date | None = None,
    sms_consent: bool = False,
    consent_at: dt.datetime | None = None,
) -> Party:
    """Register a party. The ID number is validated, then stored encrypted, hashed and masked.

    Birth date, gender and the under-14 flag (PIPL Art 31) are derived from the number; the
    flag is a snapshot as of ``today`` (default: the current date in Asia/Shanghai).
    Raises ``InvalidInput`` with a user message; the message never contains the number.
    """
    name = (name or "").strip()
    if not has_visible_text(name):
        raise InvalidInput("姓名/名称不能为空", details={"field": "name"})
    if kind not in PartyKind.values:
        raise InvalidInput("当事人类型无效", details={"field": "kind"})
    if today is None:
        today = clock.local_date(clock.now())
    party = Party(
        name=name,
        kind=kind,
        phone=_clean_phone(phone),
        address=(address or "").strip(),
    )
    if sms_consent and party.phone:
        party.sms_consent = True
        party.sms_consent_at = consent_at or clock.now()
    if id_number is not None and id_number.strip():
        if kind != PartyKind.PERSON:
            raise InvalidInput("单位当事人不登记居民身份证号", details={"field": "id_number"})
        try:
            number = idnumbers.validate_id_number(id_number, today=today)
        except idnumbers.InvalidIdNumber as exc:
            raise InvalidInput(str(exc), details={"field": "id_number"}) from None
        party.id_number_encrypted = crypto.encrypt(number)
        # Hash the 18-character form so a legacy 15-digit number and its upgrade match.
        party.id_number_hash = crypto.lookup_hash(idnumbers.upgrade_to_18(number))
        party.id_number_masked = idnumbers.mask_id_number(number)
        party.birth_date = idnumbers.birth_date(number)
        party.gender = idnumbers.gender(number)
        party.is_minor = idnumbers.is_minor_under_14(number, today=today)
    _full_clean(party)
    party.save(force_insert=True)
    return party


def party_update_contact(
    *, party_id: int, phone: str | None = None, address: str | None = None
) -> Party:
    """Change the phone and/or address (``None`` leaves a field as it is)."""
    changes: dict[str, Any] = {}
    if phone is not None:
        changes["phone"] = _clean_phone(phone)
    if address is not None:
        changes["address"] = address.strip()
    with transaction.atomic():
        party = Party.objects.select_for_update().filter(pk=party_id).first()
        if party is None:
            raise NotFound("当事人不存在")
        if not changes:
            return party
        for field, value in changes.items():
            setattr(party, field, value)
        _full_clean(party)
        party.save(update_fields=list(changes))
    return party


def party_reveal_id_number(
    *, party_id: int, viewer: Any, purpose: str, context: str = "", now: dt.datetime
) -> str:
    """Return a party's full ID number and log who saw it, why and when (居民身份证法 Art 13).

    Requires the ``accounts.reveal_id_number`` permission; without it, or without a
    purpose, nothing is written. The log row and the decryption share one transaction, so
    the number is returned only if the row was written. Case-level access (e.g. an accused
    organisation must not see a petitioner, 信访工作条例 Art 30 ¶3) is the caller's check.
    """
    if viewer is None or not viewer.has_perm(REVEAL_PERMISSION):
        raise PermissionDenied("无权查看完整身份证号")
    purpose = (purpose or "").strip()
    context = (context or "").strip()
    if not purpose:
        raise InvalidInput("查看完整身份证号须填写用途", details={"field": "purpose"})
    if len(purpose) > IdNumberRevealLog._meta.get_field("purpose").max_length:
        raise InvalidInput("查看用途过长", details={"field": "purpose"})
    if len(context) > IdNumberRevealLog._meta.get_field("context").max_length:
        raise InvalidInput("业务场景过长", details={"field": "context"})
    with transaction.atomic():
        party = Party.objects.filter(pk=party_id).first()
        if party is None:
            raise NotFound("当事人不存在")
        if not party.id_number_encrypted:
            raise NotFound("该当事人未登记身份证号")
        number = crypto.decrypt(party.id_number_encrypted)
        IdNumberRevealLog.objects.create(
            party=party,
            viewer=viewer,
            viewer_agency_id=getattr(viewer, "agency_id", None),
            at=now,
            purpose=purpose,
            context=context,
        )
    return number


def party_reveal_phone(
    *, party_id: int, viewer: Any, purpose: str, context: str = "", now: dt.datetime
) -> str:
    """Return a party's full phone number and log who saw it, why and when, as for ID
    numbers (DOMAIN.md §5: phones are shown 138****1234 unless revealed).

    No special permission: staff who may see the case need to call its parties; the log
    records every look. Case-level access (including 检举控告 confidentiality) is the
    caller's check, as for ID numbers. Nothing is written without a purpose.
    """
    if viewer is None or not getattr(viewer, "is_active", False):
        raise PermissionDenied("无权查看完整电话号码")
    purpose = (purpose or "").strip()
    context = (context or "").strip()
    if not purpose:
        raise InvalidInput("查看完整电话号码须填写用途", details={"field": "purpose"})
    if len(purpose) > IdNumberRevealLog._meta.get_field("purpose").max_length:
        raise InvalidInput("查看用途过长", details={"field": "purpose"})
    if len(context) > IdNumberRevealLog._meta.get_field("context").max_length:
        raise InvalidInput("业务场景过长", details={"field": "context"})
    with transaction.atomic():
        party = Party.objects.filter(pk=party_id).first()
        if party is None:
            raise NotFound("当事人不存在")
        if not party.phone:
            raise NotFound("该当事人未登记电话号码")
        IdNumberRevealLog.objects.create(
            party=party,
            viewer=viewer,
            viewer_agency_id=getattr(viewer, "agency_id", None),
            at=now,
            item=RevealedItem.PHONE,
            purpose=purpose,
            context=context,
        )
    return party.phone
