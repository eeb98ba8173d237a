"""Who an escalation goes to, by level (DOMAIN.md §4.4–4.6, 枫桥经验 ladder).

- Level 1: the holder agency itself; its head is notified (the assignee when it has no head).
- Level 2: the township 综治中心 / 平安办: the nearest agency in [holder, *ancestors] that is
  a township-level `peace_office`; failing that, a township-level `peace_office` child of a
  township-level agency of that chain (nearest first), e.g. the 平安办 beside a 司法所 under
  the township government.
- Level 3: the county: the nearest county-level `peace_office` in the chain; failing that, a
  county-level `peace_office` child of a county-level agency of the chain; failing that, the
  nearest county-level agency itself.
Level 2 and 3 notify the users with role `supervisor` of the target agency. A level without
a target agency (an incomplete hierarchy) still gets its escalation row, with no agency.

`Ladder` is built from plain agency rows so it is tested without a database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PEACE_OFFICE = "peace_office"
TOWNSHIP = "township"
COUNTY = "county"
_MAX_DEPTH = 16


@dataclass(frozen=True)
class AgencyNode:
    id: int
    parent_id: int | None
    level: str
    kind: str
    name: str = ""
    head_id: int | None = None


class Ladder:
    def __init__(self, nodes: Iterable[AgencyNode]) -> None:
        self.nodes: dict[int, AgencyNode] = {n.id: n for n in nodes}
        self.children: dict[int, list[AgencyNode]] = {}
        for node in sorted(self.nodes.values(), key=lambda n: n.id):
            if node.parent_id is not None:
                self.children.setdefault(node.parent_id, []).append(node)

    def chain(self, agency_id: int) -> list[AgencyNode]:
        """The agency and its ancestors, nearest first (cycles and depth bounded)."""
        out: list[AgencyNode] = []
        seen: set[int] = set()
        node = self.nodes.get(agency_id)
        while node is not None and node.id not in seen and len(out) < _MAX_DEPTH:
            out.append(node)
            seen.add(node.id)
            node = self.nodes.get(node.parent_id) if node.parent_id is not None else None
        return out

    def _peace_office_at(self, agency_id: int, level: str) -> int | None:
        chain = self.chain(agency_id)
        for node in chain:
            if node.level == level and node.kind == PEACE_OFFICE:
                return node.id
        anchors = [n for n in chain if n.level == level]
        for anchor in anchors:
            for child in self.children.get(anchor.id, []):
                if child.level == level and child.kind == PEACE_OFFICE:
                    return child.id
        if level == COUNTY and anchors:
            return anchors[0].id
        return None

    def target(self, agency_id: int, level: int) -> int | None:
        if level == 1:
            return agency_id if agency_id in self.nodes else None
        if level == 2:
            return self._peace_office_at(agency_id, TOWNSHIP)
        if level == 3:
            return self._peace_office_at(agency_id, COUNTY)
        raise ValueError(f"escalation level must be 1..3, not {level!r}")

    def targets(self, level: int) -> dict[str, int]:
        """{str(holder agency id): target agency id} for every agency (a SQL parameter)."""
        out: dict[str, int] = {}
        for agency_id in self.nodes:
            target = self.target(agency_id, level)
            if target is not None:
                out[str(agency_id)] = target
        return out
