"""Celery tasks: running a task twice gives the same database state and one notification
(STYLE.md). Tasks run in-process (eager); the test clock is MEDIATION_FAKE_NOW_FILE, as for
real workers. E-mail uses the test settings' locmem backend."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.forms.models import model_to_dict

from mediation.accounts.models import Role
from mediation.core.clock import SHANGHAI
from mediation.deadlines.models import Reminder
from mediation.escalation.models import Escalation, SweepRun
from mediation.notifications.models import Delivery, Notification
from mediation.notifications.services import NotificationSpec, notifications_create_bulk
from tests.factories.accounts import head_of, staff
from tests.factories.agencies import township_tree
from tests.factories.cases import register_dispute
from workers import deliveries as delivery_tasks
from workers.celery import VISIBILITY_TIMEOUT, app
from workers.deliveries import deliver_batch
from workers.sweeps import run_sweep

pytestmark = pytest.mark.django_db

AFTER_DUE = dt.datetime(2026, 3, 13, 0, 0, 5, tzinfo=SHANGHAI)


@pytest.fixture
def eager():
    old = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = old


@pytest.fixture
def fake_now(tmp_path, monkeypatch):
    path = tmp_path / "now"

    def set_now(instant: dt.datetime) -> None:
        path.write_text(instant.isoformat())

    monkeypatch.setenv("MEDIATION_FAKE_NOW_FILE", str(path))
    return set_now


def snapshot() -> dict[str, list[dict]]:
    """Every engine row except the sweep log (which records each run by design)."""
    return {
        model.__name__: [model_to_dict(o) for o in model.objects.order_by("pk")]
        for model in (Escalation, Reminder, Notification, Delivery)
    }


@pytest.fixture
def overdue_case(now):
    town = township_tree()
    head = head_of(town.village_committee)
    head.email = "head@example.org"
    head.save(update_fields=["email"])
    mediator = staff(town.village_committee, Role.MEDIATOR)
    case = register_dispute(town, now=now, actor=mediator)
    # This test is about escalation. Registration also planned the triage clock's due-day
    # reminder (09:00 on 03-12); swept 15 hours late it would arrive as a digest, which
    # tests/integration/test_sweeps.py covers. Take it out of the picture.
    Reminder.objects.filter(status="planned").update(status="cancelled")
    return case


def test_run_sweep_twice_gives_the_same_state_and_one_notification(eager, fake_now, overdue_case):
    fake_now(AFTER_DUE)

    first = run_sweep.apply().get()
    state = snapshot()
    second = run_sweep.apply().get()

    assert first["escalated"] == 1
    assert first["dispatched"] == 1
    assert second["escalated"] == second["dispatched"] == second["notifications_queued"] == 0
    assert snapshot() == state
    assert Notification.objects.count() == 1
    assert Delivery.objects.get().status == "sent"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].extra_headers["X-Idempotency-Key"] == (
        f"notification-{Notification.objects.get().pk}"
    )
    assert SweepRun.objects.filter(trigger="celery", finished_at=AFTER_DUE).count() == 2


def test_deliver_batch_twice_sends_once(fake_now, town_user):
    fake_now(AFTER_DUE)
    notifications_create_bulk(
        [
            NotificationSpec(
                recipient_id=town_user.pk, kind="reminder", subject="s", body="b", key="a"
            )
        ],
        now=AFTER_DUE,
    )
    ids = list(Delivery.objects.values_list("pk", flat=True))

    first = deliver_batch.apply(args=[ids]).get()
    state = snapshot()
    second = deliver_batch.apply(args=[ids]).get()

    assert (first["sent"], second["sent"], second["skipped"]) == (1, 0, 1)
    assert snapshot() == state
    assert len(mail.outbox) == 1


@pytest.fixture
def town_user():
    town = township_tree()
    user = staff(town.village_committee, Role.MEDIATOR)
    user.email = "u@example.org"
    user.save(update_fields=["email"])
    return user


def test_run_sweep_hands_out_deliveries_in_chunks(fake_now, town_user, monkeypatch):
    monkeypatch.setattr(delivery_tasks, "DISPATCH_CHUNK", 20)
    fake_now(AFTER_DUE)
    notifications_create_bulk(
        [
            NotificationSpec(
                recipient_id=town_user.pk, kind="reminder", subject="s", body="b", key=f"k{i}"
            )
            for i in range(45)
        ],
        now=AFTER_DUE,
    )
    sent: list[list[int]] = []
    monkeypatch.setattr(
        delivery_tasks.deliver_batch, "apply_async", lambda args: sent.append(args[0])
    )
    monkeypatch.setattr(delivery_tasks, "queued_batches", lambda: 0)

    result = run_sweep.apply().get()

    assert result["dispatched"] == 45
    assert [len(ids) for ids in sent] == [20, 20, 5]
    assert sorted(i for ids in sent for i in ids) == sorted(
        Delivery.objects.values_list("pk", flat=True)
    )
    # The next sweep does not hand them out again while the messages may still be queued.
    sent.clear()
    assert run_sweep.apply().get()["dispatched"] == 0


def test_dispatch_keeps_the_deliveries_queue_short(fake_now, town_user, monkeypatch):
    monkeypatch.setattr(delivery_tasks, "DISPATCH_CHUNK", 20)
    fake_now(AFTER_DUE)
    notifications_create_bulk(
        [
            NotificationSpec(
                recipient_id=town_user.pk, kind="reminder", subject="s", body="b", key=f"k{i}"
            )
            for i in range(45)
        ],
        now=AFTER_DUE,
    )
    sent: list[list[int]] = []
    monkeypatch.setattr(
        delivery_tasks.deliver_batch, "apply_async", lambda args: sent.append(args[0])
    )
    monkeypatch.setattr(
        delivery_tasks, "queued_batches", lambda: delivery_tasks.MAX_QUEUED_BATCHES - 1
    )

    assert run_sweep.apply().get()["dispatched"] == 20
    monkeypatch.setattr(delivery_tasks, "queued_batches", lambda: delivery_tasks.MAX_QUEUED_BATCHES)
    assert run_sweep.apply().get()["dispatched"] == 0
    # Broker unreadable: dispatch anyway (a duplicate hand-out is harmless).
    monkeypatch.setattr(delivery_tasks, "queued_batches", lambda: None)
    assert run_sweep.apply().get()["dispatched"] == 25
    assert [len(ids) for ids in sent] == [20, 20, 5]


def test_task_names_queues_and_reliability_options(settings):
    assert run_sweep.name == "workers.sweeps.run_sweep"
    assert deliver_batch.name == "workers.deliveries.deliver_batch"
    for task in (run_sweep, deliver_batch):
        assert task.acks_late is True
        assert task.reject_on_worker_lost is True
        assert task.time_limit == 120
        assert task.soft_time_limit == 100
        assert task.__doc__
    routes = app.conf.task_routes
    assert routes["workers.sweeps.*"] == {"queue": "sweeps"}
    assert routes["workers.deliveries.*"] == {"queue": "deliveries"}
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert VISIBILITY_TIMEOUT > 120
    assert app.conf.broker_transport_options["visibility_timeout"] == VISIBILITY_TIMEOUT
    entry = app.conf.beat_schedule["sweep"]
    assert entry["task"] == "workers.sweeps.run_sweep"
    assert entry["schedule"] == entry["options"]["expires"] == settings.SWEEP_INTERVAL_SECONDS
    assert delivery_tasks.DISPATCH_CHUNK <= delivery_tasks.MAX_IDS  # a task takes a whole message
