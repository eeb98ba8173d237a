"""Users: one agency, one role."""

from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from mediation.accounts.models import Role, User
from mediation.agencies.models import Agency


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.Sequence(lambda n: f"工作人员{n}")
    role = Role.MEDIATOR
    agency = None
    is_active = True
    password = factory.django.Password(None)


def staff(agency: Agency, role: str, n: int = 0) -> User:
    """The n-th user with `role` at `agency` (created on first use)."""
    username = f"{agency.code}-{role}-{n}"
    user = User.objects.filter(username=username).first()
    if user is None:
        user = UserFactory(username=username, role=role, agency=agency)
    return user


def head_of(agency: Agency) -> User:
    """The agency's head (负责人): a supervisor there, recorded as `Agency.head`."""
    user = staff(agency, Role.SUPERVISOR, n=99)
    if agency.head_id != user.pk:
        agency.head = user
        agency.save(update_fields=["head"])
    return user
