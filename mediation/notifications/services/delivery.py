"""Delivery: dispatch marks, claims under a lease, the send, and the recorded outcome.

Nothing here talks to Celery: the delivery task (`workers.deliveries`) or `manage.py sweep
--once` calls `deliveries_deliver` with ids that `deliveries_dispatch` handed out (STYLE.md:
services never `.delay()`).

Delivery protocol (RELIABILITY.md §2.6, §2.7), a chunk of ids at a time:
1. claim (one short statement): a row must be `pending` with `next_attempt_at <= now`, or
   `sending` with an expired lease; it becomes `sending`, `attempts + 1`,
   `lease_until = now + DELIVERY_LEASE_SECONDS`, `claimed_by = worker`. SKIP LOCKED: a row
   another worker is claiming right now is left to it.
2. send, outside any transaction, after re-checking the lease is still ours.
3. finish (one short statement, only while `claimed_by` is still us): `sent`, or back to
   `pending` with exponential backoff and jitter (transient error), or `failed` (permanent
   error, or transient errors exhausted `DELIVERY_MAX_ATTEMPTS`).
A crash between 2 and 3 leaves the row `sending`; when the lease expires it is sent again with
the same idempotency key (at-least-once; receivers deduplicate by key).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q

from mediation.agencies.models import Agency
from mediation.core.db import bulk_cursor, is_postgres
from mediation.notifications.channels import (
    SENDERS,
    ChannelSession,
    OutboundMessage,
    PermanentError,
    TransientError,
)
from mediation.notifications.models import (
    Delivery,
    DeliveryChannel,
    DeliveryStatus,
    Notification,
)

logger = logging.getLogger(__name__)

_random = secrets.SystemRandom()


# Party SMS parameters derived at send time ----------------------------------------------------

# Parameters an SMS template takes that are not stored with the message but derived when it
# goes out (the 查询码: stored only as a keyed hash, `mediation.cases.lookup`). The app that
# owns the value registers its resolver (`register_sms_param`), called with the case id.
_SMS_PARAMS: dict[str, Callable[[int], str]] = {}


def register_sms_param(name: str, resolver: Callable[[int], str]) -> None:
    _SMS_PARAMS[name] = resolver


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
    again. A duplicate hand-out is harmless: `deliveries_deliver` claims under a lease.
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
            "created_at",
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
        (
            pk,
            subject,
            body,
            data,
            email,
            phone,
            case_webhook_url,
            created_at,
            party_phone,
            case_id,
        ) = found
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
            created_at=created_at,
            sms_template=template,
            sms_params=params,
        )
    return out


def _send(
    row: _Claimed,
    message: OutboundMessage | Exception,
    *,
    worker: str,
    session: ChannelSession | None,
    later: Callable[[], dt.datetime],
    still_ours: Callable[[], bool],
) -> tuple[str, dict[str, Any]]:
    """Send one claimed delivery, re-checking the lease first (`still_ours`). Returns the
    outcome (sent | retry | failed | lost) and the fields to record (none for `lost`: the row
    follows its new owner). Never raises for a channel error."""
    try:
        if isinstance(message, Exception):  # reading the message failed: like a failed send
            raise message
        delay = settings.DELIVERY_TEST_DELAY_SECONDS
        if delay > 0:
            time.sleep(delay)
        if not still_ours():
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
