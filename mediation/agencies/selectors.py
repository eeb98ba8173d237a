"""Reads of the agency tree: what lies below, above and around an agency.

The tree is the coordination ladder (villages → township → county): supervisors see the
agencies below theirs; 上交 goes up it; 复查/复核 go to the next agency up (or to an organ an
administrator configured, `ReviewingOrgan`). Each read is one recursive query, on PostgreSQL and
SQLite alike, however deep the tree.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from mediation.accounts.models import Role, User
from mediation.agencies.models import Agency, ReviewingOrgan

# A depth bound so that a cycle entered by hand in the database cannot loop forever (the admin
# refuses cycles; `Agency.clean`).
_MAX_DEPTH = 16

_BELOW_SQL = """
WITH RECURSIVE below(id, depth) AS (
    SELECT id, 0 FROM agencies_agency WHERE id = %s
    UNION
    SELECT a.id, b.depth + 1 FROM agencies_agency a JOIN below b ON a.parent_id = b.id
    WHERE b.depth < %s
)
SELECT DISTINCT id FROM below
"""

_ABOVE_SQL = """
WITH RECURSIVE above(id, parent_id, depth) AS (
    SELECT id, parent_id, 0 FROM agencies_agency WHERE id = %s
    UNION
    SELECT a.id, a.parent_id, u.depth + 1 FROM agencies_agency a JOIN above u ON a.id = u.parent_id
    WHERE u.depth < %s
)
SELECT id, depth FROM above ORDER BY depth
"""


def agency_below_ids(agency_id: int) -> frozenset[int]:
    """The agency and every agency below it."""
    with connection.cursor() as cur:
        cur.execute(_BELOW_SQL, [agency_id, _MAX_DEPTH])
        return frozenset(row[0] for row in cur.fetchall())


def agency_chain_ids(agency_id: int) -> list[int]:
    """The agency and its ancestors, nearest first."""
    with connection.cursor() as cur:
        cur.execute(_ABOVE_SQL, [agency_id, _MAX_DEPTH])
        seen: list[int] = []
        for agency, _depth in cur.fetchall():
            if agency not in seen:
                seen.append(agency)
        return seen


_JURISDICTION_SQL = """
WITH RECURSIVE above(id, parent_id, depth) AS (
    SELECT id, parent_id, 0 FROM agencies_agency WHERE id = %s
    UNION
    SELECT a.id, a.parent_id, u.depth + 1 FROM agencies_agency a JOIN above u ON a.id = u.parent_id
    WHERE u.depth < %s
),
root AS (SELECT id FROM above ORDER BY depth DESC LIMIT 1),
below(id, depth) AS (
    SELECT id, 0 FROM root
    UNION
    SELECT a.id, b.depth + 1 FROM agencies_agency a JOIN below b ON a.parent_id = b.id
    WHERE b.depth < %s
)
SELECT DISTINCT id FROM below
"""


def agency_jurisdiction_ids(agency_id: int) -> frozenset[int]:
    """Every agency of the tree the agency belongs to (below its top-most ancestor): where a
    hand-off from it (交办, 转送, 访调对接, 司法确认) may go. One query."""
    with connection.cursor() as cur:
        cur.execute(_JURISDICTION_SQL, [agency_id, _MAX_DEPTH, _MAX_DEPTH])
        return frozenset(row[0] for row in cur.fetchall())


def reviewers_of(agency_id: int) -> frozenset[int]:
    """The organs that review (复查) a decision of this agency, or re-review (复核) a review
    decision of it: the next agency up (信访工作条例 Arts 35–36, 上一级机关), and any organ
    an administrator named for it (`ReviewingOrgan`)."""
    parent = Agency.objects.filter(pk=agency_id).values_list("parent_id", flat=True).first()
    configured = ReviewingOrgan.objects.filter(agency_id=agency_id).values_list(
        "reviewer_id", flat=True
    )
    return frozenset({*configured, *([parent] if parent else [])})


def reviewed_by(agency_id: int) -> frozenset[int]:
    """The agencies whose decisions this agency reviews (the inverse of `reviewers_of`)."""
    children = Agency.objects.filter(parent_id=agency_id).values_list("pk", flat=True)
    configured = ReviewingOrgan.objects.filter(reviewer_id=agency_id).values_list(
        "agency_id", flat=True
    )
    return frozenset({*children, *configured})


def agencies_with_staff(agency_ids: Iterable[int], roles: Iterable[str]) -> frozenset[int]:
    """Those of the agencies with at least one active user holding one of the roles: a
    hand-off to an agency without them would dead-end (nobody there could take the next step)."""
    ids = list(agency_ids)
    if not ids:
        return frozenset()
    return frozenset(
        User.objects.filter(agency_id__in=ids, role__in=list(roles), is_active=True)
        .values_list("agency_id", flat=True)
        .distinct()
    )


def agency_staff_ids(agency_id: int, roles: Iterable[str] | None = None) -> list[int]:
    """Active users of the agency (with one of `roles`), by id."""
    qs = User.objects.filter(agency_id=agency_id, is_active=True)
    if roles is not None:
        qs = qs.filter(role__in=list(roles))
    return list(qs.order_by("pk").values_list("pk", flat=True))


# The user's place in the tree -----------------------------------------------------------------

SUPERVISING_ROLES = frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR})


_SCOPE_SQL = """
WITH RECURSIVE below(id, depth) AS (
    SELECT id, 0 FROM agencies_agency WHERE id = %(agency)s
    UNION
    SELECT a.id, b.depth + 1 FROM agencies_agency a JOIN below b ON a.parent_id = b.id
    WHERE b.depth < %(depth)s
)
SELECT 'below', id FROM below
UNION ALL
SELECT 'reviewed', id FROM agencies_agency WHERE parent_id = %(agency)s
UNION ALL
SELECT 'reviewed', agency_id FROM agencies_reviewingorgan WHERE reviewer_id = %(agency)s
"""


class UserScope:
    """Where a user stands: their agency, the agencies they oversee, the chain above it.

    `below` is the user's own agency, plus every agency below it for supervisors and
    administrators; `reviewed` the agencies whose decisions it reviews (`reviewed_by`);
    `above` is the user's agency and its ancestors (the accusation rule hides a petitioner from
    the accused agency and everything under it, i.e. from users whose `above` contains the
    accused agency). `below` and `reviewed` are read together, in one statement, when either
    is first asked for (every visibility test needs both), except that a plain member's `below`
    is their own agency and needs no query; `above` when first asked for.
    """

    def __init__(self, agency_id: int | None, *, supervising: bool = False) -> None:
        self.agency_id = agency_id
        self._supervising = supervising
        self._below: frozenset[int] | None = None
        self._reviewed: frozenset[int] | None = None
        self._above: frozenset[int] | None = None

    @property
    def empty(self) -> bool:
        return self.agency_id is None

    def _load(self) -> None:
        if self.agency_id is None:
            self._below, self._reviewed = frozenset(), frozenset()
            return
        depth = _MAX_DEPTH if self._supervising else 0
        with connection.cursor() as cur:
            cur.execute(_SCOPE_SQL, {"agency": self.agency_id, "depth": depth})
            rows = cur.fetchall()
        self._below = frozenset(i for kind, i in rows if kind == "below")
        self._reviewed = frozenset(i for kind, i in rows if kind == "reviewed")

    @property
    def below(self) -> frozenset[int]:
        if self._below is None:
            if self.agency_id is not None and not self._supervising:
                self._below = frozenset({self.agency_id})  # a plain member: no query
            else:
                self._load()
        assert self._below is not None
        return self._below

    @property
    def reviewed(self) -> frozenset[int]:
        """`reviewed_by(agency_id)`, read with `below`."""
        if self._reviewed is None:
            self._load()
        assert self._reviewed is not None
        return self._reviewed

    @property
    def above(self) -> frozenset[int]:
        if self._above is None:
            self._above = (
                frozenset(agency_chain_ids(self.agency_id)) if self.agency_id else frozenset()
            )
        return self._above


NO_SCOPE = UserScope(None)


def user_scope(user: User) -> UserScope:
    """The user's scope, kept on the user object (a request's user, a task's actor).

    Inactive and anonymous users, and users without an agency, have none.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return NO_SCOPE
    if user.agency_id is None:
        return NO_SCOPE
    key = (user.agency_id, user.role)
    cached = getattr(user, "_mediation_scope", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    scope = UserScope(user.agency_id, supervising=user.role in SUPERVISING_ROLES)
    user._mediation_scope = (key, scope)  # type: ignore[attr-defined]
    return scope
