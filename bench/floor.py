"""The floor of benchmark 3: the irreducible work of one transition on the same stack.

Same gunicorn, same Django middleware, same DRF request handling and the API's own token
authentication (django-rest-knox, `mediation.api.authentication`), then in one transaction,
hand-written SQL with no model layer:

    SELECT … FOR UPDATE the case row;
    UPDATE its state and version;
    INSERT one event;
    UPDATE one clock (the case's running duty clock: a new generation);
    INSERT the reminder rows of that generation (two);

and a JSON answer with the new state and version. What a real transition does beyond this
(the visibility rule, the workflow table, the step form, the reconciliation of every clock
against the rules, the hand-off notices, the answer's list fields) is what the benchmark
compares against it: `CPU per transition / CPU per floor request`, same run, same server.

Served only by the benchmark's own URLconf (`bench.settings` → `bench.urls`), never by the
application's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mediation.api.authentication import TokenAuthentication

TARGETS = {"triage": "triaged", "assign": "assigned"}

_LOCK = "SELECT state, version FROM cases_case WHERE id = %s FOR UPDATE"
_CASE = "UPDATE cases_case SET state = %s, version = %s, state_entered_at = %s WHERE id = %s"
_EVENT = (
    "INSERT INTO cases_caseevent "
    "(case_id, version, actor_id, actor_agency_id, at, transition, from_state, to_state, "
    "note, data) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '', '{}')"
)
_CLOCK = (
    "UPDATE deadlines_clock SET generation = generation + 1 "
    "WHERE id = (SELECT id FROM deadlines_clock WHERE case_id = %s AND status = 'running' "
    "ORDER BY id LIMIT 1) RETURNING id, generation, due_at"
)
_REMINDERS = (
    "INSERT INTO deadlines_reminder "
    "(clock_id, generation, offset_code, send_at, status, created_at, cancel_reason, digested) "
    "VALUES (%s, %s, 'wd1', %s, 'planned', %s, '', false), "
    "(%s, %s, 'due', %s, 'planned', %s, '', false)"
)


class FloorTransitionView(APIView):
    authentication_classes = (TokenAuthentication,)
    permission_classes = (IsAuthenticated,)

    def post(self, request: Request, pk: int, name: str) -> Response:
        to_state = TARGETS.get(name)
        if to_state is None:
            raise NotFound()
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(_LOCK, [pk])
            row = cur.fetchone()
            if row is None:
                raise NotFound()
            from_state, version = row
            version += 1
            cur.execute(_CASE, [to_state, version, now, pk])
            cur.execute(
                _EVENT,
                [
                    pk,
                    version,
                    request.user.pk,
                    request.user.agency_id,
                    now,
                    name,
                    from_state,
                    to_state,
                ],
            )
            cur.execute(_CLOCK, [pk])
            clock = cur.fetchone()
            if clock is not None:
                clock_id, generation, due_at = clock
                before: Any = due_at - dt.timedelta(days=1)
                cur.execute(
                    _REMINDERS,
                    [clock_id, generation, before, now, clock_id, generation, due_at, now],
                )
        return Response({"id": pk, "state": to_state, "version": version})
