"""User-facing names for codes the domain stores as plain strings.

The deadline policy is pure Python without gettext, so its rule labels are repeated here as
translatable strings (a test checks that every rule code has one). Event data keys and the
choice values that step forms write into `CaseEvent.data` get their labels here too.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from mediation.cases.models import (
    AgreementForm,
    OpinionResult,
    OpinionStage,
    PetitionType,
    ReferralKind,
    RiskLevel,
)
from mediation.cases.steps import DIVERT_PROCEDURES, NOT_ACCEPT_BASES, TRANSFER_TARGETS
from mediation.deadlines import policy

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


# Non-transition events written by the services.
EVENT_LABELS = {
    "register": _("登记"),
    "pause_clock": _("暂停期限"),
    "resume_clock": _("恢复期限"),
    "refer_to_mediation": _("转人民调解（访调对接）"),
    "escalation_acknowledge": _("签收督办"),
    "escalation_reassign": _("督办改派"),
    "escalation_approve_extension": _("督办批准延期"),
    "escalation_note": _("下达督办意见"),
    "escalation_resolve": _("督办办结"),
}

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
}
# Ids of other rows: shown through the timeline's own look-ups or not at all.
HIDDEN_DATA_KEYS = {"referral", "agreement", "opinion", "clocks", "escalation_id", "clock_id"}
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
}
