"""Notifications: set-based creation (the outbox) and delivery of one row under a lease.

Nothing here talks to Celery: the sweeps create rows, the delivery layer (a Celery task or
`manage.py sweep --once`) calls `delivery_attempt` per id (STYLE.md: services never `.delay()`).

Delivery protocol (RELIABILITY.md §2.6, §2.7):
1. claim (own short transaction): the row must be `pending` with `next_attempt_at <= now`, or
   `sending` with an expired lease; it becomes `sending`, `attempts + 1`,
   `lease_until = now + DELIVERY_LEASE_SECONDS`, `claimed_by = worker`. SKIP LOCKED: a row
   another worker is claiming right now is left to it.
2. send, outside any transaction, after re-checking the lease is still ours.
3. finish (own short transaction, only while `claimed_by` is still us): `sent`, or back to
   `pending` with exponential backoff and jitter (transient error), or `failed` (permanent
   error, or transient errors exhausted `DELIVERY_MAX_ATTEMPTS`).
A crash between 2 and 3 leaves the row `sending`; when the lease expires it is sent again with
the same idempotency key (at-least-once; receivers deduplicate by key).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q

from mediation.accounts.models import User
from mediation.agencies.models import Agency
from mediation.notifications.channels import (
    SENDERS,
    ChannelSession,
    OutboundMessage,
    PermanentError,
    TransientError,
)
from mediation.notifications.models import (
    ChannelPreference,
    Delivery,
    DeliveryChannel,
    DeliveryStatus,
    Notification,
)

logger = logging.getLogger(__name__)

_random = secrets.SystemRandom()


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def bulk_cursor() -> Any:
    """A cursor on the default connection that binds parameters server-side (PostgreSQL).

    Django's psycopg cursors bind client-side: every element of a parameter array is quoted
    into the SQL text, which for the outbox statements (thousands of Chinese texts per batch)
    cost more client time than the server spent inserting (BENCHMARKS.md, sweep). With this
    cursor `%b` parameters travel in the binary protocol, unquoted. Statements are never
    prepared: a generic plan must not replace the planner's view of each batch. The cursor
    goes through Django's wrappers, so query capture and `execute_wrapper` still see it.
    """
    connection.ensure_connection()
    return connection._prepare_cursor(_unprepared_cursor_class()(connection.connection))


@functools.cache
def _unprepared_cursor_class() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor

    class UnpreparedCursor(ServerBindingCursor):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            kwargs["prepare"] = False
            return super().execute(query, params, **kwargs)

    return UnpreparedCursor


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

# Parameters an SMS template takes that are not stored with the message but derived when it
# goes out (the 查询码: stored only as a keyed hash, `mediation.cases.lookup`). The app that
# owns the value registers its resolver (`register_sms_param`), called with the case id.
_SMS_PARAMS: dict[str, Callable[[int], str]] = {}


def register_sms_param(name: str, resolver: Callable[[int], str]) -> None:
    _SMS_PARAMS[name] = resolver


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


# Dispatch (hand ids to the delivery layer) -----------------------------------------------------


def lease_clock() -> dt.datetime:
    """Leases are an infrastructure timer and run on the real clock, never on the business
    clock (`mediation.core.clock.now`, which tests move and an NTP step can jump): a jump must
    not expire the lease of a worker that is still sending (seen as a duplicate e-mail in the
    clock-jump fault test)."""
    return dt.datetime.now(dt.UTC)


def _claimable(now: dt.datetime) -> Q:
    return Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=DeliveryStatus.SENDING, lease_until__lte=lease_clock()
    )


def deliveries_claimable_ids(*, now: dt.datetime, limit: int) -> list[int]:
    """Ids of deliveries that may be attempted now, oldest first (no claim, no lock)."""
    return list(
        Delivery.objects.filter(_claimable(now))
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def deliveries_dispatch(*, now: dt.datetime, limit: int) -> list[int]:
    """Mark up to `limit` claimable, not-yet-dispatched deliveries as handed out; return ids.

    The mark (`dispatched_until = now + lease`) keeps the next sweeps from handing the same
    ids to Celery again while a message for them is queued. If that message is lost (Redis
    restarted or flushed, a publish failed), the mark expires and a later sweep hands them out
    again. A duplicate hand-out is harmless: `delivery_attempt` claims under a lease.
    """
    until = now + dt.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    not_dispatched = Q(dispatched_until__isnull=True) | Q(dispatched_until__lte=now)
    with transaction.atomic():
        qs = Delivery.objects.filter(_claimable(now) & not_dispatched).order_by(
            "next_attempt_at", "id"
        )
        if is_postgres():
            qs = qs.select_for_update(skip_locked=True)
        ids = list(qs.values_list("id", flat=True)[:limit])
        if ids:
            Delivery.objects.filter(pk__in=ids).update(dispatched_until=until)
    return ids


# Delivery ------------------------------------------------------------------------------------

# Deliveries claimed per statement by `deliveries_deliver` (a delivery task carries ≤ 50 ids).
CLAIM_CHUNK = 50
# Outcomes are recorded in one statement per chunk, and sooner when the oldest unrecorded
# one is this old: a crash between "sent" and "recorded" resends (same key) at most what
# went out in this window, as a crash between one send and its mark always could.
FINISH_WITHIN_SECONDS = 0.25
# The lease re-check before a send is one statement for the chunk's unsent rows, at most this
# old when a message goes out (rather than one query per message). A live lease cannot be
# claimed by another worker, so in between only an operator's reset could move a row.
CONFIRM_WITHIN_SECONDS = 0.25


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random."""
    base = settings.DELIVERY_BACKOFF_BASE_SECONDS * (2 ** max(attempts - 1, 0))
    delay = min(settings.DELIVERY_BACKOFF_MAX_SECONDS, base)
    return delay / 2 + _random.uniform(0, delay / 2)


@dataclass(frozen=True)
class _Claimed:
    id: int
    notification_id: int
    channel: str
    attempts: int


_CLAIM_SQL = """
UPDATE notifications_delivery d
SET status = 'sending', attempts = d.attempts + 1, lease_until = %(lease_until)s,
    claimed_by = %(worker)s
FROM (
    SELECT id FROM notifications_delivery
    WHERE id = ANY(%(ids)b::bigint[])
      AND ((status = 'pending' AND next_attempt_at <= %(now)s)
           OR (status = 'sending' AND lease_until <= %(lease_now)s))
    ORDER BY id
    FOR UPDATE SKIP LOCKED
) c
WHERE d.id = c.id
RETURNING d.id, d.notification_id, d.channel, d.attempts
"""


def _claim_many(ids: Sequence[int], *, now: dt.datetime, worker: str) -> list[_Claimed]:
    """Claim the claimable ones of `ids` in one short transaction (pending and due, or sending
    under an expired lease; SKIP LOCKED: a row another worker is claiming is left to it).
    Returns them in the order of `ids`."""
    lease_now = lease_clock()
    lease_until = lease_now + dt.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    if not is_postgres():
        claimed = []
        for delivery_id in ids:
            delivery = _claim(delivery_id, now=now, worker=worker)
            if delivery is not None:
                claimed.append(
                    _Claimed(
                        delivery.pk, delivery.notification_id, delivery.channel, delivery.attempts
                    )
                )
        return claimed
    params = {
        "ids": list(ids),
        "now": now,
        "lease_now": lease_now,
        "lease_until": lease_until,
        "worker": worker[:200],
    }
    with transaction.atomic(), bulk_cursor() as cur:
        cur.execute(_CLAIM_SQL, params)
        rows = {r[0]: _Claimed(*r) for r in cur.fetchall()}
    return [rows.pop(i) for i in ids if i in rows]  # a repeated id is claimed once


def _claim(delivery_id: int, *, now: dt.datetime, worker: str) -> Delivery | None:
    lease_until = lease_clock() + dt.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    with transaction.atomic():
        qs = Delivery.objects.filter(_claimable(now), pk=delivery_id)
        if is_postgres():
            qs = qs.select_for_update(skip_locked=True)
        delivery = qs.first()
        if delivery is None:
            return None
        delivery.status = DeliveryStatus.SENDING
        delivery.attempts += 1
        delivery.lease_until = lease_until
        delivery.claimed_by = worker[:200]
        delivery.save(update_fields=["status", "attempts", "lease_until", "claimed_by"])
    return delivery


def _still_ours(delivery_id: int, worker: str) -> bool:
    """The lease re-check just before a send (one primary-key read, no ORM)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT 1 FROM notifications_delivery WHERE id = %s AND status = %s "
            "AND claimed_by = %s",
            [delivery_id, DeliveryStatus.SENDING.value, worker[:200]],
        )
        return cur.fetchone() is not None


def _still_ours_many(ids: Sequence[int], worker: str) -> set[int]:
    """`_still_ours` for many rows in one statement: the ids still `sending` under our claim."""
    if not ids:
        return set()
    return set(
        Delivery.objects.filter(
            pk__in=list(ids), status=DeliveryStatus.SENDING, claimed_by=worker[:200]
        ).values_list("pk", flat=True)
    )


def _finish(delivery_id: int, worker: str, **fields: Any) -> bool:
    updated = Delivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.SENDING, claimed_by=worker[:200]
    ).update(**fields)
    if not updated:
        logger.warning("delivery %s: lease lost before finishing (%s)", delivery_id, fields)
    return bool(updated)


_FINISH_MANY_SQL = """
UPDATE notifications_delivery d
SET status = v.status,
    sent_at = COALESCE(v.sent_at, d.sent_at),
    failed_at = COALESCE(v.failed_at, d.failed_at),
    next_attempt_at = COALESCE(v.next_attempt_at, d.next_attempt_at),
    lease_until = NULL,
    dispatched_until = CASE WHEN v.undispatch THEN NULL ELSE d.dispatched_until END,
    address = COALESCE(v.address, d.address),
    last_error = v.last_error,
    provider_message_id = COALESCE(v.provider_message_id, d.provider_message_id)
FROM unnest(%(ids)b::bigint[], %(statuses)b::varchar[], %(sent)b::timestamptz[],
            %(failed)b::timestamptz[], %(next)b::timestamptz[], %(addresses)b::varchar[],
            %(errors)b::text[], %(undispatch)b::boolean[], %(provider_ids)b::varchar[])
    AS v(id, status, sent_at, failed_at, next_attempt_at, address, last_error, undispatch,
         provider_message_id)
WHERE d.id = v.id AND d.status = 'sending' AND d.claimed_by = %(worker)s
RETURNING d.id
"""


def _finish_many(worker: str, outcomes: Sequence[tuple[int, dict[str, Any]]]) -> set[int]:
    """`_finish` for many rows in one statement; returns the ids still ours (now recorded)."""
    if not outcomes:
        return set()
    if not is_postgres():
        return {i for i, fields in outcomes if _finish(i, worker, **fields)}

    def column(name: str) -> list[Any]:
        return [fields.get(name) for _i, fields in outcomes]

    params = {
        "worker": worker[:200],
        "ids": [i for i, _f in outcomes],
        "statuses": [str(s) for s in column("status")],
        "sent": column("sent_at"),
        "failed": column("failed_at"),
        "next": column("next_attempt_at"),
        "addresses": column("address"),
        "errors": [f.get("last_error", "") for _i, f in outcomes],
        "undispatch": ["dispatched_until" in f for _i, f in outcomes],
        "provider_ids": column("provider_message_id"),
    }
    with transaction.atomic(), bulk_cursor() as cur:
        cur.execute(_FINISH_MANY_SQL, params)
        done = {r[0] for r in cur.fetchall()}
    for delivery_id, fields in outcomes:
        if delivery_id not in done:
            logger.warning("delivery %s: lease lost before finishing (%s)", delivery_id, fields)
    return done


def _outbound_many(rows: Sequence[_Claimed]) -> dict[int, OutboundMessage]:
    """The messages of claimed deliveries, by delivery id: two queries for the lot.

    Plain values, not model instances: a `Case` loaded with deferred fields makes django-fsm
    re-read its state, one query per row."""
    notifications = {
        values[0]: values
        for values in Notification.objects.filter(
            pk__in={r.notification_id for r in rows}
        ).values_list(
            "id",
            "subject",
            "body",
            "data",
            "recipient__email",
            "recipient__phone",
            "case__holder_agency__webhook_url",
            "party__phone",
            "case_id",
        )
    }
    hook_agencies = {
        (n[3] or {}).get("webhook_agency_id")
        for r in rows
        if r.channel == DeliveryChannel.WEBHOOK and (n := notifications.get(r.notification_id))
    }
    hook_urls = dict(
        Agency.objects.filter(pk__in={a for a in hook_agencies if a}).values_list(
            "pk", "webhook_url"
        )
    )
    out = {}
    for r in rows:
        found = notifications.get(r.notification_id)
        if found is None:
            continue
        pk, subject, body, data, email, phone, case_webhook_url, party_phone, case_id = found
        sms = (data or {}).get("sms") if r.channel == DeliveryChannel.SMS else None
        template, params = "", {}
        if isinstance(sms, dict):
            template = str(sms.get("template") or "")
            params = dict(sms.get("params") or {})
            for name in sms.get("derived") or ():
                resolver = _SMS_PARAMS.get(name)
                value = resolver(case_id) if resolver is not None and case_id else ""
                params[name] = value
                subject = subject.replace("{" + name + "}", value)
        webhook_url = ""
        if r.channel == DeliveryChannel.WEBHOOK:
            agency_id = (data or {}).get("webhook_agency_id")
            webhook_url = (hook_urls.get(agency_id) if agency_id else case_webhook_url) or ""
        out[r.id] = OutboundMessage(
            notification_id=pk,
            subject=subject,
            body=body,
            email=email or "",
            phone=party_phone or phone or "",
            webhook_url=webhook_url,
            sms_template=template,
            sms_params=params,
        )
    return out


def _outbound(delivery: Delivery) -> OutboundMessage:
    claimed = _Claimed(delivery.pk, delivery.notification_id, delivery.channel, delivery.attempts)
    message = _outbound_many([claimed]).get(delivery.pk)
    if message is None:
        raise Notification.DoesNotExist(f"notification {delivery.notification_id}")
    return message


def _send(
    row: _Claimed,
    message: OutboundMessage | Exception,
    *,
    worker: str,
    session: ChannelSession | None,
    later: Callable[[], dt.datetime],
    still_ours: Callable[[], bool] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Send one claimed delivery, re-checking the lease first (`still_ours`, by default one
    query for this row). Returns the outcome (sent | retry | failed | lost) and the fields to
    record (none for `lost`: the row follows its new owner). Never raises for a channel
    error."""
    try:
        if isinstance(message, Exception):  # reading the message failed: like a failed send
            raise message
        delay = settings.DELIVERY_TEST_DELAY_SECONDS
        if delay > 0:
            time.sleep(delay)
        if not (still_ours() if still_ours is not None else _still_ours(row.id, worker)):
            logger.warning("delivery %s: lease lost before sending; not sent", row.id)
            return "lost", {}
        address = SENDERS[row.channel](message, session)
    except PermanentError as exc:
        logger.warning("delivery %s failed permanently: %s", row.id, exc)
        return "failed", {
            "status": DeliveryStatus.FAILED,
            "failed_at": later(),
            "lease_until": None,
            "last_error": str(exc)[:2000],
        }
    except Exception as exc:  # TransientError, or a bug: retried, then dead-lettered
        if not isinstance(exc, TransientError):
            logger.exception("delivery %s: unexpected error", row.id)
        error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, TransientError) else str(exc)
        if row.attempts >= settings.DELIVERY_MAX_ATTEMPTS:
            return "failed", {
                "status": DeliveryStatus.FAILED,
                "failed_at": later(),
                "lease_until": None,
                "last_error": f"重试 {row.attempts} 次后放弃：{error}"[:2000],
            }
        next_at = later() + dt.timedelta(seconds=backoff_seconds(row.attempts))
        logger.info("delivery %s: transient error, retry at %s: %s", row.id, next_at, error)
        return "retry", {
            "status": DeliveryStatus.PENDING,
            "next_attempt_at": next_at,
            "lease_until": None,
            "dispatched_until": None,
            "last_error": error[:2000],
        }
    return "sent", {
        "status": DeliveryStatus.SENT,
        "sent_at": later(),
        "lease_until": None,
        "address": address[:500],
        "last_error": "",
        "provider_message_id": str(getattr(address, "provider_message_id", ""))[:100],
    }


def delivery_attempt(
    *, delivery_id: int, now: dt.datetime, worker: str, session: ChannelSession | None = None
) -> str:
    """Claim, send and record one delivery. Returns sent | retry | failed | skipped | lost.

    `skipped`: not claimable now (already sent, failed, in backoff, or another worker's lease).
    `lost`: our lease was taken over while we were sending (we sent anyway; the row follows
    the other worker). Never raises for a channel error: one bad message must not block the
    others in a batch.
    """
    started = time.monotonic()
    delivery = _claim(delivery_id, now=now, worker=worker)
    if delivery is None:
        return "skipped"
    row = _Claimed(delivery.pk, delivery.notification_id, delivery.channel, delivery.attempts)
    try:
        message: OutboundMessage | Exception = _outbound(delivery)
    except Exception as exc:  # recorded by _send like a failing send
        message = exc
    outcome, fields = _send(
        row,
        message,
        worker=worker,
        session=session,
        later=lambda: now + dt.timedelta(seconds=time.monotonic() - started),
    )
    if fields and not _finish(delivery.pk, worker, **fields) and outcome == "sent":
        outcome = "lost"
    return outcome


@dataclass
class DeliveryTally:
    sent: int = 0
    retry: int = 0
    failed: int = 0
    skipped: int = 0
    lost: int = 0

    def add(self, outcome: str, n: int = 1) -> None:
        setattr(self, outcome, getattr(self, outcome) + n)

    @property
    def total(self) -> int:
        return self.sent + self.retry + self.failed + self.skipped + self.lost


def deliveries_deliver(
    ids: Iterable[int],
    *,
    worker: str,
    clock: Callable[[], dt.datetime],
    budget_seconds: float | None = None,
    session: ChannelSession | None = None,
) -> DeliveryTally:
    """Deliver `ids`: claim a chunk at a time (one statement), read their messages (two
    queries), then per delivery re-check the lease (one statement for the chunk's unsent rows
    every CONFIRM_WITHIN_SECONDS) and send over shared SMTP and HTTP connections: `session`'s
    (the worker process's, kept open across batches) or, without one, the batch's own.
    Outcomes are recorded in one statement per chunk (or every FINISH_WITHIN_SECONDS).
    `clock()` is read per chunk (a batch can take a while).

    Between chunks, stale or broken database connections are replaced: a DB blip fails that
    chunk (its rows wait for their lease, then a later sweep hands them out again), not the
    rest of the batch. Past `budget_seconds` the rest are left alone: they stay claimable and
    a later sweep hands them out again.
    """
    started = time.monotonic()
    tally = DeliveryTally()
    ids = list(dict.fromkeys(ids))
    with contextlib.nullcontext(session) if session is not None else ChannelSession() as session:
        for offset in range(0, len(ids), CLAIM_CHUNK):
            if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                # Out of time: let the next sweep hand the rest out again right away.
                Delivery.objects.filter(pk__in=ids[offset:], status=DeliveryStatus.PENDING).update(
                    dispatched_until=None
                )
                break
            if not connection.in_atomic_block:
                close_old_connections()
            chunk = ids[offset : offset + CLAIM_CHUNK]
            before = tally.total
            try:
                _deliver_chunk(chunk, worker=worker, clock=clock, session=session, tally=tally)
            except Exception:  # a database error: the leases expire and a later sweep retries
                logger.exception("deliveries %s…: chunk aborted", chunk[:3])
                tally.add("skipped", len(chunk) - (tally.total - before))
    return tally


def _deliver_chunk(
    ids: Sequence[int],
    *,
    worker: str,
    clock: Callable[[], dt.datetime],
    session: ChannelSession,
    tally: DeliveryTally,
) -> None:
    now = clock()
    started = time.monotonic()

    def later() -> dt.datetime:
        return now + dt.timedelta(seconds=time.monotonic() - started)

    claimed = _claim_many(ids, now=now, worker=worker)
    confirmed = time.monotonic()
    tally.add("skipped", len(ids) - len(claimed))
    if not claimed:
        return
    try:
        messages: dict[int, OutboundMessage | Exception] = dict(_outbound_many(claimed))
    except Exception as exc:  # recorded by _send like a failing send: retried with backoff
        messages = {row.id: exc for row in claimed}
    pending: list[tuple[int, dict[str, Any]]] = []
    outcomes: dict[int, str] = {}
    oldest = 0.0
    ours = {row.id for row in claimed}  # as claimed by the statement above

    def still_ours(index: int) -> bool:  # claimed[index:] are the unsent ones
        nonlocal ours, confirmed
        if time.monotonic() - confirmed >= CONFIRM_WITHIN_SECONDS:
            ours = _still_ours_many([row.id for row in claimed[index:]], worker)
            confirmed = time.monotonic()
        return claimed[index].id in ours

    def flush() -> None:
        recorded = _finish_many(worker, pending)
        for delivery_id, _fields in pending:
            outcome = outcomes[delivery_id]
            tally.add(outcome if delivery_id in recorded or outcome != "sent" else "lost")
        pending.clear()

    for index, row in enumerate(claimed):
        message = messages.get(row.id) or Notification.DoesNotExist(
            f"notification {row.notification_id}"
        )
        outcome, fields = _send(
            row,
            message,
            worker=worker,
            session=session,
            later=later,
            still_ours=functools.partial(still_ours, index),
        )
        if not fields:
            tally.add(outcome)
            continue
        if not pending:
            oldest = time.monotonic()
        pending.append((row.id, fields))
        outcomes[row.id] = outcome
        if time.monotonic() - oldest >= FINISH_WITHIN_SECONDS:
            flush()
    flush()


# Inbox -----------------------------------------------------------------------------------------


def notification_mark_read(*, user: User, notification_ids: Iterable[int], now: dt.datetime) -> int:
    """Mark the user's own notifications read; others' ids are ignored. Returns the count."""
    return Notification.objects.filter(
        recipient=user, pk__in=list(notification_ids), read_at__isnull=True
    ).update(read_at=now)


def notification_mark_all_read(*, user: User, now: dt.datetime) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(read_at=now)
