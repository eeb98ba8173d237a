"""移送待接收: cases referred to my agency, with their acknowledgement clocks."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from mediation.cases.labels import rule_label
from mediation.cases.selectors import ack_clocks_by_case, referral_inbox_for
from mediation.web import selectors
from mediation.web.views.common import RequestClock, paginate


@never_cache
@login_required
def referral_inbox(request: HttpRequest) -> HttpResponse:
    rc = RequestClock()
    page = paginate(request, referral_inbox_for(request.user))
    referrals = list(page.object_list)
    clocks = ack_clocks_by_case(r.case_id for r in referrals)
    rows = []
    for r in referrals:
        case_clocks = [
            (c, selectors.urgency_of(c.due_at, now=rc.now, calendar=rc.calendar))
            for c in clocks.get(r.case_id, [])
        ]
        rows.append({"referral": r, "case": r.case, "clocks": case_clocks})
    return render(
        request,
        "web/referrals/inbox.html",
        {"nav": "referrals", "page": page, "rows": rows, "rule_label": rule_label},
    )
