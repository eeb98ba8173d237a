"""Reads of the case file that are logged: downloading an attachment, exporting the dossier.

Uploads, withdrawals and the records are case actions of the workflow table
(`cases.services.case_service_action`)."""

from __future__ import annotations

import datetime as dt

from mediation.accounts.models import User
from mediation.casefiles.models import Attachment, FileAccess, FileAccessKind
from mediation.cases.models import Case


def file_access_log(
    *, user: User, case: Case, now: dt.datetime, attachment: Attachment | None = None
) -> FileAccess:
    """Record who downloaded which file (or the whole dossier) of which case, and when."""
    return FileAccess.objects.create(
        case=case,
        attachment=attachment,
        kind=FileAccessKind.ATTACHMENT if attachment is not None else FileAccessKind.DOSSIER,
        user=user,
        agency_id=getattr(user, "agency_id", None),
        at=now,
    )
