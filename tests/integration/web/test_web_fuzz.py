"""Property-based fuzzing of every web URL (hypothesis), beside the API's schemathesis test.

For every URL pattern of the staff pages (`mediation.web.urls`, the health page and the
language switch), as a signed-in user of each role, hypothesis draws the path parameters (real
ids of cases, parties, agreements and escalations, names of transitions and actions, and odd
values: ids beyond bigint, unknown names), a method (GET or POST) and a set of GET and POST
parameters. The names come from every form and every `request.GET` / `request.POST` read of
the views; the values are text of any kind (control characters, NUL, right-to-left marks,
full-width and other-script digits, huge strings), numbers in and far out of range, dates from
year 1 to 9999, real ids and choice values. The one assertion: no response is a 5xx. Django's
test client re-raises a view's exception, so a crash fails the test with its traceback.

Bounded for CI: WEB_FUZZ_MAX_EXAMPLES examples per role (default 100, i.e. 800 requests at
about 30–60 ms each); `WEB_FUZZ_MAX_EXAMPLES=1000` for a deeper run by hand. The counts per
status are printed at the end (pytest -s).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediation.accounts.models import Role, User
from mediation.agencies.models import Agency
from mediation.cases import workflow
from mediation.cases.clocks import MANUALLY_PAUSABLE
from mediation.cases.models import Agreement, CaseParty, Category, Channel
from mediation.escalation.models import Escalation
from mediation.escalation.sweeps import sweep_run
from mediation.notifications.models import Notification
from mediation.web import stats as web_stats
from mediation.web.forms import (
    PartyForm,
    PublicApplicationForm,
    PublicRatingForm,
    PublicTrackForm,
    RegisterCaseForm,
    StatsFilterForm,
)
from tests.factories.accounts import head_of, staff
from tests.factories.cases import dispute_in_state, petition_in_state
from tests.integration.web.conftest import grant_reveal

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("mediation.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

MAX_EXAMPLES = int(os.environ.get("WEB_FUZZ_MAX_EXAMPLES", "100"))
STATS: Counter[tuple[str, str, int]] = Counter()
ROLES = [*Role.values, "superuser"]


@pytest.fixture(scope="module", autouse=True)
def _report_stats() -> Iterator[None]:
    yield
    total = sum(STATS.values())
    errors = sum(n for (_r, _u, status), n in STATS.items() if status >= 500)
    by_status = Counter()
    for (_role, _url, status), n in STATS.items():
        by_status[status] += n
    urls = {url for (_role, url, _s) in STATS}
    sys.stdout.write(
        f"\nweb fuzz: {len(urls)} URL patterns, {total} requests, {errors} 5xx, "
        f"by status {dict(sorted(by_status.items()))}\n"
    )


def _web_patterns() -> list[tuple[str, URLPattern]]:
    """(name with namespace, pattern) of every staff page, the health page, set_language."""
    out: list[tuple[str, URLPattern]] = []

    def walk(patterns: list[Any], namespace: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = p.namespace or ""
                if ns in ("web", "escalation") or p.pattern.describe().startswith("'i18n/"):
                    walk(p.url_patterns, ns)
            elif isinstance(p, URLPattern) and p.name:
                out.append((f"{namespace}:{p.name}" if namespace else p.name, p))

    walk(get_resolver("mediation.urls").url_patterns, "")
    return out


PATTERNS = _web_patterns()


def _field_names() -> list[str]:
    names = {
        # read from request.GET / request.POST by the views
        *("q", "kind", "closed", "page", "unread", "all", "notification", "case", "escalation"),
        *("next", "note", "reason", "text", "to_agency", "to_user", "extra_days", "on"),
        *("purpose", "expected_version", "confirm_duplicates", "language", "table"),
        *("level", "agency", "category", "min_days", "status", "username", "password"),
        *StatsFilterForm.base_fields,
        *RegisterCaseForm.base_fields,
        *(f"parties-{i}-{name}" for i in range(3) for name in PartyForm.base_fields),
        *(f"parties-{k}" for k in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS")),
        "parties-MAX_NUM_FORMS",
        # the public side (/public/…): the application, the look-up and the rating forms
        *PublicApplicationForm.base_fields,
        *PublicTrackForm.base_fields,
        *PublicRatingForm.base_fields,
        "step",
        "rated",
    }
    for act in workflow.actions():
        names.update(act.step.form_class.base_fields)
    return sorted(names)


FIELDS = _field_names()

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30) | st.sampled_from(
    [
        "",
        "\x00",
        "a\x00b",
        "\x1b[31m",
        "\u202e\u2066",
        "\u200b",
        "²",
        "١٢",
        "１２",
        "9" * 25,
        "-1",
        "0",
        "1e400",
        "NaN",
        "长" * 3000,
        "x" * 30000,
        "../../etc/passwd",
        "<script>alert(1)</script>",
        "=HYPERLINK()",
        "' OR 1=1 --",
    ]
)
NUMBER = st.integers(min_value=-(2**70), max_value=2**70).map(str)
DATE = st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)).map(
    lambda d: d.isoformat()
)


@st.composite
def values(draw: Any, pools: dict[str, list[Any]]) -> str:
    kind = draw(st.integers(min_value=0, max_value=5))
    if kind == 0:
        return draw(TEXT)
    if kind == 1:
        return draw(NUMBER)
    if kind == 2:
        return draw(DATE)
    if kind == 3:
        return str(draw(st.sampled_from(pools["ids"])))
    if kind == 4:
        return str(draw(st.sampled_from(pools["choices"])))
    return draw(st.sampled_from(["1", "true", "on", "open", "live", "dispute", "petition"]))


def _path_value(draw: Any, name: str, converter: str, pools: dict[str, list[Any]]) -> Any:
    odd = draw(st.integers(min_value=0, max_value=9)) == 0
    if converter == "int":
        if odd:
            return draw(st.sampled_from([0, 2**31, 2**63, 10**30]))
        pool = {"party_pk": "parties", "agreement_pk": "agreements"}.get(name, "cases")
        if "escalation" in name:
            pool = "escalations"
        return draw(st.sampled_from(pools[pool]))
    options = {
        "transition": sorted({a.name for a in workflow.actions() if a.transition}),
        "action": ["acknowledge", "reassign", "extend", "note", "resolve", "handle", "pause"],
        "kind": ["dispute", "petition"],
        "rule": [*sorted(MANUALLY_PAUSABLE), "dispute.triage"],
        "table": list(web_stats.TABLES),
    }.get(name, ["x"])
    if odd:
        return draw(st.sampled_from(["nope", "x" * 50, "resume", "register"]))
    return draw(st.sampled_from(options))


@pytest.fixture
def world(now) -> dict[str, Any]:
    """Users of every role and cases in many states (once per role: the examples share it)."""
    return _build_world(now)


def _build_world(now: dt.datetime) -> dict[str, Any]:
    from tests.factories.agencies import township_tree

    township = township_tree("模糊")
    earlier = now - dt.timedelta(days=10)
    for agency in (township.centre, township.committee, township.petition_office):
        head_of(agency)
    cases = [
        dispute_in_state(s, township=township, now=earlier)
        for s in ("registered", "assigned", "mediating", "agreement_reached", "closed_resolved")
    ]
    cases += [
        petition_in_state(s, township=township, now=earlier)
        for s in ("received", "handling", "under_rereview", "opinion_issued")
    ]
    sweep_run(now=now, trigger="test")
    at = {
        Role.MEDIATOR: township.committee,
        Role.POLICE_OFFICER: township.police_station,
        Role.COURT_CLERK: township.court,
        Role.JUDICIAL_OFFICER: township.judicial_office,
        Role.PETITION_OFFICER: township.petition_office,
        Role.SUPERVISOR: township.centre,
        Role.ADMINISTRATOR: township.county_centre,
    }
    users: dict[str, User] = {
        role: grant_reveal(staff(agency, role)) for role, agency in at.items()
    }
    users["superuser"] = User.objects.create_superuser("fuzz-admin", password="x")
    ids = [c.pk for c in cases]
    ids += list(Agency.objects.values_list("pk", flat=True))
    ids += list(User.objects.values_list("pk", flat=True))
    ids += list(Notification.objects.values_list("pk", flat=True)[:20])
    choices = [
        *Category.objects.values_list("pk", flat=True),
        *Channel.objects.values_list("pk", flat=True),
        *("people", "low", "medium", "complaint", "accusation", "applicant", "respondent"),
        *("petitioner", "oral", "written", "success", "zh-hans", "en", "ontime"),
    ]
    return {
        "users": users,
        "pools": {
            "cases": [c.pk for c in cases],
            "parties": list(CaseParty.objects.values_list("party_id", flat=True)),
            "agreements": list(Agreement.objects.values_list("pk", flat=True)) or [1],
            "escalations": list(Escalation.objects.values_list("pk", flat=True)) or [1],
            "ids": ids,
            "choices": choices,
        },
    }


@pytest.mark.parametrize("role", ROLES)
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
def test_no_web_page_answers_with_a_server_error(data, role, world):
    pools = world["pools"]
    name, pattern = data.draw(st.sampled_from(PATTERNS), label="url")
    kwargs = {
        key: _path_value(
            data.draw, key, type(conv).__name__.replace("Converter", "").lower(), pools
        )
        for key, conv in pattern.pattern.converters.items()
    }
    path = reverse(name, kwargs=kwargs)
    params = data.draw(
        st.dictionaries(st.sampled_from(FIELDS), values(pools), max_size=8), label="params"
    )
    query = data.draw(
        st.dictionaries(st.sampled_from(FIELDS), values(pools), max_size=4), label="query"
    )
    method = data.draw(st.sampled_from(["GET", "POST"]), label="method")
    client = Client()
    client.force_login(world["users"][role])

    if method == "GET":
        response = client.get(path, {**query, **params})
    else:
        target = f"{path}?{'&'.join(f'{k}=1' for k in query)}" if query else path
        response = client.post(target, params)

    STATS[(role, name, response.status_code)] += 1
    assert response.status_code < 500, (role, method, path, params, query)
