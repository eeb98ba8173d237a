"""Object-level access to cases: the one place the web pages, the API and the admin ask.

A user sees and acts on cases held by their agency or referred to it (a pending or accepted
referral); supervisors and administrators also see cases of the agencies below theirs; nobody
else sees the case at all (callers answer 404, not 403, so existence does not leak).
Superusers see everything (the admin site's operators).

Lists must filter with `cases_visible_to(user)`: DRF and the admin apply object permissions to
single objects only (RELIABILITY.md §5.1, ASVS 8.2.2).
"""

from __future__ import annotations

from django.db import connection
from django.db.models import BooleanField, Exists, F, Func, OuterRef, Q, QuerySet, Subquery
from django.utils.translation import gettext as _

from mediation.accounts.models import User
from mediation.agencies.models import Agency
from mediation.cases.models import Case, Referral, ReferralStatus
from mediation.cases.permissions import scope_agency_ids
from mediation.core.errors import NotFound


def cases_visible_to(user: User, queryset: QuerySet[Case] | None = None) -> QuerySet[Case]:
    qs = Case.objects.all() if queryset is None else queryset
    if user.is_authenticated and user.is_active and user.is_superuser:
        return qs
    ids = scope_agency_ids(user)
    if not ids:
        return qs.none()
    live = [ReferralStatus.PENDING, ReferralStatus.ACCEPTED]
    if connection.vendor == "postgresql":
        # `id = ANY(ARRAY(SELECT case_id …))` is an index condition (the array is computed once,
        # as an InitPlan), so PostgreSQL ORs two index scans. The EXISTS form below is only a
        # filter, and an OR with it reads the whole case table (0.5 s at a million cases).
        referred_ids = (
            Referral.objects.filter(to_agency_id__in=ids, status__in=live)
            .order_by()
            .values("case_id")
        )
        return qs.filter(Q(holder_agency_id__in=ids) | Q(_AnyOfSubquery(F("pk"), referred_ids)))
    referred = Referral.objects.filter(
        case_id=OuterRef("pk"), to_agency_id__in=ids, status__in=live
    )
    return qs.filter(Q(holder_agency_id__in=ids) | Exists(referred))


class _AnyOfSubquery(Func):
    """`<column> = ANY(ARRAY(<subquery>))` (PostgreSQL)."""

    arg_joiner = " = ANY(ARRAY"
    template = "%(expressions)s)"
    output_field = BooleanField()

    def __init__(self, column: F, subquery: QuerySet) -> None:
        super().__init__(column, Subquery(subquery))


def case_get_visible(user: User, case_id: int) -> Case:
    """The case as its kind's proxy, or NotFound if it does not exist or is out of scope."""
    case = cases_visible_to(user).filter(pk=case_id).select_related("holder_agency").first()
    if case is None:
        raise NotFound(_("案件不存在或您无权查看。"))
    return case.as_proxy()


def identity_hidden_from(user: User, case: Case) -> bool:
    """检举控告: the petitioner's identity is hidden from the accused agency and those below it.

    Supervisors above the accused agency still see it; the accused agency's own staff, even
    when the matter is forwarded to them, see only "（保密）".
    """
    if not case.involves_accusation or case.accused_agency_id is None:
        return False
    if user.is_superuser:
        return False
    if user.agency_id is None:
        return True
    accused: Agency = case.accused_agency
    return user.agency_id in accused.descendant_ids()
