"""Who may see and download what of the case file. Built on the one visibility rule
(`cases.selectors.case_get_visible`, `case_access`, `identity_hidden_from`):

- full (the file's side, the receiver, the reviewer): every attachment but withdrawn ones,
  the session records and visits, the dossier PDF;
- court (applied to for 司法确认): identity proofs, powers of attorney, evidence, agreements
  and 司法确认 papers; no records, no dossier;
- feedback (past holder, referrer): progress and outcome only: no attachments, no records;
- identity hidden (检举控告, the accused agency): no attachment (a file's name or content may
  name the accuser), session records redacted with the present parties （保密）, no dossier;
- superusers (the admin site): everything, withdrawn attachments too (marked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from mediation.accounts.models import User
from mediation.casefiles.models import (
    DOCUMENT_ORDER,
    Attachment,
    DocumentType,
    FollowUpVisit,
    MediationSession,
    OralAgreementRecord,
)
from mediation.cases.models import Case, CasePartyRole
from mediation.cases.selectors import (
    HIDDEN,
    case_access,
    identity_hidden_from,
    protected_texts,
    redact,
)

# What the court applied to for 司法确认 reviews (民诉法 Art 205; 人民调解法 Art 33).
COURT_DOC_TYPES = frozenset(
    {
        DocumentType.IDENTITY,
        DocumentType.POWER_OF_ATTORNEY,
        DocumentType.EVIDENCE,
        DocumentType.AGREEMENT,
        DocumentType.CONFIRMATION,
    }
)


@dataclass(frozen=True)
class FileRights:
    attachments: str  # "all", "court" or "none"
    records: bool  # session records, follow-up visits, oral-agreement registers
    dossier: bool
    withdrawn: bool  # sees withdrawn attachments (administrators)
    hidden: bool  # 检举控告: the petitioner is hidden from this viewer


def file_rights(user: User, case: Case) -> FileRights:
    access = case_access(user, case)
    hidden = identity_hidden_from(user, case)
    superuser = bool(user.is_authenticated and user.is_superuser)
    if hidden:
        return FileRights("none", access.full, False, False, True)
    if access.full:
        return FileRights("all", True, True, superuser, False)
    if access.court:
        return FileRights("court", False, False, False, False)
    return FileRights("none", False, False, False, False)


def attachments_for(user: User, case: Case, rights: FileRights | None = None) -> list[Attachment]:
    """The attachments this viewer may see, in the §3.3 index order, then by upload time."""
    rights = rights or file_rights(user, case)
    if rights.attachments == "none":
        return []
    qs: QuerySet[Attachment] = Attachment.objects.filter(case_id=case.pk).select_related(
        "uploaded_by", "withdrawn_by"
    )
    if not rights.withdrawn:
        qs = qs.filter(withdrawn_at__isnull=True)
    if rights.attachments == "court":
        qs = qs.filter(doc_type__in=COURT_DOC_TYPES)
    return sorted(qs, key=lambda a: (DOCUMENT_ORDER.get(a.doc_type, 99), a.uploaded_at, a.pk))


def attachment_get_for(user: User, case: Case, attachment_id: int) -> Attachment | None:
    for a in attachments_for(user, case):
        if a.pk == attachment_id and a.withdrawn_at is None:
            return a
    return None


@dataclass
class SessionView:
    session: MediationSession
    parties_present: list[str]
    content: str
    others_present: str


def sessions_for(user: User, case: Case, rights: FileRights | None = None) -> list[SessionView]:
    """Session records as this viewer may read them (redacted for a hidden viewer)."""
    rights = rights or file_rights(user, case)
    if not rights.records:
        return []
    secrets = protected_texts([case.pk]).get(case.pk, []) if rights.hidden else []
    out = []
    for s in MediationSession.objects.filter(case_id=case.pk).prefetch_related(
        "parties_present__party"
    ):
        present = [
            f"{cp.get_role_display()} "
            + (HIDDEN if rights.hidden and cp.role != CasePartyRole.RESPONDENT else cp.party.name)
            for cp in s.parties_present.all()
        ]
        out.append(
            SessionView(
                session=s,
                parties_present=present,
                content=redact(s.content, secrets),
                others_present=redact(s.others_present, secrets),
            )
        )
    return out


def visits_for(user: User, case: Case, rights: FileRights | None = None) -> list[FollowUpVisit]:
    rights = rights or file_rights(user, case)
    if not rights.records or rights.hidden:
        return []
    return list(
        FollowUpVisit.objects.filter(case_id=case.pk).select_related(
            "visited_party__party", "visitor", "agreement"
        )
    )


def oral_records_for(
    user: User, case: Case, rights: FileRights | None = None
) -> list[OralAgreementRecord]:
    rights = rights or file_rights(user, case)
    if not rights.records or rights.hidden:
        return []
    return list(OralAgreementRecord.objects.filter(case_id=case.pk).select_related("agreement"))


def case_file_context(user: User, case: Case) -> dict[str, Any]:
    rights = file_rights(user, case)
    return {
        "file_rights": rights,
        "attachments": attachments_for(user, case, rights),
        "sessions": sessions_for(user, case, rights),
        "visits": visits_for(user, case, rights),
        "oral_records": oral_records_for(user, case, rights),
    }


def followup_satisfaction_by_agency_month(
    *, agency_ids: QuerySet | None, date_from: Any, date_to: Any
) -> list[dict[str, Any]]:
    """The mediators' own 回访 satisfaction (the follow-up visit records), per holding agency
    and month of the visit: kept apart from the parties' own ratings (`mediation.public`)."""
    from django.db.models import Count, Q
    from django.db.models.functions import TruncMonth

    qs = FollowUpVisit.objects.filter(visited_on__gte=date_from, visited_on__lte=date_to)
    if agency_ids is not None:
        qs = qs.filter(case__holder_agency_id__in=agency_ids)
    rows = (
        qs.annotate(month=TruncMonth("visited_on"))
        .values("case__holder_agency_id", "case__holder_agency__name", "month")
        .annotate(
            total=Count("pk"),
            satisfied=Count("pk", filter=Q(satisfaction="satisfied")),
            basic=Count("pk", filter=Q(satisfaction="basic")),
            unsatisfied=Count("pk", filter=Q(satisfaction="unsatisfied")),
        )
        .order_by("case__holder_agency__name", "month")
    )
    out = []
    for r in rows:
        r = dict(r)
        r["agency__name"] = r.pop("case__holder_agency__name")
        r["rate"] = (r["satisfied"] + r["basic"]) / r["total"] if r["total"] else None
        out.append(r)
    return out
