"""The one set of labels: states, event kinds, rule codes and the values events record.

The admin, the web pages, the API and the statistics all name things through this module:
- states: `state_label(kind, state)` (the machines' TextChoices);
- events: `event_label(kind, name, from_state)` (`EventKind`, with a transition's own label
  where the two machines differ, e.g. 延期 / 延期（≤30日）);
- rule codes: `rule_label(code)`. The deadline policy is pure Python without gettext, so its
  rule labels are repeated here as translatable strings (a test checks every code has one);
- the keys and choice values that steps write into `CaseEvent.data`.
"""

from __future__ import annotations

import functools

from django.utils.translation import gettext_lazy as _

from mediation.casefiles.models import DocumentType, EscalationRisk, Performance
from mediation.cases.models import (
    STATE_LABELS,
    AgreementForm,
    CaseKind,
    Dispute,
    EventKind,
    OpinionResult,
    OpinionStage,
    Petition,
    PetitionType,
    ReferralKind,
    RiskLevel,
)
from mediation.cases.steps import DIVERT_PROCEDURES, NOT_ACCEPT_BASES, TRANSFER_TARGETS
from mediation.deadlines import policy


def state_label(kind: str, state: str) -> str:
    if not state:
        return ""
    return str(STATE_LABELS.get(kind, {}).get(state, state))


@functools.cache
def _transition_labels() -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for kind, model in ((CaseKind.DISPUTE, Dispute), (CaseKind.PETITION, Petition)):
        for t in model._meta.get_field("state").get_all_transitions(model):
            out[(str(kind), t.name)] = str(t.custom.get("label", t.name))
    return out


def transition_label(kind: str, name: str) -> str:
    """The label of a transition of `kind`'s machine (or of the event kind)."""
    label = _transition_labels().get((str(kind), name))
    if label is not None:
        return label
    return event_kind_label(name)


def event_kind_label(name: str) -> str:
    try:
        return str(EventKind(name).label)
    except ValueError:
        return name


def event_label(kind: str, name: str, from_state: str | None = None) -> str:
    """What an event is called on timelines, in the admin and in the API."""
    if name == EventKind.REGISTER and from_state == "":
        # The event that created the case: a dispute is registered, a petition received.
        return str(_("登记") if kind == CaseKind.DISPUTE else _("收到"))
    return transition_label(kind, name)


def event_kind_choices() -> list[tuple[str, str]]:
    """(value, label) of every event kind, sorted by label (list filters)."""
    return sorted(((k.value, str(k.label)) for k in EventKind), key=lambda item: item[1])


RULE_LABELS = {
    "petition.route": _("信访事项登记转送交办期限"),
    "petition.notify": _("是否受理告知期限"),
    "petition.objection": _("不属于职权范围异议期限"),
    "petition.handle": _("信访事项办理期限"),
    "petition.handle_extended": _("信访事项延长后办理期限"),
    "petition.review_request": _("请求复查期限"),
    "petition.review": _("复查意见期限"),
    "petition.rereview_request": _("请求复核期限"),
    "petition.rereview": _("复核意见期限（听证时间不计入）"),
    "dispute.triage": _("矛盾纠纷研判分流期限"),
    "dispute.assign_ack": _("交办签收确认期限"),
    "dispute.mediate": _("人民调解期限"),
    "dispute.mediate_month": _("人民调解期限（一个月）"),
    "dispute.court_entrusted": _("委派调解期限"),
    "dispute.labour": _("劳动争议调解期限"),
    "dispute.medical": _("医疗纠纷调解期限"),
    "dispute.followup": _("履行情况回访期限"),
    "referral.police_ack": _("警调对接签收期限"),
    "confirmation.apply": _("申请司法确认期限"),
    "confirmation.decide": _("司法确认审查期限（法定上限）"),
    "confirmation.decide_target": _("司法确认审查期限（目标）"),
    "admin_review.apply": _("申请行政复议期限"),
    "admin_review.accept": _("行政复议受理审查期限"),
    "admin_review.decide": _("行政复议决定期限"),
    "online.appoint": _("法院指定调解员期限"),
    "escalation.ack": _("督办签收期限"),
}

CLOCK_KIND_LABELS = {
    "duty": _("办理期限"),
    "window": _("当事人申请期限"),
    "watch": _("外部机关期限（仅供参考）"),
}

# Acknowledgement clocks shown in the referral inbox.
ACK_RULES = ("dispute.assign_ack", "referral.police_ack", "petition.notify", "petition.objection")


def rule_label(code: str) -> str:
    label = RULE_LABELS.get(code)
    if label is not None:
        return str(label)
    try:
        return policy.get_rule(code).label
    except policy.UnknownRule:
        return code


def rule_basis(code: str) -> str:
    try:
        return policy.get_rule(code).basis
    except policy.UnknownRule:
        return ""


# Actions recorded in an escalation's 督办单 notes.
NOTE_ACTIONS = {
    "acknowledge": _("签收"),
    "reassign": _("改派"),
    "extend": _("批准延期"),
    "note": _("督办意见"),
    "resolve": _("办结"),
}

# Keys of CaseEvent.data, in display order.
DATA_LABELS = {
    "number": _("案号"),
    "parties": _("当事人"),
    "risk_level": _("风险等级"),
    "category": _("类型"),
    "to_agency": _("接收机构"),
    "from_agency": _("原承办机构"),
    "referral_kind": _("对接类型"),
    "mode": _("方式"),
    "report_due": _("报告期限"),
    "accepted_on": _("受理日期"),
    "notice_served_on": _("受理告知书送达日期"),
    "assignee": _("承办人"),
    "reason": _("理由"),
    "basis": _("依据"),
    "target": _("转出去向"),
    "procedure": _("法定程序"),
    "external_reference": _("外部案号"),
    "extra_days": _("延长天数"),
    "parties_consented": _("双方当事人同意"),
    "approver": _("批准人"),
    "petitioner_notified_on": _("告知信访人日期"),
    "form": _("协议形式"),
    "effective_on": _("生效日期"),
    "performance_due_on": _("履行期限"),
    "court": _("受理法院"),
    "applied_on": _("申请日期"),
    "ruling_number": _("确认裁定书案号"),
    "decided_on": _("裁定日期"),
    "visited_on": _("回访日期"),
    "performed": _("协议已履行"),
    "satisfaction": _("满意度"),
    "petition_type": _("信访类型"),
    "stage": _("阶段"),
    "result": _("结论"),
    "served_on": _("送达日期"),
    "received_on": _("申请收到日期"),
    "routes_explained": _("已告知其他解决途径"),
    "spawned_from": _("来源信访事项"),
    "dispute": _("转出的纠纷案件"),
    "rule": _("期限"),
    "on": _("日期"),
    "due": _("到期日"),
    "level": _("督办层级"),
    "from_assignee": _("原承办人"),
    "to_assignee": _("新承办人"),
    "old_due": _("原到期日"),
    "new_due": _("新到期日"),
    "doc_type": _("材料类型"),
    "file_name": _("文件名"),
    "session_at": _("调解时间"),
    "place": _("调解地点"),
    "mediators": _("调解员"),
    "performance": _("履行情况"),
    "risk": _("激化风险"),
}
# Ids of other rows: shown through the timeline's own look-ups or not at all.
HIDDEN_DATA_KEYS = {
    "referral",
    "agreement",
    "opinion",
    "clocks",
    "escalation_id",
    "clock_id",
    "attachment",
    "session",
    "visit",
    "oral_record",
}
AGENCY_KEYS = {"to_agency", "from_agency", "court"}
USER_KEYS = {"assignee", "approver", "from_assignee", "to_assignee"}
CASE_KEYS = {"spawned_from", "dispute"}

CLOCK_CHANGE_LABELS = {
    "started": _("开始计时"),
    "stopped": _("停止计时"),
    "recomputed": _("重新计算"),
}

SATISFACTION = {
    "satisfied": _("满意"),
    "basic": _("基本满意"),
    "unsatisfied": _("不满意"),
}
CLOSE_REASONS = {
    "satisfied": _("信访人满意/无异议"),
    "window_lapsed": _("申请复查/复核期限届满"),
    "mediated": _("调解/和解结案"),
}

CHOICE_LABELS: dict[str, dict[str, object]] = {
    "risk_level": dict(RiskLevel.choices),
    "referral_kind": dict(ReferralKind.choices),
    "mode": dict(ReferralKind.choices),
    "form": dict(AgreementForm.choices),
    "result": dict(OpinionResult.choices),
    "stage": dict(OpinionStage.choices),
    "petition_type": dict(PetitionType.choices),
    "target": dict(TRANSFER_TARGETS),
    "procedure": dict(DIVERT_PROCEDURES),
    "basis": dict(NOT_ACCEPT_BASES),
    "satisfaction": SATISFACTION,
    "doc_type": dict(DocumentType.choices),
    "performance": dict(Performance.choices),
    "risk": dict(EscalationRisk.choices),
}
