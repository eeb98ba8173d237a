"""Agencies and a small township hierarchy."""

from __future__ import annotations

from dataclasses import dataclass

import factory
from factory.django import DjangoModelFactory

from mediation.agencies.models import Agency, AgencyKind, AgencyLevel


class AgencyFactory(DjangoModelFactory):
    class Meta:
        model = Agency

    code = factory.Sequence(lambda n: f"agency-{n}")
    name = factory.Sequence(lambda n: f"测试机构{n}")
    kind = AgencyKind.PEACE_OFFICE
    level = AgencyLevel.TOWNSHIP
    parent = None
    case_number_prefix = factory.Sequence(lambda n: f"测试{n}")
    is_active = True


@dataclass(frozen=True)
class Township:
    """One county with one township, as the case builders use it.

    county_centre (县综治中心, root)
    ├── county_petition_bureau (县信访局: 复查)
    └── centre (乡镇综治中心)
        ├── judicial_office (司法所) · police_station (派出所) · court (人民法庭)
        ├── petition_office (乡镇信访办) · committee (乡镇人民调解委员会)
        │   └── village_committee (村调委会, under the township committee)
    """

    name: str
    county_centre: Agency
    county_petition_bureau: Agency
    centre: Agency
    judicial_office: Agency
    police_station: Agency
    court: Agency
    petition_office: Agency
    committee: Agency
    village_committee: Agency


_township_counter = iter(range(1, 1_000_000))


def township_tree(name: str | None = None, *, staffed: bool = True) -> Township:
    """Create the agencies of `Township`. Every agency gets its own case-number prefix.

    The township committee's prefix is the township name itself, so its numbers read
    like (2026)将官池人调字第0001号. With `staffed` (the default) every agency gets the one
    member a hand-off to it needs (`STAFF`, as `tests.factories.accounts.staff(agency, role)`),
    since the services refuse to hand a case to an agency where nobody could take it.
    """
    n = next(_township_counter)
    name = name or f"将官池{n}"
    slug = f"t{n}"

    def make(
        suffix: str, label: str, kind: str, level: str, parent: Agency | None, prefix: str
    ) -> Agency:
        return AgencyFactory(
            code=f"{slug}-{suffix}",
            name=label,
            kind=kind,
            level=level,
            parent=parent,
            case_number_prefix=prefix,
        )

    county = make(
        "county",
        f"{name}所在县综治中心",
        AgencyKind.PEACE_OFFICE,
        AgencyLevel.COUNTY,
        None,
        f"{name}县综治",
    )
    bureau = make(
        "county-xfj",
        f"{name}所在县信访局",
        AgencyKind.PETITION_OFFICE,
        AgencyLevel.COUNTY,
        county,
        f"{name}县信",
    )
    centre = make(
        "centre",
        f"{name}镇综治中心",
        AgencyKind.PEACE_OFFICE,
        AgencyLevel.TOWNSHIP,
        county,
        f"{name}综治",
    )
    township = AgencyLevel.TOWNSHIP
    tree = Township(
        name=name,
        county_centre=county,
        county_petition_bureau=bureau,
        centre=centre,
        judicial_office=make(
            "sfs", f"{name}镇司法所", AgencyKind.JUDICIAL_OFFICE, township, centre, f"{name}司法"
        ),
        police_station=make(
            "pcs", f"{name}派出所", AgencyKind.POLICE_STATION, township, centre, f"{name}警"
        ),
        court=make(
            "court", f"{name}人民法庭", AgencyKind.PEOPLES_COURT, township, centre, f"{name}法庭"
        ),
        petition_office=make(
            "xfb", f"{name}镇信访办", AgencyKind.PETITION_OFFICE, township, centre, f"{name}信访"
        ),
        committee=(
            committee := make(
                "twh",
                f"{name}镇人民调解委员会",
                AgencyKind.MEDIATION_COMMITTEE,
                township,
                centre,
                name,
            )
        ),
        village_committee=make(
            "village",
            f"{name}村人民调解委员会",
            AgencyKind.MEDIATION_COMMITTEE,
            AgencyLevel.VILLAGE,
            committee,
            f"{name}村",
        ),
    )
    if staffed:
        from tests.factories.accounts import staff

        for attr, role in STAFF:
            staff(getattr(tree, attr), role)
    return tree


# The member each agency of a staffed township gets (n=0 of its role).
STAFF = (
    ("county_centre", "supervisor"),
    ("county_petition_bureau", "petition_officer"),
    ("centre", "supervisor"),
    ("judicial_office", "judicial_officer"),
    ("police_station", "police_officer"),
    ("court", "court_clerk"),
    ("petition_office", "petition_officer"),
    ("committee", "mediator"),
    ("village_committee", "mediator"),
)
