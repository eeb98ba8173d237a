"""SMS to the parties (当事人): the 查询码 at registration, then each step they are told of.

The one place that decides which steps a party hears of by SMS and what the message says
(`STEP_MESSAGES`); the outbox (`notifications.services.party_sms_create`) sends only to parties
who consented at registration and have a phone, within the quiet hours, once per key.

- 查询码 on registration (every channel): the code is not stored; the SMS carries a
  placeholder the outbox fills in when it sends (`derived=("lookup_code",)`);
- 受理 / 不予受理; the mediation session's time and place (a session recorded ahead of time,
  from the case file's `MediationSession`); the 处理意见 issued; 结案, with the rating link.

检举控告 (信访工作条例 Art 30 ¶3): the respondent of an accusation is never sent anything.
Transitions that are not listed write nothing and read nothing (the statement budget of
`tests/integration/test_transition_cost.py`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings

from mediation.cases.models import Case, CaseKind, CaseParty, CasePartyRole
from mediation.core.clock import local_date
from mediation.deadlines import policy
from mediation.notifications.services import PartySmsSpec, party_sms_create

# Transition → message (template name of settings.SMS_TEMPLATES).
STEP_MESSAGES = {
    (CaseKind.DISPUTE, "accept"): "accepted",
    (CaseKind.DISPUTE, "accept_own"): "accepted",
    (CaseKind.PETITION, "accept"): "accepted",
    (CaseKind.PETITION, "accept_forwarded"): "accepted",
    (CaseKind.PETITION, "not_accept"): "not_accepted",
    (CaseKind.PETITION, "issue_opinion"): "opinion",
    (CaseKind.DISPUTE, "close_resolved"): "closed",
    (CaseKind.DISPUTE, "close_failed"): "closed",
    (CaseKind.DISPUTE, "refuse"): "closed",
    (CaseKind.DISPUTE, "withdraw"): "closed",
    (CaseKind.DISPUTE, "reject_confirmation_fail"): "closed",
    (CaseKind.PETITION, "close"): "closed",
    (CaseKind.PETITION, "record_mediation"): "closed",
    (CaseKind.PETITION, "issue_rereview_opinion"): "closed",
}


def _track_url() -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + "/public/track/"


def _parties(case: Case) -> list[int]:
    qs = CaseParty.objects.filter(case_id=case.pk)
    if case.involves_accusation:
        qs = qs.exclude(role=CasePartyRole.RESPONDENT)
    return sorted(set(qs.values_list("party_id", flat=True)))


def _text(template: str, p: dict[str, str]) -> str:
    sign = settings.SMS_PROVIDER_SIGN_NAME
    texts = {
        "lookup_code": "【{sign}】您的事项已登记（{number}），查询码：{{lookup_code}}。"
        "凭查询码和登记手机号后四位可在 {url} 查询办理进度。",
        "accepted": "【{sign}】您的事项（{number}）已由{agency}受理，可凭查询码查询进度。",
        "not_accepted": "【{sign}】您的事项（{number}）{agency}决定不予受理，"
        "理由及救济途径可凭查询码查询。",
        "session": "【{sign}】您的事项（{number}）定于{time}在{place}调解，请准时参加。",
        "opinion": "【{sign}】您的事项（{number}）已出具处理意见（送达日期 {served_on}），"
        "可凭查询码查询并评价。",
        "closed": "【{sign}】您的事项（{number}）已办结，欢迎凭查询码在 {url} 评价办理结果。",
    }
    return texts[template].format(sign=sign, **p)


def _write(case: Case, template: str, params: dict[str, str], key: str, now: dt.datetime) -> int:
    party_ids = _parties(case)
    if not party_ids:
        return 0
    derived = ("lookup_code",) if template == "lookup_code" else ()
    text = _text(template, params)
    specs = [
        PartySmsSpec(
            party_id=pid,
            case_id=case.pk,
            template=template,
            params=params,
            text=text,
            key=f"party-sms:{case.pk}:{key}:party:{pid}",
            derived=derived,
        )
        for pid in party_ids
    ]
    return party_sms_create(specs, now=now)


def after_registration(*, case: Case, now: dt.datetime) -> int:
    """The 查询码 to each consenting party (in the registration's transaction)."""
    params = {"number": case.number, "url": _track_url()}
    return _write(case, "lookup_code", params, "registered", now)


def after_step(*, case: Case, name: str, now: dt.datetime, data: dict[str, Any]) -> int:
    """The SMS a step sends the parties, if it is one they are told of."""
    template = STEP_MESSAGES.get((str(case.kind), name))
    if template is None:
        return 0
    params = {"number": case.number, "agency": case.holder_agency.name, "url": _track_url()}
    if template == "opinion":
        params["served_on"] = str(data.get("served_on") or local_date(now).isoformat())
    return _write(case, template, params, f"v{case.version}:{name}", now)


def after_session(*, case: Case, data: dict[str, Any], now: dt.datetime) -> int:
    """A mediation session recorded ahead of its time: its time and place to the parties."""
    try:
        at = dt.datetime.fromisoformat(str(data.get("session_at")))
    except ValueError:
        return 0
    if at <= now:
        return 0  # the record of a sitting already held: nothing to tell
    local = at.astimezone(policy.SHANGHAI)
    params = {
        "number": case.number,
        "time": local.strftime("%Y年%m月%d日 %H:%M"),
        "place": str(data.get("place") or ""),
    }
    return _write(case, "session", params, f"session:{data.get('session')}", now)
