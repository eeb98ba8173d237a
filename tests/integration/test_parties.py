"""Parties on real PostgreSQL: encryption at rest, hash look-up, reveal with audit log."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError
from django.test import override_settings
from django.urls import reverse

from mediation.agencies.models import Agency
from mediation.core.errors import InvalidInput, PermissionDenied
from mediation.parties import crypto
from mediation.parties.models import AppendOnlyViolation, IdNumberRevealLog, Party
from mediation.parties.selectors import party_find_by_id_number, party_find_by_phone
from mediation.parties.services import (
    party_create,
    party_reveal_id_number,
    party_update_contact,
)

pytestmark = pytest.mark.django_db

ID = "11010519491231002X"
CHILD_ID = "410101201206150012"  # born 2012-06-15
TODAY = dt.date(2026, 3, 11)

# The test client starts WhiteNoise, which warns while STATIC_ROOT has not been collected.
admin_page = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")


def _agency(code: str = "jgc-tjs") -> Agency:
    return Agency.objects.create(
        code=code,
        name="将官池镇司法所",
        kind="judicial_office",
        level="township",
        case_number_prefix="将官池",
    )


def _user(username: str, *, can_reveal: bool = False, agency: Agency | None = None):
    user = get_user_model().objects.create_user(username=username, password="x", agency=agency)
    if can_reveal:
        user.user_permissions.add(Permission.objects.get(codename="reveal_id_number"))
    # Fresh instance: has_perm caches permissions on the object.
    return get_user_model().objects.get(pk=user.pk)


def _raw_row(table: str, pk: int) -> list:
    with connection.cursor() as cur:
        cur.execute(f"SELECT * FROM {table} WHERE id = %s", [pk])
        return list(cur.fetchone())


def test_create_stores_the_number_only_encrypted_hashed_and_masked():
    party = party_create(name="张三", id_number="11010519491231002x", phone="138 1234 1234")

    party.refresh_from_db()
    assert party.id_number_encrypted
    assert ID not in party.id_number_encrypted
    assert party.id_number_hash == crypto.lookup_hash(ID)
    assert party.masked_id == "110***********002X"
    assert party.birth_date == dt.date(1949, 12, 31)
    assert party.gender == "female"
    assert party.is_minor is False
    assert party.phone == "13812341234"
    assert party.masked_phone == "138****1234"
    assert party.masked_name == "张*"
    assert str(party) == "张三"
    assert not hasattr(party, "id_number")
    for value in _raw_row("parties_party", party.pk):
        assert ID not in str(value).upper()
        assert ID[:17] not in str(value)


def test_hash_is_keyed():
    with override_settings(ID_HASH_KEY="another-key"):
        other = crypto.lookup_hash(ID)
    assert other != crypto.lookup_hash(ID)
    assert len(other) == 64


def test_party_without_id_number():
    party = party_create(name="李四", address=" 将官池镇东街1号 ")

    assert party.id_number_encrypted == ""
    assert party.id_number_hash == ""
    assert party.masked_id == ""
    assert party.birth_date is None
    assert party.address == "将官池镇东街1号"


def test_invalid_id_number_is_invalid_input_and_creates_nothing():
    with pytest.raises(InvalidInput, match=r"^身份证号校验码错误") as info:
        party_create(name="张三", id_number="110105194912310021")

    assert info.value.details == {"field": "id_number"}
    assert Party.objects.count() == 0


def test_empty_name_and_bad_phone_are_invalid_input():
    with pytest.raises(InvalidInput, match=r"^姓名/名称不能为空$"):
        party_create(name="  ")
    with pytest.raises(InvalidInput, match=r"^电话号码只能包含数字$"):
        party_create(name="张三", phone="call me")


def test_overlong_name_is_invalid_input():
    with pytest.raises(InvalidInput, match=r"^姓名/名称："):
        party_create(name="张" * 201)

    assert Party.objects.count() == 0


def test_organisation_cannot_have_a_resident_id_number():
    with pytest.raises(InvalidInput, match="单位当事人"):
        party_create(name="某某建筑公司", kind="organisation", id_number=ID)

    company = party_create(name="某某建筑公司", kind="organisation")
    assert company.masked_name == "某某建筑公司"


def test_minor_flag_is_a_snapshot_at_creation():
    child = party_create(name="王小明", id_number=CHILD_ID, today=TODAY)

    assert child.is_minor is True
    assert child.is_minor_on(dt.date(2026, 6, 14)) is True
    assert child.is_minor_on(dt.date(2026, 6, 15)) is False
    child.refresh_from_db()
    assert child.is_minor is True


def test_find_by_id_number_uses_the_hash():
    party = party_create(name="张三", id_number=ID)
    party_create(name="李四", id_number="440304198503151231")

    assert list(party_find_by_id_number(id_number=" 11010519491231002x")) == [party]
    assert list(party_find_by_id_number(id_number="110105194912310021")) == []
    assert list(party_find_by_id_number(id_number="not a number")) == []
    assert list(party_find_by_id_number(id_number="")) == []


def test_legacy_15_digit_number_and_its_18_digit_form_find_each_other():
    old = party_create(name="赵五", id_number="410101800101123")

    assert old.masked_id == "410*********123"
    assert list(party_find_by_id_number(id_number="410101198001011233")) == [old]
    assert list(party_find_by_id_number(id_number="410101800101123")) == [old]


def test_find_by_phone_normalises():
    party = party_create(name="张三", phone="13812341234")

    assert list(party_find_by_phone(phone="+86 138-1234-1234")) == [party]
    assert list(party_find_by_phone(phone="")) == []
    assert list(party_find_by_phone(phone="abc")) == []


def test_update_contact():
    party = party_create(name="张三", phone="13812341234", address="旧址")

    party_update_contact(party_id=party.pk, phone="139 0000 0000")

    party.refresh_from_db()
    assert party.phone == "13900000000"
    assert party.address == "旧址"


def test_decrypt_round_trip_survives_key_rotation():
    party = party_create(name="张三", id_number=ID)
    old_token = party.id_number_encrypted
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()

    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key, old_key]):
        assert crypto.decrypt(old_token) == ID
        new_token = crypto.rotate(old_token)
        fresh_token = crypto.encrypt(ID)
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key]):
        assert crypto.decrypt(new_token) == ID
        assert crypto.decrypt(fresh_token) == ID
        with pytest.raises(InvalidToken):
            crypto.decrypt(old_token)
    with pytest.raises(InvalidToken):
        crypto.decrypt(fresh_token)
    assert crypto.decrypt(old_token) == ID


def test_reveal_with_rotated_keys_still_returns_the_number(now):
    party = party_create(name="张三", id_number=ID)
    viewer = _user("mediator", can_reveal=True)
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]

    with override_settings(FIELD_ENCRYPTION_KEYS=[Fernet.generate_key().decode(), old_key]):
        number = party_reveal_id_number(
            party_id=party.pk, viewer=viewer, purpose="制作调解协议书", now=now
        )

    assert number == ID


def test_reveal_without_permission_raises_and_writes_nothing(now):
    party = party_create(name="张三", id_number=ID)
    viewer = _user("clerk")

    with pytest.raises(PermissionDenied):
        party_reveal_id_number(party_id=party.pk, viewer=viewer, purpose="核对身份", now=now)

    assert IdNumberRevealLog.objects.count() == 0


def test_inactive_user_with_permission_cannot_reveal(now):
    party = party_create(name="张三", id_number=ID)
    viewer = _user("former", can_reveal=True)
    viewer.is_active = False
    viewer.save()

    with pytest.raises(PermissionDenied):
        party_reveal_id_number(party_id=party.pk, viewer=viewer, purpose="核对身份", now=now)

    assert IdNumberRevealLog.objects.count() == 0


def test_reveal_without_purpose_is_invalid_and_writes_nothing(now):
    party = party_create(name="张三", id_number=ID)
    viewer = _user("mediator", can_reveal=True)

    with pytest.raises(InvalidInput, match="用途"):
        party_reveal_id_number(party_id=party.pk, viewer=viewer, purpose="  ", now=now)

    assert IdNumberRevealLog.objects.count() == 0


def test_reveal_with_permission_returns_the_number_and_logs_once(now):
    agency = _agency()
    party = party_create(name="张三", id_number=ID)
    viewer = _user("mediator", can_reveal=True, agency=agency)

    number = party_reveal_id_number(
        party_id=party.pk, viewer=viewer, purpose="申请司法确认", context="case:123", now=now
    )

    assert number == ID
    log = IdNumberRevealLog.objects.get()
    assert (log.party_id, log.viewer_id, log.viewer_agency_id) == (party.pk, viewer.pk, agency.pk)
    assert (log.purpose, log.context, log.at) == ("申请司法确认", "case:123", now)
    for value in _raw_row("parties_idnumberreveallog", log.pk):
        assert ID not in str(value)


def _log(now) -> IdNumberRevealLog:
    party = party_create(name="张三", id_number=ID)
    viewer = _user("mediator", can_reveal=True)
    party_reveal_id_number(party_id=party.pk, viewer=viewer, purpose="核对身份", now=now)
    return IdNumberRevealLog.objects.get()


def test_reveal_log_cannot_be_updated_through_the_orm(now):
    log = _log(now)

    log.purpose = "改写"
    with pytest.raises(AppendOnlyViolation):
        log.save()
    with pytest.raises(AppendOnlyViolation):
        IdNumberRevealLog.objects.filter(pk=log.pk).update(purpose="改写")
    with pytest.raises(AppendOnlyViolation), transaction.atomic():
        IdNumberRevealLog.objects.bulk_update([log], ["purpose"])

    assert IdNumberRevealLog.objects.get().purpose == "核对身份"


def test_reveal_log_cannot_be_deleted_through_the_orm(now):
    log = _log(now)

    with pytest.raises(AppendOnlyViolation):
        log.delete()
    with pytest.raises(AppendOnlyViolation):
        IdNumberRevealLog.objects.all().delete()
    with pytest.raises(ProtectedError):
        log.party.delete()

    assert IdNumberRevealLog.objects.count() == 1


def test_reveal_log_is_append_only_in_the_database_too(now):
    log = _log(now)

    update = "UPDATE parties_idnumberreveallog SET purpose = 'x' WHERE id = %s"
    delete = "DELETE FROM parties_idnumberreveallog WHERE id = %s"
    for sql in (update, delete):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cur,
        ):
            cur.execute(sql, [log.pk])

    assert IdNumberRevealLog.objects.get().purpose == "核对身份"


@admin_page
def test_admin_creates_through_the_service_and_shows_only_the_masked_number(client):
    admin_user = get_user_model().objects.create_superuser(username="root", password="x")
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:parties_party_add"),
        {
            "kind": "person",
            "name": "张三",
            "id_number": "11010519491231002x",
            "phone": "",
            "address": "",
        },
    )

    assert response.status_code == 302
    party = Party.objects.get()
    assert party.id_number_hash == crypto.lookup_hash(ID)
    for url in (
        reverse("admin:parties_party_changelist"),
        reverse("admin:parties_party_change", args=[party.pk]),
    ):
        page = client.get(url).content.decode()
        assert "110***********002X" in page
        assert ID not in page
        assert party.id_number_encrypted not in page
        assert party.id_number_hash not in page


@admin_page
def test_admin_rejects_an_invalid_id_number(client):
    admin_user = get_user_model().objects.create_superuser(username="root", password="x")
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:parties_party_add"),
        {"kind": "person", "name": "张三", "id_number": "110105194912310021"},
    )

    assert response.status_code == 200
    assert "身份证号校验码错误" in response.content.decode()
    assert Party.objects.count() == 0


@admin_page
def test_admin_change_form_edits_contact_but_not_the_id_number(client):
    admin_user = get_user_model().objects.create_superuser(username="root", password="x")
    client.force_login(admin_user)
    party = party_create(name="张三", id_number=ID)
    token = party.id_number_encrypted

    response = client.post(
        reverse("admin:parties_party_change", args=[party.pk]),
        {"name": "张三", "phone": "138 1234 1234", "address": "东街", "kind": "organisation"},
    )

    assert response.status_code == 302
    party.refresh_from_db()
    assert (party.phone, party.address, party.kind) == ("13812341234", "东街", "person")
    assert party.id_number_encrypted == token


@admin_page
def test_reveal_log_admin_is_read_only(client):
    admin_user = get_user_model().objects.create_superuser(username="root", password="x")
    client.force_login(admin_user)

    assert client.get(reverse("admin:parties_idnumberreveallog_changelist")).status_code == 200
    assert client.get(reverse("admin:parties_idnumberreveallog_add")).status_code == 403
