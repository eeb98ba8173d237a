"""What the printable documents show: 受理告知书, 人民调解协议书, 督办单.

Each builder returns a plain context; the templates under web/docs/ lay it out for A4. The
documents are official papers served on parties and agencies: they are rendered in Chinese
whatever the interface language (`DOCUMENT_LANGUAGE`, `chinese_document`).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import translation

from mediation.cases.lookup import lookup_code_of
from mediation.cases.models import (
    Agreement,
    Case,
    CaseKind,
    CaseParty,
    CasePartyRole,
)
from mediation.cases.selectors import protected_texts, redact
from mediation.cases.steps import NOT_ACCEPT_BASES
from mediation.core.clock import SHANGHAI, local_date
from mediation.deadlines import services as clock_services
from mediation.deadlines.calendar_source import current_calendar
from mediation.deadlines.models import Clock
from mediation.parties import idnumbers
from mediation.parties.models import PartyKind

# 受理告知书: states a petition can be in once it has been accepted (受理).
PETITION_ACCEPTED_OR_LATER = frozenset(
    {
        "accepted",
        "handling",
        "extended",
        "mediated",
        "opinion_issued",
        "review_requested",
        "under_review",
        "review_opinion_issued",
        "rereview_requested",
        "under_rereview",
        "final",
        "closed",
    }
)
HANDLING_DAYS = 60  # 信访工作条例 Art 34
DOCUMENT_LANGUAGE = "zh-hans"


def chinese_document(view: Callable[..., Any]) -> Callable[..., Any]:
    """Render a print view in Chinese, whatever language the user chose for the interface."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with translation.override(DOCUMENT_LANGUAGE):
            response = view(*args, **kwargs)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
            response.headers["Content-Language"] = "zh-CN"
            return response

    return wrapper


def acceptance_notice_available(case: Case) -> bool:
    return (
        case.kind == CaseKind.PETITION
        and case.state in PETITION_ACCEPTED_OR_LATER
        and case.accepted_on is not None
    )


def _parties(case: Case, roles: tuple[str, ...] | None = None) -> list[CaseParty]:
    qs = CaseParty.objects.filter(case=case).select_related("party").order_by("pk")
    if roles is not None:
        qs = qs.filter(role__in=roles)
    return list(qs)


def _handling_due(case: Case) -> dt.date:
    """The due day of the 60-day handling period counted from 受理 (Art 34)."""
    assert case.accepted_on is not None
    clock = (
        Clock.objects.filter(case=case, rule_code="petition.handle", start_date=case.accepted_on)
        .order_by("-started_at")
        .first()
    )
    if clock is not None:
        return clock.due
    return clock_services.clock_compute(
        rule_code="petition.handle", start_date=case.accepted_on, calendar=current_calendar()
    ).due


def acceptance_notice(case: Case, *, hidden: bool) -> dict[str, Any]:
    petitioners = _parties(case, (CasePartyRole.PETITIONER, CasePartyRole.REPRESENTATIVE))
    return {
        "case": case,
        "petitioner_names": [] if hidden else [cp.party.name for cp in petitioners],
        "hidden": hidden,
        "handling_days": HANDLING_DAYS,
        "due": _handling_due(case),
        "agency": case.holder_agency,
        # The parties' 查询码 (re-derived with the server key; `mediation.cases.lookup`).
        # Never to a viewer the petitioner is hidden from (检举控告, Art 30 ¶3).
        "lookup_code": "" if hidden else lookup_code_of(case.pk),
    }


def _age(born: dt.date | None, on: dt.date) -> int | None:
    if born is None:
        return None
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def agreement_document(
    case: Case,
    agreement: Agreement,
    *,
    hidden: bool = False,
    full_ids: dict[int, str] | None = None,
) -> dict[str, Any]:
    """人民调解协议书 (人民调解法 Art 29): the parties, facts, terms, performance, signatures.

    `full_ids` ({case party id: number}, revealed and logged by the caller) makes it the
    original for signature; otherwise ID numbers are masked."""
    parties = _parties(case)
    rows = []
    for cp in parties:
        p = cp.party
        if hidden and cp.role != CasePartyRole.RESPONDENT:
            rows.append(
                {
                    "role": cp.get_role_display(),
                    "name": "（保密）",
                    "is_person": p.kind == PartyKind.PERSON,
                    "gender": "",
                    "age": None,
                    "id_masked": "（保密）",
                    "phone": "（保密）",
                    "address": "（保密）",
                }
            )
            continue
        rows.append(
            {
                "role": cp.get_role_display(),
                "name": p.name,
                "is_person": p.kind == PartyKind.PERSON,
                "gender": p.get_gender_display() if p.gender else "",
                "age": _age(p.birth_date, agreement.effective_on),
                "id_masked": (full_ids or {}).get(cp.pk, p.id_number_masked),
                "phone": idnumbers.mask_phone(p.phone) if p.phone else "",
                "address": p.address,
            }
        )
    secrets = protected_texts([case.pk]).get(case.pk, []) if hidden else []
    signers = [r for r in rows if r["role"]]
    recorder = agreement.recorded_by
    committee = recorder.agency if recorder.agency_id else case.holder_agency
    return {
        "case": case,
        "agreement": agreement,
        "description": redact(case.description, secrets),
        "terms": redact(agreement.text, secrets),
        "parties": rows,
        "signers": signers,
        "mediator": case.assignee or recorder,
        "committee": committee,
        "copies": len(rows) + 1,
        "recorded_on": local_date(agreement.recorded_at),
        "original": full_ids is not None,
    }


def supervision_notice(escalation: Any, *, today: dt.date) -> dict[str, Any]:
    """督办单 (信访工作条例 Arts 38–40): issued by the supervising agency to the agency that owes
    the duty, numbered 督字〔year〕第N号 per issuer and year. The text states the facts at
    issue (due date, days overdue); when an extension was approved afterwards the table shows
    the new due date beside the original one, so text and table agree."""
    data = escalation.data or {}
    clock = escalation.clock
    issued_due = dt.date.fromisoformat(data["due"]) if data.get("due") else clock.due
    issued_days = data.get("days_overdue")
    if issued_days is None:
        issued_days = max((local_date(escalation.created_at) - issued_due).days, 0)
    addressee = data.get("responsible_agency") or escalation.case.holder_agency.name
    issuer = (
        escalation.issuer.name
        if escalation.issuer_id
        else (escalation.agency.name if escalation.agency_id else "")
    )
    return {
        "issuer_name": issuer,
        "addressee": addressee,
        "notice_label": escalation.notice_label,
        "issued_due": issued_due,
        "days_overdue_at_issue": issued_days,
        "current_due": clock.due,
        "due_moved": clock.due != issued_due,
        "days_overdue_now": max((today - clock.due).days, 0),
    }


# The registry of the case file's documents (issue 13 §4) -------------------------------------
#
# Each document is print-ready on A4 (web/docs/, print.css), carries the case number and is
# rendered in Chinese (`chinese_document`). Most are laid out by one template from a list of
# blocks (`web/docs/_generic_body.html`); the 受理告知书 and 人民调解协议书 keep their own. The
# dossier (`web/dossier.py`) strings the same bodies together in the §3.3 order.


@dataclass(frozen=True)
class DocumentSpec:
    slug: str
    title: str
    kinds: frozenset[str]
    served: bool = False  # a 送达回证 goes with it
    court: bool = False  # the court applied to for 司法确认 may print it


@dataclass
class DocumentLink:
    spec: DocumentSpec
    url: str
    title: str


D, P = CaseKind.DISPUTE, CaseKind.PETITION
BOTH = frozenset({D, P})
SPECS = [
    DocumentSpec("application", "人民调解申请书（受理登记表）", frozenset({D})),
    DocumentSpec("rights_notice", "当事人权利义务告知书", frozenset({D}), served=True),
    DocumentSpec("session_record", "人民调解记录", BOTH),
    DocumentSpec("agreement", "人民调解协议书", frozenset({D}), served=True, court=True),
    DocumentSpec("oral_agreement", "口头协议登记表", frozenset({D}), court=True),
    DocumentSpec("follow_up", "回访记录", frozenset({D})),
    DocumentSpec("closing_report", "结案报告表", frozenset({D})),
    DocumentSpec("termination_notice", "终止调解告知书", frozenset({D}), served=True),
    DocumentSpec("acceptance_notice", "信访事项受理告知书", frozenset({P}), served=True),
    DocumentSpec("not_accept_notice", "信访事项不予受理告知书", frozenset({P}), served=True),
    DocumentSpec("extension_notice", "延长信访事项办理期限告知书", frozenset({P}), served=True),
    DocumentSpec("opinion", "信访处理意见书", frozenset({P}), served=True),
    DocumentSpec("review_opinion", "信访事项复查意见书", frozenset({P}), served=True),
    DocumentSpec("rereview_opinion", "信访事项复核意见书", frozenset({P}), served=True),
    DocumentSpec("service_receipt", "送达回证", BOTH),
]
SPEC = {s.slug: s for s in SPECS}
HIDDEN_TEXT = "（保密）"


def _d(day: dt.date | dt.datetime | None) -> str:
    if day is None:
        return ""
    if isinstance(day, dt.datetime):
        day = local_date(day)
    return f"{day.year}年{day.month}月{day.day}日"


def _dt(at: dt.datetime) -> str:
    at = at.astimezone(SHANGHAI)
    return f"{at.year}年{at.month}月{at.day}日 {at:%H:%M}"


def _party_rows(case: Case, *, hidden: bool, on: dt.date) -> list[dict[str, Any]]:
    rows = []
    for cp in _parties(case):
        p = cp.party
        if hidden and cp.role != CasePartyRole.RESPONDENT:
            rows.append(
                {
                    "role": cp.get_role_display(),
                    "name": HIDDEN_TEXT,
                    "gender": "",
                    "age": "",
                    "id": HIDDEN_TEXT,
                    "phone": HIDDEN_TEXT,
                    "address": HIDDEN_TEXT,
                }
            )
            continue
        age = _age(p.birth_date, on)
        rows.append(
            {
                "role": cp.get_role_display(),
                "name": p.name,
                "gender": p.get_gender_display() if p.gender else "",
                "age": f"{age}岁" if age is not None else "",
                "id": p.id_number_masked,
                "phone": idnumbers.mask_phone(p.phone) if p.phone else "",
                "address": p.address,
            }
        )
    return rows


def _party_blocks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "type": "kv",
            "rows": [
                (r["role"], r["name"]),
                ("性别、年龄", "，".join(x for x in (r["gender"], r["age"]) if x) or "—"),
                ("身份证号", r["id"] or "—"),
                ("联系方式", r["phone"] or "—"),
                ("单位或住址", r["address"] or "—"),
            ],
        }
        for r in rows
    ]


def _sign(org: str, day: dt.date | None, seal: str = "（印章）") -> dict[str, Any]:
    return {"type": "sign", "org": org, "seal": seal, "date": _d(day)}


def _sigs(*labels: str) -> dict[str, Any]:
    return {"type": "sigs", "lines": list(labels)}


def _signers(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return _sigs(*[f"{r['role']} {r['name']}（签名、盖章或按指印）" for r in rows])


def _mediator(case: Case) -> str:
    return str(case.assignee) if case.assignee_id else ""


def _doc(
    case: Case, spec: DocumentSpec, blocks: list[dict[str, Any]], title: str = ""
) -> dict[str, Any]:
    return {"case": case, "spec": spec, "title": title or spec.title, "blocks": blocks}


def _secrets(case: Case, hidden: bool) -> list[str]:
    return protected_texts([case.pk]).get(case.pk, []) if hidden else []


def _application(case: Case, spec: DocumentSpec, hidden: bool, **_: Any) -> dict[str, Any]:
    s = _secrets(case, hidden)
    rows = _party_rows(case, hidden=hidden, on=case.received_on)
    return _doc(
        case,
        spec,
        [
            {
                "type": "kv",
                "rows": [
                    ("登记日期", _d(case.registered_at)),
                    ("纠纷类型", case.category.name if case.category_id else "—"),
                    ("案件来源", case.channel.name),
                    ("受理日期", _d(case.accepted_on) or "—"),
                    ("登记机构", case.registering_agency.name),
                ],
            },
            {"type": "h", "text": "当事人基本情况"},
            *_party_blocks(rows),
            {"type": "h", "text": "纠纷简要情况"},
            {"type": "text", "text": redact(case.description, s) or redact(case.title, s)},
            {"type": "h", "text": "申请事项"},
            {"type": "text", "text": redact(case.title, s)},
            _signers(rows),
            _sigs("登记人（签名）"),
            _sign(
                case.registering_agency.name,
                local_date(case.registered_at),
                "（人民调解委员会印章）",
            ),
        ],
    )


RIGHTS_TEXT = [
    "根据《中华人民共和国人民调解法》第二十三条、第二十四条的规定，当事人在人民调解活动中享有下列权利：",
    "（一）选择或者接受人民调解员；（二）接受调解、拒绝调解或者要求终止调解；"
    "（三）要求调解公开进行或者不公开进行；（四）自主表达意愿、自愿达成调解协议。",
    "当事人在人民调解活动中履行下列义务：",
    "（一）如实陈述纠纷事实；（二）遵守调解现场秩序，尊重人民调解员；（三）尊重对方当事人行使权利。",
    "人民调解不收取任何费用。经人民调解委员会调解达成的调解协议，具有法律约束力，当事人应当按照约定履行。"
    "调解不成的，当事人可以依法通过仲裁、行政、司法等途径维护自己的权利。",
]


def _rights_notice(case: Case, spec: DocumentSpec, hidden: bool, **_: Any) -> dict[str, Any]:
    rows = _party_rows(case, hidden=hidden, on=case.received_on)
    names = "、".join(r["name"] for r in rows)
    return _doc(
        case,
        spec,
        [
            {"type": "salutation", "text": f"{names}："},
            *({"type": "p", "text": t} for t in RIGHTS_TEXT),
            {"type": "p", "text": "以上内容已向我（们）告知，我（们）已知悉。"},
            _signers(rows),
            _sign(case.holder_agency.name, case.accepted_on or local_date(case.registered_at)),
        ],
    )


def _sessions(case: Case, spec: DocumentSpec, hidden: bool, **_: Any) -> dict[str, Any]:
    from mediation.casefiles.models import MediationSession

    s = _secrets(case, hidden)
    blocks: list[dict[str, Any]] = []
    sessions = MediationSession.objects.filter(case_id=case.pk).prefetch_related(
        "parties_present__party"
    )
    for i, m in enumerate(sessions, start=1):
        present = "、".join(
            f"{cp.get_role_display()}"
            + (HIDDEN_TEXT if hidden and cp.role != CasePartyRole.RESPONDENT else cp.party.name)
            for cp in m.parties_present.all()
        )
        blocks += [
            {"type": "h", "text": f"第{i}次调解"},
            {
                "type": "kv",
                "rows": [
                    ("调解时间", _dt(m.started_at)),
                    ("调解地点", m.place),
                    ("调解员", m.mediators),
                    ("到场当事人", present or "—"),
                    ("其他在场人员", redact(m.others_present, s) or "—"),
                    ("记录人", str(m.recorded_by)),
                ],
            },
            {"type": "text", "text": redact(m.content, s)},
            _sigs("当事人（签名或按指印）", "调解员（签名）", "记录人（签名）"),
        ]
    if not blocks:
        blocks = [{"type": "p", "text": "本案尚无调解记录。"}]
    return _doc(case, spec, blocks)


def _oral(case: Case, spec: DocumentSpec, hidden: bool, **_: Any) -> dict[str, Any]:
    from mediation.casefiles.models import OralAgreementRecord

    s = _secrets(case, hidden)
    rows = _party_rows(case, hidden=hidden, on=local_date(case.registered_at))
    blocks: list[dict[str, Any]] = [{"type": "h", "text": "当事人基本情况"}, *_party_blocks(rows)]
    records = list(OralAgreementRecord.objects.filter(case_id=case.pk).select_related("agreement"))
    if not records:
        blocks.append({"type": "p", "text": "本案尚无口头协议登记。"})
    for r in records:
        blocks += [
            {
                "type": "kv",
                "rows": [
                    ("达成协议日期", _d(r.agreement.effective_on)),
                    ("履行方式和期限", redact(r.performance, s) or "—"),
                    ("登记人", str(r.registered_by)),
                    ("登记日期", _d(r.registered_at)),
                ],
            },
            {"type": "h", "text": "纠纷简要情况"},
            {"type": "text", "text": redact(r.facts, s)},
            {"type": "h", "text": "协议内容"},
            {"type": "text", "text": redact(r.content, s)},
            {
                "type": "p",
                "text": "以上协议内容经人民调解员记录并向当事人宣读，当事人确认无误。"
                "口头调解协议自各方当事人达成协议之日起生效（《中华人民共和国人民调解法》第三十条）。",
            },
        ]
    blocks += [_signers(rows), _sigs("人民调解员（签名）")]
    return _doc(case, spec, blocks)


def _follow_up(case: Case, spec: DocumentSpec, hidden: bool, **_: Any) -> dict[str, Any]:
    from mediation.casefiles.models import FollowUpVisit

    s = _secrets(case, hidden)
    blocks: list[dict[str, Any]] = []
    visits = FollowUpVisit.objects.filter(case_id=case.pk).select_related(
        "visited_party__party", "agreement", "visitor"
    )
    for i, v in enumerate(visits, start=1):
        who = "—"
        if v.visited_party_id:
            cp = v.visited_party
            who = (
                HIDDEN_TEXT
                if hidden and cp.role != CasePartyRole.RESPONDENT
                else f"{cp.get_role_display()} {cp.party.name}"
            )
        blocks += [
            {"type": "h", "text": f"第{i}次回访" + ("（结案回访）" if v.final else "")},
            {
                "type": "kv",
                "rows": [
                    ("当事人", who),
                    ("调解协议编号", f"{case.number}" if v.agreement_id else "—"),
                    ("回访事由", redact(v.reason, s) or "—"),
                    ("履行情况", v.get_performance_display()),
                    ("当事人满意度", v.get_satisfaction_display()),
                    ("是否起诉", "是" if v.lawsuit else "否"),
                    ("有无激化风险", v.get_risk_display()),
                    ("采取的措施", redact(v.measures, s) or "—"),
                    ("回访人", str(v.visitor)),
                    ("回访日期", _d(v.visited_on)),
                ],
            },
        ]
    if not blocks:
        blocks = [{"type": "p", "text": "本案尚无回访记录。"}]
    return _doc(case, spec, blocks)


def _closing(case: Case, spec: DocumentSpec, hidden: bool, **_: Any) -> dict[str, Any]:
    from mediation.casefiles.models import FollowUpVisit

    s = _secrets(case, hidden)
    final = FollowUpVisit.objects.filter(case_id=case.pk, final=True).order_by("-pk").first()
    closed_on = (
        final.visited_on if final else (local_date(case.closed_at) if case.closed_at else None)
    )
    return _doc(
        case,
        spec,
        [
            {
                "type": "kv",
                "rows": [
                    ("案件名称", redact(case.title, s)),
                    ("受案时间", _d(case.accepted_on) or _d(case.registered_at)),
                    ("结案时间", _d(closed_on) or "（尚未结案）"),
                    ("案件来源", case.channel.name),
                    ("纠纷类型", case.category.name if case.category_id else "—"),
                    ("调解员", _mediator(case) or "—"),
                    ("调解结果", case.state_label),
                ],
            },
            {"type": "h", "text": "纠纷简要事实"},
            {"type": "text", "text": redact(case.description, s) or "—"},
            {"type": "h", "text": "处理结果"},
            {"type": "text", "text": redact(case.outcome_note, s) or case.state_label},
            _sigs("承办人（签名）", "负责人（签名）"),
            _sign(case.holder_agency.name, closed_on),
        ],
    )


def _event_data(case: Case, name: str) -> tuple[Any, dict[str, Any]]:
    from mediation.cases.models import CaseEvent

    event = CaseEvent.objects.filter(case=case, transition=name).order_by("-version").first()
    return event, (event.data or {}) if event else {}


def _salute(case: Case, hidden: bool, roles: tuple[str, ...]) -> str:
    rows = [r for r in _party_rows(case, hidden=hidden, on=dt.date.today()) if r["role"]]
    names = [r["name"] for r, cp in zip(rows, _parties(case), strict=False) if cp.role in roles]
    return ("、".join(dict.fromkeys(names)) or "当事人") + "："


def _termination(case: Case, spec: DocumentSpec, hidden: bool, **_: Any) -> dict[str, Any]:
    s = _secrets(case, hidden)
    event, data = _event_data(case, "close_failed")
    return _doc(
        case,
        spec,
        [
            {"type": "salutation", "text": _salute(case, hidden, tuple(CasePartyRole.values))},
            {
                "type": "p",
                "text": f"你们之间的“{redact(case.title, s)}”纠纷，本委员会于"
                f"{_d(case.accepted_on)}受理后进行了调解。",
            },
            {
                "type": "p",
                "text": "因"
                + redact(str(data.get("reason") or case.outcome_note or "调解不成"), s)
                + "，根据《中华人民共和国人民调解法》第二十六条的规定，本委员会决定终止调解。",
            },
            {
                "type": "p",
                "text": "你们可以依法通过仲裁、行政、司法等途径维护自己的权利。",
            },
            {"type": "p", "text": "特此告知。"},
            _sign(
                case.holder_agency.name,
                local_date(event.at) if event else None,
                "（人民调解委员会印章）",
            ),
        ],
    )


PETITIONERS = (CasePartyRole.PETITIONER, CasePartyRole.REPRESENTATIVE)


def _not_accept(case: Case, spec: DocumentSpec, hidden: bool, **_: Any) -> dict[str, Any]:
    s = _secrets(case, hidden)
    event, data = _event_data(case, "not_accept")
    again = data.get("basis") == "final"
    title = "信访事项不再受理告知书" if again else spec.title
    basis = dict(NOT_ACCEPT_BASES).get(data.get("basis", ""), "")
    return _doc(
        case,
        spec,
        [
            {"type": "salutation", "text": _salute(case, hidden, PETITIONERS)},
            {
                "type": "p",
                "text": f"你（们）于{_d(case.received_on)}通过{case.channel.name}方式反映的"
                f"“{redact(case.title, s)}”信访事项收悉。",
            },
            {
                "type": "p",
                "text": "经审查，"
                + redact(str(data.get("reason") or case.outcome_note), s)
                + (f"（{basis}）" if basis else "")
                + "，根据《信访工作条例》有关规定，本机关决定"
                + ("不再受理" if again else "不予受理")
                + "。",
            },
            {"type": "p", "text": "特此告知。"},
            _sign(case.holder_agency.name, local_date(event.at) if event else None),
        ],
        title=title,
    )


def _extension(case: Case, spec: DocumentSpec, hidden: bool, **_: Any) -> dict[str, Any]:
    from mediation.cases.models import Extension

    s = _secrets(case, hidden)
    ext = Extension.objects.filter(case=case).order_by("-recorded_at").first()
    clock = Clock.objects.filter(case=case, rule_code="petition.handle_extended").first()
    return _doc(
        case,
        spec,
        [
            {"type": "salutation", "text": _salute(case, hidden, PETITIONERS)},
            {
                "type": "p",
                "text": f"你（们）反映的“{redact(case.title, s)}”信访事项，本机关已于"
                f"{_d(case.accepted_on)}受理。",
            },
            {
                "type": "p",
                "text": "因"
                + (redact(ext.reason, s) if ext else "情况复杂")
                + "，经本机关负责人批准，根据《信访工作条例》第三十四条规定，办理期限延长30日"
                + (f"，至{_d(clock.due)}" if clock else "")
                + "。",
            },
            {"type": "p", "text": "特此告知。"},
            _sign(case.holder_agency.name, ext.petitioner_notified_on if ext else None),
        ],
    )


def _opinion_builder(stage: str) -> Any:
    def build(case: Case, spec: DocumentSpec, hidden: bool, **_: Any) -> dict[str, Any]:
        from mediation.cases.models import Opinion

        s = _secrets(case, hidden)
        op = (
            Opinion.objects.filter(case=case, stage=stage)
            .select_related("issuing_agency")
            .order_by("-issued_at")
            .first()
        )
        if op is None:
            return _doc(case, spec, [{"type": "p", "text": "尚未出具。"}])
        article = {"handling": "第三十二条", "review": "第三十五条", "rereview": "第三十六条"}[
            stage
        ]
        blocks = [
            {"type": "salutation", "text": _salute(case, hidden, PETITIONERS)},
            {
                "type": "p",
                "text": f"你（们）反映的“{redact(case.title, s)}”信访事项，"
                f"本机关依照《信访工作条例》{article}的规定进行了办理，现提出意见如下：",
            },
            {"type": "text", "text": redact(op.text, s)},
            {"type": "p", "text": f"处理结论：{op.get_result_display()}。"},
        ]
        if stage == "handling":
            blocks.append(
                {
                    "type": "p",
                    "text": "如对本处理意见不服，可以自收到本意见书之日起30日内"
                    "请求原办理机关的上一级机关复查。",
                }
            )
        elif stage == "review":
            blocks.append(
                {
                    "type": "p",
                    "text": "如对本复查意见不服，可以自收到本意见书之日起30日内"
                    "向复查机关的上一级机关请求复核。",
                }
            )
        else:
            blocks.append(
                {
                    "type": "p",
                    "text": "本复核意见为终结意见。信访人对复核意见不服，"
                    "仍以同一事实和理由提出投诉请求的，"
                    "不再受理（《信访工作条例》第三十六条第三款）。",
                }
            )
        blocks.append(_sign(op.issuing_agency.name, local_date(op.issued_at)))
        return _doc(case, spec, blocks)

    return build


def _receipt(
    case: Case, spec: DocumentSpec, hidden: bool, of: str = "", **_: Any
) -> dict[str, Any]:
    served = SPEC.get(of)
    roles = PETITIONERS if case.kind == CaseKind.PETITION else tuple(CasePartyRole.values)
    rows = [
        (r["role"], r["name"])
        for r, cp in zip(
            _party_rows(case, hidden=hidden, on=dt.date.today()), _parties(case), strict=False
        )
        if cp.role in roles
    ]
    table = []
    for role, name in rows or [("受送达人", "")]:
        table += [
            ("受送达人", f"{role} {name}"),
            ("签收（签名或按指印）", ""),
            ("签收日期", "年　　月　　日"),
        ]
    return _doc(
        case,
        spec,
        [
            {
                "type": "kv",
                "rows": [
                    ("送达文书", f"{served.title if served else '—'}（{case.number}）"),
                    ("送达机关", case.holder_agency.name),
                    ("送达方式", "直接送达 / 邮寄送达 / 电子送达 / 留置送达"),
                    *table,
                    ("送达人（签名）", ""),
                    ("备注", ""),
                ],
            },
            _sign(case.holder_agency.name, None),
        ],
    )


BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "application": _application,
    "rights_notice": _rights_notice,
    "session_record": _sessions,
    "oral_agreement": _oral,
    "follow_up": _follow_up,
    "closing_report": _closing,
    "termination_notice": _termination,
    "not_accept_notice": _not_accept,
    "extension_notice": _extension,
    "opinion": _opinion_builder("handling"),
    "review_opinion": _opinion_builder("review"),
    "rereview_opinion": _opinion_builder("rereview"),
    "service_receipt": _receipt,
}


def document_available(case: Case, slug: str) -> bool:
    """Whether the case has what document `slug` is made of."""
    from mediation.casefiles.models import FollowUpVisit, MediationSession, OralAgreementRecord
    from mediation.cases.models import CaseEvent, Extension, Opinion

    spec = SPEC.get(slug)
    if spec is None or case.kind not in spec.kinds:
        return False
    if slug in ("application", "rights_notice", "service_receipt"):
        return True
    if slug == "session_record":
        return MediationSession.objects.filter(case_id=case.pk).exists()
    if slug == "agreement":
        return bool(_written_agreements(case))
    if slug == "oral_agreement":
        return OralAgreementRecord.objects.filter(case_id=case.pk).exists()
    if slug == "follow_up":
        return FollowUpVisit.objects.filter(case_id=case.pk).exists()
    if slug == "closing_report":
        return case.closed_at is not None
    if slug == "termination_notice":
        return case.state == "closed_failed"
    if slug == "acceptance_notice":
        return acceptance_notice_available(case)
    if slug == "not_accept_notice":
        return CaseEvent.objects.filter(case=case, transition="not_accept").exists()
    if slug == "extension_notice":
        return Extension.objects.filter(case=case).exists()
    stage = {"opinion": "handling", "review_opinion": "review", "rereview_opinion": "rereview"}
    if slug in stage:
        return Opinion.objects.filter(case=case, stage=stage[slug]).exists()
    return False


def _written_agreements(case: Case) -> list[Agreement]:
    from mediation.cases.models import AgreementForm

    return list(
        Agreement.objects.filter(case=case)
        .exclude(form=AgreementForm.ORAL)
        .select_related("recorded_by", "recorded_by__agency")
        .order_by("recorded_at")
    )


def may_print(spec: DocumentSpec, access: Any) -> bool:
    """The file's side prints everything; the court applied to the agreements; a past holder
    or referrer (反馈) only the 受理告知书, as before."""
    if access.full:
        return True
    if access.court:
        return spec.court
    return access.feedback and spec.slug == "acceptance_notice"


def build_document(case: Case, slug: str, *, hidden: bool, of: str = "") -> dict[str, Any]:
    spec = SPEC[slug]
    return BUILDERS[slug](case, spec, hidden, of=of)


def documents_for(case: Case, *, hidden: bool, access: Any) -> list[DocumentLink]:
    """The documents of the case this viewer may print, in the registry's order; a 送达回证
    follows each served document."""
    from django.urls import reverse

    out: list[DocumentLink] = []
    for spec in SPECS:
        if spec.slug in ("service_receipt",) or not may_print(spec, access):
            continue
        if not document_available(case, spec.slug):
            continue
        if spec.slug == "agreement":
            agreements = _written_agreements(case)
            for i, a in enumerate(agreements, start=1):
                suffix = f"（{i}）" if len(agreements) > 1 else ""
                url = reverse("web:print_agreement", args=[case.pk, a.pk])
                out.append(DocumentLink(spec, url, spec.title + suffix))
        elif spec.slug == "acceptance_notice":
            out.append(
                DocumentLink(
                    spec, reverse("web:print_acceptance_notice", args=[case.pk]), spec.title
                )
            )
        else:
            out.append(
                DocumentLink(
                    spec, reverse("web:print_document", args=[case.pk, spec.slug]), spec.title
                )
            )
        if spec.served and access.full:
            url = (
                reverse("web:print_document", args=[case.pk, "service_receipt"])
                + f"?of={spec.slug}"
            )
            out.append(DocumentLink(SPEC["service_receipt"], url, f"送达回证（{spec.title}）"))
    return out
