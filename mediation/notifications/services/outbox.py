"""The outbox: notifications and their deliveries created set-based, and the inbox.

The sweeps and the services create rows here (`notifications_create_bulk`, and `outbox_sql`
inside the sweep's own statements); nothing here sends or talks to Celery. Sending is
`mediation.notifications.services.delivery`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from mediation.accounts.models import User
from mediation.agencies.models import Agency
from mediation.core.db import bulk_cursor, is_postgres
from mediation.notifications.models import (
    ChannelPreference,
    Delivery,
    DeliveryChannel,
    Notification,
)

logger = logging.getLogger(__name__)


# Creation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationSpec:
    recipient_id: int
    kind: str
    subject: str
    body: str
    key: str
    case_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # The agency whose group robot also gets this message (one spec per event carries it).
    webhook_agency_id: int | None = None


@dataclass(frozen=True)
class Created:
    notifications: int = 0
    deliveries: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Prefs:
    email: bool = True
    sms: bool = False
    webhook: bool = True


def _load_preferences(
    users: dict[int, dict[str, Any]], agency_ids: set[int]
) -> tuple[dict[int, _Prefs], dict[int, _Prefs]]:
    user_agencies = {u["agency_id"] for u in users.values() if u["agency_id"]}
    rows = ChannelPreference.objects.filter(
        Q(user_id__in=list(users)) | Q(agency_id__in=list(agency_ids | user_agencies))
    ).values("user_id", "agency_id", "email", "sms", "webhook")
    by_user: dict[int, _Prefs] = {}
    by_agency: dict[int, _Prefs] = {}
    for row in rows:
        prefs = _Prefs(email=row["email"], sms=row["sms"], webhook=row["webhook"])
        if row["user_id"]:
            by_user[row["user_id"]] = prefs
        else:
            by_agency[row["agency_id"]] = prefs
    return by_user, by_agency


def outbox_sql(source: str) -> str:
    """CTEs that write the outbox for the rows of the CTE `source`, in one statement.

    `source` has the columns (ord, recipient_id, kind, case_id, subject, body, key, data,
    webhook_agency_id), one row per notification wanted, keys unique. Defines:
    - `outbox_notes` (id, kind, key): the notifications inserted now (ON CONFLICT (key) DO
      NOTHING, inactive or unknown recipients skipped);
    - `outbox_deliveries` (notification_id): their deliveries, per preferences: a user's own
      row, else their agency's row, else the defaults (e-mail on when the user has an
      address, SMS off, group robot on when `webhook_agency_id` has a URL and its agency row
      does not turn it off).
    Uses the parameter %(now)s. The one implementation of these rules on PostgreSQL, shared by
    `notifications_create_bulk` and the sweep's level-1 statement.
    """
    return _OUTBOX_SQL.replace("__SOURCE__", source)


_OUTBOX_SQL = """
outbox_notes AS (
    INSERT INTO notifications_notification
        (recipient_id, kind, case_id, subject, body, key, data, created_at)
    SELECT s.recipient_id, s.kind, s.case_id, left(s.subject, 200), s.body, s.key, s.data,
           %(now)s
    FROM __SOURCE__ s
    JOIN accounts_user u ON u.id = s.recipient_id AND u.is_active
    ORDER BY s.ord
    ON CONFLICT (key) DO NOTHING
    RETURNING id, kind, key
),
outbox_deliveries AS (
    INSERT INTO notifications_delivery
        (notification_id, channel, status, attempts, next_attempt_at, created_at, claimed_by,
         address, last_error)
    SELECT n.id, ch.channel, 'pending', 0, %(now)s, %(now)s, '', '', ''
    FROM outbox_notes n
    JOIN __SOURCE__ s ON s.key = n.key
    JOIN accounts_user u ON u.id = s.recipient_id
    LEFT JOIN notifications_channelpreference pu ON pu.user_id = u.id
    LEFT JOIN notifications_channelpreference pa ON pa.agency_id = u.agency_id
    LEFT JOIN agencies_agency w ON w.id = s.webhook_agency_id AND w.webhook_url <> ''
    LEFT JOIN notifications_channelpreference pw ON pw.agency_id = w.id
    CROSS JOIN LATERAL (VALUES
        (1, 'email', COALESCE(pu.email, pa.email, true) AND u.email <> ''),
        (2, 'sms', COALESCE(pu.sms, pa.sms, false) AND u.phone <> ''),
        (3, 'webhook', w.id IS NOT NULL AND COALESCE(pw.webhook, true))
    ) AS ch(rank, channel, wanted)
    WHERE ch.wanted
    ORDER BY s.ord, ch.rank
    RETURNING notification_id
)"""
# No ON CONFLICT on the deliveries: they belong to notifications this very statement inserted
# (`outbox_notes`, keys unique), which no other transaction can see yet, so (notification,
# channel) cannot exist already. A plain insert skips the speculative-insertion protocol (an
# arbiter probe and a token per row; about 5% of a sweep batch's server time).


_CREATE_BULK_SQL = """
WITH spec AS (
    SELECT * FROM unnest(%(recipients)b::bigint[], %(kinds)b::varchar[], %(cases)b::bigint[],
                         %(subjects)b::varchar[], %(bodies)b::text[], %(keys)b::varchar[],
                         %(data)b::jsonb[], %(hooks)b::bigint[])
        WITH ORDINALITY AS t(recipient_id, kind, case_id, subject, body, key, data,
                             webhook_agency_id, ord)
),__OUTBOX__
SELECT n.kind, count(*), (SELECT count(*) FROM outbox_deliveries)
FROM outbox_notes n GROUP BY n.kind
""".replace("__OUTBOX__", outbox_sql("spec"))


def _create_bulk_postgres(specs: Sequence[NotificationSpec], now: dt.datetime) -> Created:
    params = {
        "now": now,
        "recipients": [s.recipient_id for s in specs],
        "kinds": [s.kind for s in specs],
        "cases": [s.case_id for s in specs],
        "subjects": [s.subject for s in specs],
        "bodies": [s.body for s in specs],
        "keys": [s.key for s in specs],
        "data": [json.dumps(s.data, ensure_ascii=False) for s in specs],
        "hooks": [s.webhook_agency_id for s in specs],
    }
    with bulk_cursor() as cur:
        cur.execute(_CREATE_BULK_SQL, params)
        rows = cur.fetchall()
    by_kind = {kind: n for kind, n, _d in rows}
    deliveries = rows[0][2] if rows else 0
    return Created(notifications=sum(by_kind.values()), deliveries=deliveries, by_kind=by_kind)


def _insert_notifications(specs: Sequence[NotificationSpec], now: dt.datetime) -> dict[str, int]:
    """SQLite demo: correctness only (single writer). Returns {key: id} of the rows inserted."""
    existing = set(
        Notification.objects.filter(key__in=[s.key for s in specs]).values_list("key", flat=True)
    )
    fresh = [s for s in specs if s.key not in existing]
    Notification.objects.bulk_create(
        [
            Notification(
                recipient_id=s.recipient_id,
                kind=s.kind,
                case_id=s.case_id,
                subject=s.subject[:200],
                body=s.body,
                key=s.key,
                data=s.data,
                created_at=now,
            )
            for s in fresh
        ],
        ignore_conflicts=True,
    )
    return dict(
        Notification.objects.filter(key__in=[s.key for s in fresh]).values_list("key", "id")
    )


def _insert_deliveries(rows: Sequence[tuple[int, str]], now: dt.datetime) -> int:
    if not rows:
        return 0
    objs = [
        Delivery(notification_id=n, channel=ch, next_attempt_at=now, created_at=now)
        for n, ch in rows
    ]
    Delivery.objects.bulk_create(objs, ignore_conflicts=True)
    return len(objs)


def notifications_create_bulk(specs: Iterable[NotificationSpec], *, now: dt.datetime) -> Created:
    """Create notifications and their deliveries, set-based. Call inside the caller's
    transaction: the rows commit (or roll back) with whatever made them due.

    On PostgreSQL one statement however many specs (`outbox_sql`): notifications and
    deliveries inserted together, recipients and preferences joined in the database. Keys
    already present are skipped (idempotent). Inactive recipients get nothing.
    """
    specs = list({s.key: s for s in specs}.values())
    if not specs:
        return Created()
    if is_postgres():
        return _create_bulk_postgres(specs, now)
    # SQLite demo: the same rules in Python, a few statements per call.
    users = {
        u["id"]: u
        for u in User.objects.filter(pk__in={s.recipient_id for s in specs}, is_active=True).values(
            "id", "email", "phone", "agency_id"
        )
    }
    specs = [s for s in specs if s.recipient_id in users]
    if not specs:
        return Created()
    webhook_agency_ids = {s.webhook_agency_id for s in specs if s.webhook_agency_id}
    webhooks = dict(
        Agency.objects.filter(pk__in=webhook_agency_ids)
        .exclude(webhook_url="")
        .values_list("id", "webhook_url")
    )
    by_user, by_agency = _load_preferences(users, webhook_agency_ids)
    inserted = _insert_notifications(specs, now)
    rows: list[tuple[int, str]] = []
    by_kind: dict[str, int] = {}
    for spec in specs:
        notification_id = inserted.get(spec.key)
        if notification_id is None:
            continue
        by_kind[spec.kind] = by_kind.get(spec.kind, 0) + 1
        user = users[spec.recipient_id]
        prefs = by_user.get(user["id"]) or by_agency.get(user["agency_id"]) or _Prefs()
        if prefs.email and user["email"]:
            rows.append((notification_id, str(DeliveryChannel.EMAIL)))
        if prefs.sms and user["phone"]:
            rows.append((notification_id, str(DeliveryChannel.SMS)))
        agency_id = spec.webhook_agency_id
        if agency_id and agency_id in webhooks and by_agency.get(agency_id, _Prefs()).webhook:
            rows.append((notification_id, str(DeliveryChannel.WEBHOOK)))
    deliveries = _insert_deliveries(rows, now)
    return Created(notifications=len(inserted), deliveries=deliveries, by_kind=by_kind)


# Party SMS (当事人短信) -----------------------------------------------------------------------


@dataclass(frozen=True)
class PartySmsSpec:
    """One SMS to one party: a provider template (`settings.SMS_TEMPLATES` name), its
    parameters, and the parameters derived at send time (`derived`, by the resolvers)."""

    party_id: int
    case_id: int
    template: str
    params: dict[str, str]
    text: str
    key: str
    derived: tuple[str, ...] = ()


def party_sms_create(specs: Iterable[PartySmsSpec], *, now: dt.datetime) -> int:
    """Write SMS notifications to parties (the outbox: one notification and one SMS delivery
    each), in the caller's transaction. Idempotent by key. Only to parties who consented and
    have a phone (checked here, the one place). The delivery is due within the quiet hours
    (08:00–21:00 Asia/Shanghai, as reminders). Returns the number written."""
    from mediation.deadlines.policy import shift_into_quiet_hours
    from mediation.parties.models import Party

    specs = list({s.key: s for s in specs}.values())
    if not specs:
        return 0
    allowed = set(
        Party.objects.filter(pk__in={s.party_id for s in specs}, sms_consent=True)
        .exclude(phone="")
        .values_list("pk", flat=True)
    )
    specs = [s for s in specs if s.party_id in allowed]
    if not specs:
        return 0
    existing = set(
        Notification.objects.filter(key__in=[s.key for s in specs]).values_list("key", flat=True)
    )
    fresh = [s for s in specs if s.key not in existing]
    rows = Notification.objects.bulk_create(
        [
            Notification(
                party_id=s.party_id,
                kind="party_sms",
                case_id=s.case_id,
                subject=s.text[:200],
                body=s.text,
                key=s.key,
                data={
                    "sms": {"template": s.template, "params": s.params, "derived": list(s.derived)}
                },
                created_at=now,
            )
            for s in fresh
        ]
    )
    due = shift_into_quiet_hours(now)
    Delivery.objects.bulk_create(
        [
            Delivery(
                notification_id=n.pk,
                channel=DeliveryChannel.SMS,
                next_attempt_at=due,
                created_at=now,
            )
            for n in rows
        ]
    )
    return len(rows)


# Inbox -----------------------------------------------------------------------------------------


def notification_mark_read(*, user: User, notification_ids: Iterable[int], now: dt.datetime) -> int:
    """Mark the user's own notifications read; others' ids are ignored. Returns the count."""
    return Notification.objects.filter(
        recipient=user, pk__in=list(notification_ids), read_at__isnull=True
    ).update(read_at=now)


def notification_mark_all_read(*, user: User, now: dt.datetime) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(read_at=now)
