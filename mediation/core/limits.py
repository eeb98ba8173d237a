"""Length limits of free text, the same for the web forms, the API and the services.

The API's serializers declare them as `max_length`; views that read a form field directly
and the services check them here, so a 100,000-character note is refused everywhere instead
of being stored by one door and refused by the other.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from mediation.core.errors import InvalidInput

NOTE_MAX_LENGTH = 2000
REASON_MAX_LENGTH = 2000
INSTRUCTION_MAX_LENGTH = 5000

TEXT_LIMITS = {"note": NOTE_MAX_LENGTH, "reason": REASON_MAX_LENGTH, "text": INSTRUCTION_MAX_LENGTH}


def check_lengths(**fields: object) -> None:
    """InvalidInput for the first text field longer than its limit (TEXT_LIMITS by name)."""
    for name, value in fields.items():
        limit = TEXT_LIMITS.get(name)
        if limit is not None and isinstance(value, str) and len(value) > limit:
            message = _("内容过长：不能超过 %(limit)d 字（现有 %(n)d 字）。") % {
                "limit": limit,
                "n": len(value),
            }
            raise InvalidInput(message, details={name: [message]})
