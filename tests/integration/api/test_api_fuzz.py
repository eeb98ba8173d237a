"""Property-based fuzzing of the API against its own OpenAPI schema (schemathesis).

Every operation of the generated schema gets positive and negative cases (schemathesis'
examples, coverage and fuzzing phases), sent through the real Django WSGI application,
authenticated as a county supervisor whose scope holds cases in many states, plus a case of
another county. The only assertion is the one that matters for robustness: no response is a
5xx (`not_a_server_error`). Bounded to ~30 fuzzed examples per operation.

Database: one test transaction per operation (pytest-django's `django_db`), shared by that
operation's examples. Django's WSGI handler closes "old" connections when a request starts
and finishes, which would close the test transaction's connection, so the fixture below
detaches that handler for the duration (as Django's own test client does).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import NoReverseMatch, reverse
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from knox.models import AuthToken
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from mediation.accounts.models import Role, User
from mediation.agencies.models import Agency
from mediation.cases.models import CaseParty, Category, Channel
from mediation.escalation.models import Escalation
from mediation.escalation.sweeps import sweep_run
from tests.factories.accounts import head_of, staff
from tests.factories.agencies import township_tree
from tests.factories.cases import dispute_in_state, petition_in_state
from tests.integration.api.conftest import grant_reveal

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

# API_FUZZ_MAX_EXAMPLES=500 for a deeper run by hand.
MAX_EXAMPLES = int(os.environ.get("API_FUZZ_MAX_EXAMPLES", "30"))


def _urlconf() -> str:
    try:
        reverse("api:case-list")
    except NoReverseMatch:
        return "tests.integration.api.urls"
    return "mediation.urls"


def _openapi() -> dict[str, Any]:
    """The schema /api/schema/ serves, generated in-process (it needs no database)."""
    raw = SchemaGenerator(urlconf=_urlconf()).get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(raw))


# Every check runs (tests below). Schema-valid requests must be accepted (2xx, or a refusal
# the schema cannot express: 401/403/404/409), except for the operations listed here, whose
# rules go beyond what a JSON schema says, so that a schema-valid body can still be a 400:
# a wrong password; ids that exist nowhere; a transition body, whose fields depend on the
# step; dates that match YYYY-MM-DD but do not exist; "to_agency or to_user"; "ids or all";
# a purpose or a name of spaces only; a repeat_of the user may not see; 访调对接 of a case
# that is not a petition; a case-file action's body, whose fields depend on the action.
CONFIG = """
[[operations]]
include-operation-id = [
    "auth_token_create", "cases_list", "cases_transitions_create", "deadlines_compute",
    "disputes_register", "petitions_receive", "escalations_reassign",
    "notifications_mark_read", "cases_parties_reveal", "cases_parties_reveal_phone",
    "escalations_approve_extension", "escalations_issue_note", "categories_list",
    "cases_refer_to_mediation", "cases_actions_create",
]
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "400", "401", "403", "404", "409", "429",
]
"""
schema = schemathesis.openapi.from_dict(
    _openapi(), config=schemathesis.config.SchemathesisConfig.from_str(CONFIG)
)

# (operation, status) → responses, over the whole module; printed at the end (pytest -s).
STATS: Counter[tuple[str, int]] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_stats() -> Iterator[None]:
    yield
    operations = sorted({op for op, _status in STATS})
    total = sum(STATS.values())
    errors = sum(n for (_op, status), n in STATS.items() if status >= 500)
    lines = [f"fuzz: {len(operations)} operations, {total} requests, {errors} 5xx"]
    for op in operations:
        by_status = {status: n for (o, status), n in sorted(STATS.items()) if o == op}
        lines.append(f"  {op}: {by_status}")
    sys.stdout.write("\n".join(lines) + "\n")


class Pools:
    """Real ids that generated integer ids are folded onto, so examples get past the lookups
    and reach the services; values of other types (negative cases) stay as generated."""

    def __init__(self, **pools: list[int]) -> None:
        self.pools = pools

    def _fold(self, values: dict[str, Any], names: dict[str, str]) -> None:
        for name, value in values.items():
            pool = self.pools.get(names.get(name, ""))
            if pool and isinstance(value, int) and not isinstance(value, bool):
                values[name] = pool[value % len(pool)]

    def fold(self, case: Any) -> None:
        path = case.operation.path
        if case.path_parameters:
            ids = "cases"
            for prefix, pool in (
                ("/api/agencies/", "agencies"),
                ("/api/escalations/", "escalations"),
            ):
                if path.startswith(prefix):
                    ids = pool
            self._fold(case.path_parameters, {"id": ids, "party_id": "parties"})
        if case.query:
            self._fold(
                case.query,
                {"holder_agency": "agencies", "category": "categories", "channel": "channels"},
            )
        if isinstance(case.body, dict):
            self._fold(case.body, BODY_REFERENCES)


PATH_POOLS = (("/api/agencies/", "agencies"), ("/api/escalations/", "escalations"))
BODY_REFERENCES = {
    "channel": "channels",
    "category": "categories",
    "accused_agency": "agencies",
    "repeat_of": "cases",
    "to_agency": "agencies",
    "court": "agencies",
    "assignee": "users",
    "approver": "users",
}


@pytest.fixture(autouse=True)
def _no_throttling(monkeypatch) -> None:
    # Hundreds of requests a minute from one user are the point here, not abuse.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"user": None, "anon": None})


@pytest.fixture
def wsgi_app() -> Iterator[WSGIHandler]:
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_world(now) -> tuple[dict[str, str], Pools]:
    """A county supervisor (who may reveal ID numbers) and cases in many states, registered
    ten days ago so that the engine's sweep at `now` has escalated their overdue clocks."""
    township = township_tree()
    elsewhere = township_tree()
    earlier = now - dt.timedelta(days=10)
    for agency in (township.centre, township.committee, township.petition_office):
        head_of(agency)
    cases = [
        dispute_in_state(state, township=township, now=earlier)
        for state in ("registered", "assigned", "mediating", "agreement_reached")
    ]
    cases += [
        petition_in_state(state, township=township, now=earlier)
        for state in ("received", "handling", "opinion_issued")
    ]
    cases.append(dispute_in_state("mediating", township=elsewhere, now=earlier))  # not visible
    sweep_run(now=now, trigger="test")
    supervisor = grant_reveal(staff(township.county_centre, Role.SUPERVISOR))
    _instance, token = AuthToken.objects.create(user=supervisor)
    pools = Pools(
        cases=[c.pk for c in cases] + [2**31],
        agencies=list(Agency.objects.values_list("pk", flat=True)),
        parties=list(CaseParty.objects.values_list("party_id", flat=True)),
        categories=list(Category.objects.values_list("pk", flat=True)),
        channels=list(Channel.objects.values_list("pk", flat=True)),
        users=list(User.objects.values_list("pk", flat=True)),
        escalations=list(Escalation.objects.values_list("pk", flat=True)),
    )
    assert pools.pools["escalations"]
    return {"Authorization": f"Token {token}"}, pools


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_no_operation_answers_with_a_server_error(case, wsgi_app, fuzz_world):
    headers, pools = fuzz_world
    pools.fold(case)

    # Checks that send further requests (ignored auth, unsupported methods) send them here.
    case.operation.schema.app = wsgi_app
    response = case.call(app=wsgi_app, headers=headers)
    STATS[(case.operation.label, response.status_code)] += 1

    # Every check schemathesis has (not only 5xx): status codes and response bodies as the
    # schema documents them, content types and headers, invalid bodies refused, valid ones
    # accepted, authentication not ignored, unsupported methods refused.
    case.validate_response(response, headers=headers, transport_kwargs={"app": wsgi_app})


# Transition bodies built from the step forms' own field lists ---------------------------------
#
# The schema documents a transition body as a free-form object, so schemathesis rarely sends
# the right keys. This test asks GET transitions/ for the fields of each possible step and
# sends those keys with values of every JSON type (and the right type, in range or not).


# One draw per field slot, the same shape whatever the database holds (Hypothesis requires
# draws that do not depend on external state): whether to send the field, and raw material
# that `_value` turns into a value of the field's own type or of another JSON type.
SLOT = st.tuples(
    st.booleans(),
    st.integers(min_value=0, max_value=5),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=60),
    st.dates(),
)
SLOTS = 12


def _value(field: dict[str, Any], slot: tuple) -> Any:
    _send, variant, number, text, day = slot
    if variant <= 1:  # the field's own type
        if field["choices"]:
            return field["choices"][number % len(field["choices"])]["value"]
        return {
            "date": day.isoformat(),
            "integer": number % 400 - 5,
            "boolean": bool(number % 2),
            "text": text * (number % 40),
        }.get(field["type"], text)
    return [number, text, day.isoformat(), None, [number], {text: number}][number % 6]


@settings(
    max_examples=MAX_EXAMPLES * 4,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(data=st.data())
def test_transition_bodies_never_answer_with_a_server_error(data, wsgi_app, fuzz_world):
    headers, pools = fuzz_world
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=headers["Authorization"])
    case_index = data.draw(st.integers(min_value=0, max_value=10_000), label="case")
    step_index = data.draw(st.integers(min_value=0, max_value=10_000), label="step")
    slots = data.draw(st.lists(SLOT, min_size=SLOTS, max_size=SLOTS), label="fields")
    version = data.draw(st.none() | st.integers(min_value=-1, max_value=40), label="version")
    cases = pools.pools["cases"]
    case_id = cases[case_index % len(cases)]
    listed = client.get(f"/api/cases/{case_id}/transitions/")
    assume(listed.status_code == 200 and listed.json()["transitions"])
    steps = listed.json()["transitions"]
    step = steps[step_index % len(steps)]
    body = {
        field["name"]: _value(field, slot)
        for field, slot in zip(step["fields"], slots, strict=False)
        if slot[0]
    }
    if version is not None:
        body["expected_version"] = version

    response = client.post(f"/api/cases/{case_id}/transitions/{step['name']}/", body, format="json")
    STATS[(f"POST transitions/{step['name']}/ (step fields)", response.status_code)] += 1

    assert response.status_code < 500, (step["name"], body, response.content)
