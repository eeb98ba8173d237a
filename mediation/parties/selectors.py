"""Reads for parties. Look-ups by ID number go through the keyed hash, never decryption."""

from __future__ import annotations

from django.db.models import QuerySet

from mediation.parties import crypto, idnumbers
from mediation.parties.models import Party


def party_find_by_id_number(*, id_number: str) -> QuerySet[Party]:
    """Parties registered with this ID number (15- and 18-digit forms match each other).

    Text that is not a valid ID number gives an empty queryset, not an error.
    """
    try:
        number = idnumbers.validate_id_number(id_number)
    except idnumbers.InvalidIdNumber:
        return Party.objects.none()
    return Party.objects.filter(id_number_hash=crypto.lookup_hash(idnumbers.upgrade_to_18(number)))


def party_find_by_phone(*, phone: str) -> QuerySet[Party]:
    """Parties with this phone number, compared after normalisation (spaces, +86 dropped),
    through the keyed digest (`Party.phone_hash`), never the clear column."""
    try:
        normalised = idnumbers.normalise_phone(phone)
    except ValueError:
        return Party.objects.none()
    if not normalised:
        return Party.objects.none()
    return Party.objects.filter(phone_hash=crypto.phone_hash(normalised))
