"""The public side's writes: an online application, a look-up, a rating.

- `application_submit`: the form becomes an ordinary registration (`cases.services.
  dispute_register` with no actor, channel 网上申请, at the intake agency), so it is validated
  and clocked exactly like a registration at the window, and waits for triage there. Limits
  per client address and per phone (Redis, `limits`); a second open application from the same
  phone and ID number is refused with the first one's number, not registered twice.
- `public_lookup`: the 查询码 plus the last four digits of a party's phone. A wrong code and a
  wrong phone get the same answer after the same minimum time; failures are limited per
  address and per code (then `Throttled`, 429); every attempt is logged (hashed address).
- `rating_submit`: 满意 / 基本满意 / 不满意 with a comment, after 结案 or once the 处理意见 was
  served; once per party per case, changeable within `PUBLIC_RATING_CHANGE_DAYS`. 不满意
  notifies the supervisors over the handling agency and waits in their queue.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from mediation.accounts.models import Role, User
from mediation.agencies.models import Agency, AgencyKind, AgencyLevel
from mediation.agencies.selectors import agency_chain_ids
from mediation.cases import lookup
from mediation.cases.models import Case, CaseKind, CasePartyRole, Category, Channel
from mediation.cases.services import PartyInput, dispute_register
from mediation.core.clock import local_date
from mediation.core.errors import Conflict, DomainError, InvalidInput, NotFound
from mediation.notifications.models import NotificationKind
from mediation.notifications.services import NotificationSpec, notifications_create_bulk
from mediation.parties import crypto, idnumbers
from mediation.public.limits import Limit
from mediation.public.models import LookupAttempt, OnlineApplication, Rating, RatingValue
from mediation.public.selectors import public_party_for, rating_open_for

ONLINE_CHANNEL = "online_application"
COMMENT_MAX_LENGTH = 500
SUMMARY_MAX_LENGTH = 5000
REQUESTS_MAX_LENGTH = 2000


class Throttled(DomainError):
    """Too many attempts: the HTTP layer answers 429 with the message."""

    code = "throttled"


def _digest(domain: str, value: str) -> str:
    key = settings.LOOKUP_CODE_KEY.encode("utf-8")
    return hmac.new(key, f"{domain}:{value}".encode(), hashlib.sha256).hexdigest()


def address_hash(address: str | None) -> str:
    """The client address as logged and counted: a keyed hash, never the address itself."""
    return _digest("address", address or "unknown")


def _apply_limits() -> tuple[Limit, Limit]:
    day = 24 * 3600
    return (
        Limit("apply-address", settings.PUBLIC_APPLY_PER_ADDRESS_PER_DAY, day, fail_open=True),
        Limit("apply-phone", settings.PUBLIC_APPLY_PER_PHONE_PER_DAY, day, fail_open=True),
    )


def _lookup_limits() -> tuple[Limit, Limit]:
    window = settings.PUBLIC_LOOKUP_WINDOW_SECONDS
    return (
        Limit("track-address", settings.PUBLIC_LOOKUP_FAILURES_PER_ADDRESS, window, False),
        Limit("track-code", settings.PUBLIC_LOOKUP_FAILURES_PER_CODE, window, False),
    )


# Applying ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartyDetails:
    name: str
    phone: str = ""
    id_number: str = ""
    address: str = ""


@dataclass(frozen=True)
class ApplicationInput:
    applicant: PartyDetails
    others: list[PartyDetails]
    intake_agency_id: int | None
    place: str
    category_id: int
    summary: str
    requests: str
    sms_consent: bool
    privacy_accepted: bool
    privacy_version: str = ""


@dataclass(frozen=True)
class Submitted:
    case: Case
    lookup_code: str
    sms: bool = field(default=False)


def intake_agencies() -> list[Agency]:
    """Where the form may send an application: the configured intake agency, or the active
    township 综治中心 (peace offices at township level)."""
    code = settings.PUBLIC_INTAKE_AGENCY_CODE
    if code:
        return list(Agency.objects.filter(code=code, is_active=True))
    return list(
        Agency.objects.filter(
            kind=AgencyKind.PEACE_OFFICE, level=AgencyLevel.TOWNSHIP, is_active=True
        ).order_by("name")
    )


def _applicant_key(phone: str, id_number: str) -> str:
    return _digest("applicant", f"{phone}|{idnumbers.upgrade_to_18(id_number)}")


def application_submit(*, data: ApplicationInput, client_address: str | None, now: dt.datetime):
    """Register an online application (module docstring). Returns `Submitted` with the case
    and its 查询码. Raises InvalidInput (shown in the form), Conflict (an open application of
    the same person) or Throttled."""
    if not data.privacy_accepted:
        raise InvalidInput(
            _("请先阅读并同意个人信息处理告知。"),
            details={"privacy": [_("请先阅读并同意个人信息处理告知。")]},
        )
    applicant = data.applicant
    try:
        phone = idnumbers.normalise_phone(applicant.phone)
        id_number = idnumbers.validate_id_number(applicant.id_number, today=local_date(now))
    except (ValueError, idnumbers.InvalidIdNumber) as exc:
        raise InvalidInput(str(exc)) from None
    if not phone or not id_number:
        raise InvalidInput(_("请填写申请人的手机号码和身份证号。"))
    if len(data.summary) > SUMMARY_MAX_LENGTH or len(data.requests) > REQUESTS_MAX_LENGTH:
        raise InvalidInput(_("内容过长。"))
    if not (data.place or "").strip() or len(data.place) > 200:
        raise InvalidInput(_("请填写纠纷发生地（不超过 200 字）。"))
    allowed = {a.pk for a in intake_agencies()}
    intake = data.intake_agency_id
    if settings.PUBLIC_INTAKE_AGENCY_CODE and allowed:
        intake = next(iter(allowed))
    if intake not in allowed:
        raise InvalidInput(
            _("请选择受理的乡镇（街道）综治中心。"),
            details={"intake_agency": [_("请选择受理的乡镇（街道）综治中心。")]},
        )
    by_address, by_phone = _apply_limits()
    who = address_hash(client_address)
    phone_key = crypto.phone_hash(phone)
    if by_address.exceeded(who) or by_phone.exceeded(phone_key):
        raise Throttled(_("今日提交次数过多，请明天再试，或直接到乡镇综治中心窗口申请。"))
    key = _applicant_key(phone, id_number)
    earlier = (
        OnlineApplication.objects.filter(applicant_key=key, case__closed_at__isnull=True)
        .select_related("case")
        .first()
    )
    if earlier is not None:
        raise Conflict(
            _(
                "您已有一件正在办理的网上申请（案号：%(number)s），无需重复提交。"
                "请凭查询码查询办理进度；如遗失查询码，请联系受理机构。"
            )
            % {"number": earlier.case.number},
            code="duplicate",
        )
    by_address.hit(who)
    by_phone.hit(phone_key)
    category = Category.objects.filter(
        pk=data.category_id, applies_to__in=[CaseKind.DISPUTE, "both"], is_active=True
    ).first()
    if category is None:
        raise InvalidInput(_("请选择纠纷类型。"), details={"category": [_("请选择纠纷类型。")]})
    channel, _created = Channel.objects.get_or_create(
        code=ONLINE_CHANNEL, defaults={"name": "网上申请", "sort_order": 13}
    )
    parties = [
        PartyInput(
            name=applicant.name,
            role=CasePartyRole.APPLICANT,
            id_number=id_number,
            phone=phone,
            address=applicant.address,
            sms_consent=data.sms_consent,
        )
    ]
    for other in data.others:
        if not (other.name or "").strip():
            continue
        parties.append(
            PartyInput(
                name=other.name,
                role=CasePartyRole.RESPONDENT,
                id_number=other.id_number or None,
                phone=other.phone,
                address=other.address,
            )
        )
    place = data.place.strip()
    title = f"{place}{category.name}（网上申请）"[:200]
    description = f"{data.summary.strip()}\n\n申请事项：\n{data.requests.strip()}"
    with transaction.atomic():
        case = dispute_register(
            actor=None,
            intake_agency_id=intake,
            title=title,
            channel_id=channel.pk,
            received_on=local_date(now),
            parties=parties,
            now=now,
            description=description,
            category_id=category.pk,
        )
        OnlineApplication.objects.create(
            case=case,
            place=place,
            requests=data.requests.strip(),
            privacy_notice_version=data.privacy_version or settings.PUBLIC_PRIVACY_NOTICE_VERSION,
            applicant_key=key,
            address_hash=who,
            submitted_at=now,
        )
    return Submitted(case=case, lookup_code=case.lookup_code, sms=data.sms_consent)


# Looking up ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    case_id: int
    party_id: int


def public_lookup(
    *, code: str, phone_last4: str, client_address: str | None, now: dt.datetime
) -> Found | None:
    """The case and party a 查询码 and phone ending identify, or None; never says which of the
    two was wrong. Raises Throttled (before looking) when the address or the code is over
    its failure limit. At least `PUBLIC_LOOKUP_MIN_SECONDS` whatever the outcome."""
    started = time.monotonic()
    by_address, by_code = _lookup_limits()
    who = address_hash(client_address)
    cleaned = lookup.normalise(code) or "malformed"
    code_key = _digest("code", cleaned)
    if by_address.exceeded(who) or by_code.exceeded(code_key):
        LookupAttempt.objects.create(at=now, address_hash=who, success=False)
        raise Throttled(_("查询失败次数过多，请一小时后再试。如遗失查询码，请联系受理机构。"))
    digits = "".join(ch for ch in (phone_last4 or "") if ch.isdigit())
    case_id = lookup.lookup_case_id(code)
    party_id = public_party_for(case_id=case_id or 0, last4=digits if len(digits) == 4 else "")
    found = case_id is not None and party_id is not None
    LookupAttempt.objects.create(
        at=now, address_hash=who, success=found, case_id=case_id if found else None
    )
    if not found:
        by_address.hit(who)
        by_code.hit(code_key)
    remaining = settings.PUBLIC_LOOKUP_MIN_SECONDS - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)
    if not found:
        return None
    assert case_id is not None
    assert party_id is not None
    return Found(case_id=case_id, party_id=party_id)


# Rating ------------------------------------------------------------------------------------------


def _supervisors_over(agency_id: int) -> tuple[int | None, list[int]]:
    """The nearest agency in [agency, *ancestors] with active supervisors, and them."""
    chain = agency_chain_ids(agency_id)
    rows = User.objects.filter(
        agency_id__in=chain, role=Role.SUPERVISOR, is_active=True
    ).values_list("agency_id", "pk")
    by_agency: dict[int, list[int]] = {}
    for a, u in rows:
        by_agency.setdefault(a, []).append(u)
    for a in chain:
        if a in by_agency:
            return a, sorted(by_agency[a])
    return None, []


def rating_submit(
    *, case_id: int, party_id: int, value: str, comment: str, now: dt.datetime
) -> Rating:
    """Record (or change, within the window) a party's rating of their case."""
    if value not in RatingValue.values:
        raise InvalidInput(_("请选择评价。"), details={"value": [_("请选择评价。")]})
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX_LENGTH:
        raise InvalidInput(
            _("意见不能超过 %(n)d 字。") % {"n": COMMENT_MAX_LENGTH},
            details={"comment": [_("意见过长。")]},
        )
    try:
        with transaction.atomic():
            case = Case.objects.select_for_update().filter(pk=case_id).first()
            if case is None or public_party_for(case_id=case_id, party_id=party_id) is None:
                raise NotFound(_("案件不存在。"))
            if not rating_open_for(case, now=now):
                raise Conflict(_("本事项办结或处理意见送达后才能评价。"), code="not_yet")
            rating = Rating.objects.select_for_update().filter(case=case, party_id=party_id).first()
            window = dt.timedelta(days=settings.PUBLIC_RATING_CHANGE_DAYS)
            notify = value == RatingValue.UNSATISFIED
            if rating is None:
                rating = Rating.objects.create(
                    case=case,
                    party_id=party_id,
                    agency_id=case.holder_agency_id,
                    value=value,
                    comment=comment,
                    rated_at=now,
                    changed_at=now,
                )
            else:
                if now - rating.rated_at > window:
                    raise Conflict(
                        _("评价已超过可修改期限（评价后 %(n)d 日内可修改）。")
                        % {"n": settings.PUBLIC_RATING_CHANGE_DAYS},
                        code="window_closed",
                    )
                notify = notify and rating.value != value
                rating.value = value
                rating.comment = comment
                rating.changed_at = now
                rating.changes += 1
                if notify:
                    rating.reviewed_at = None
                    rating.reviewed_by = None
                rating.save()
            if notify:
                _notify_unsatisfied(case, rating, now=now)
            return rating
    except IntegrityError as exc:  # two submissions at once: the second is a change
        raise Conflict(_("评价已提交，请刷新后查看。"), code="concurrent") from exc


def _notify_unsatisfied(case: Case, rating: Rating, *, now: dt.datetime) -> None:
    agency_id, users = _supervisors_over(case.holder_agency_id)
    if not users:
        return
    day = local_date(now).isoformat()
    specs = [
        NotificationSpec(
            recipient_id=u,
            kind=str(NotificationKind.RATING),
            case_id=case.pk,
            subject=f"【群众评价：不满意】{case.number}",
            body=f"当事人于{day}对本案办理结果评价为“不满意”，请查看并督促处理。",
            key=f"rating:{rating.pk}:c{rating.changes}:user:{u}",
            data={"rating": rating.pk, "agency_id": agency_id},
        )
        for u in users
    ]
    notifications_create_bulk(specs, now=now)


def rating_mark_reviewed(*, rating_id: int, actor: User, now: dt.datetime) -> Rating:
    """A supervisor has looked at a 不满意 rating in their queue."""
    from mediation.escalation.selectors import rating_queue_for

    with transaction.atomic():
        rating = (
            rating_queue_for(user=actor).select_for_update(of=("self",)).filter(pk=rating_id)
        ).first()
        if rating is None:
            raise NotFound(_("评价不存在。"))
        rating.reviewed_at = now
        rating.reviewed_by = actor
        rating.save(update_fields=["reviewed_at", "reviewed_by"])
        return rating
