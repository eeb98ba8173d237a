"""Self-test of the fault harness: the tools work before they are trusted to judge the engine.

Fast (well under 30 s): Redis restart and flush, both sinks receiving real messages, a real
Celery worker answering ping, losing a child, being killed and restarted, a PostgreSQL
connection being terminated by application_name, and the shared test clock.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import smtplib
import sys
import threading
import time
import urllib.request
from email.message import EmailMessage

import psycopg
import pytest

from mediation.core import clock as core_clock
from mediation.core.clock import SHANGHAI
from tests.e2e.faults.harness import (
    SETPRIV,
    FakeClock,
    ManagedProcess,
    check_invariants,
    disputes_register,
    township_create,
    wait_until,
)

pytestmark = [pytest.mark.fault, pytest.mark.timeout(120)]


@pytest.mark.django_db(transaction=True)
def test_redis_flushall_and_restart_lose_everything_on_the_same_port(cluster_factory):
    cluster = cluster_factory()
    redis = cluster.redis
    port = redis.port
    with redis.client() as c:
        c.rpush("q", "a", "b")

    redis.flushall()
    assert redis.dbsize() == 0

    with redis.client() as c:
        c.rpush("q", "c")
    redis.restart(down_seconds=0.2)

    assert redis.port == port
    assert redis.ping()
    assert redis.dbsize() == 0


@pytest.mark.django_db(transaction=True)
def test_sinks_record_every_message_with_its_idempotency_key(cluster_factory):
    cluster = cluster_factory()
    for _ in range(2):  # the second copy is a raw duplicate
        msg = EmailMessage()
        msg["From"] = "mediation@localhost"
        msg["To"] = "head@ft.example"
        msg["Subject"] = "督办提醒"
        msg["Message-ID"] = "<notification-7@mediation.local>"
        msg["X-Idempotency-Key"] = "notification-7"
        msg.set_content("测试")
        with smtplib.SMTP("127.0.0.1", cluster.smtp.port, timeout=5) as smtp:
            smtp.send_message(msg)
    body = json.dumps({"msgtype": "text", "idempotency_key": "notification-8"}).encode()
    request = urllib.request.Request(
        cluster.webhook.url("/hook/x"),
        data=body,
        headers={"Content-Type": "application/json", "Idempotency-Key": "notification-8"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200

    mails = cluster.smtp.records()
    assert [(m["key"], m["message_id"], m["to"], m["subject"]) for m in mails] == [
        ("notification-7", "<notification-7@mediation.local>", ["head@ft.example"], "督办提醒")
    ] * 2
    assert cluster.smtp.raw_duplicates() == 1
    hooks = cluster.webhook.records()
    assert [(h["key"], h["path"], h["body_key"]) for h in hooks] == [
        ("notification-8", "/hook/x", "notification-8")
    ]
    assert len(cluster.smtp.path.read_text().splitlines()) == 2


@pytest.mark.django_db(transaction=True)
def test_worker_answers_ping_survives_a_child_kill_and_restarts_after_kill_9(cluster_factory):
    cluster = cluster_factory()
    worker = cluster.start_worker("w1", concurrency=2)
    cluster.wait_workers_ready(["w1"], timeout=60)
    wait_until(lambda: len(worker.children()) == 2, timeout=10, what="two pool children")
    child = worker.kill_child(random.Random(1))

    wait_until(
        lambda: len(worker.children()) == 2 and child not in worker.children(),
        timeout=15,
        what="the pool to replace the killed child",
    )
    cluster.kill("w1")
    assert not worker.alive()
    assert "w1@faults" not in cluster.ping(timeout=0.5)

    cluster.restart("w1")
    cluster.wait_workers_ready(["w1"], timeout=60)
    assert worker.starts == 2


@pytest.mark.skipif(SETPRIV is None, reason="no setpriv: processes are not tied to the runner")
def test_a_process_started_from_a_thread_that_ends_keeps_running(tmp_path):
    """`setpriv --pdeathsig KILL` ties a child to the thread that forked it (prctl(2)): a
    worker that the fault test's restart policy (a thread) started again was SIGKILLed when
    that thread ended, and the test then saw "both workers stopped consuming"."""
    procs = [
        ManagedProcess(
            f"sleeper{i}",
            [sys.executable, "-c", "import time; time.sleep(60)"],
            {"PATH": "/usr/bin:/bin"},
            tmp_path / f"sleeper{i}.log",
        )
        for i in range(2)
    ]
    try:
        procs[0].start()  # from this (the main) thread
        starter = threading.Thread(target=lambda: (procs[1].start(), time.sleep(0.5)))
        starter.start()
        starter.join()
        time.sleep(1.0)  # the parent-death signal would have arrived by now

        assert [p.alive() for p in procs] == [True, True]
    finally:
        for p in procs:
            p.kill()


@pytest.mark.django_db(transaction=True)
def test_pg_terminate_backend_hits_only_connections_with_the_celery_name(cluster_factory):
    from django.db import connection

    cluster = cluster_factory()
    s = connection.settings_dict
    params = {
        "host": s.get("HOST") or "127.0.0.1",
        "port": int(s.get("PORT") or 5432),
        "user": s.get("USER") or None,
        "dbname": s["NAME"],
        "autocommit": True,
    }
    victim = psycopg.connect(application_name="celery-selftest", **params)
    bystander = psycopg.connect(application_name="mediation-selftest", **params)
    try:
        terminated = cluster.terminate_db_backends("celery%")

        assert terminated == 1
        with pytest.raises(psycopg.OperationalError):
            victim.execute("SELECT 1")
        assert bystander.execute("SELECT 1").fetchone() == (1,)
    finally:
        victim.close()
        bystander.close()


def test_fake_clock_is_read_by_the_project_clock_and_keeps_running(tmp_path, monkeypatch):
    fake = FakeClock(tmp_path / "now")
    monkeypatch.setenv("MEDIATION_FAKE_NOW_FILE", str(fake.path))
    friday = dt.datetime(2026, 3, 13, 17, 0, tzinfo=SHANGHAI)

    fake.set(friday)
    first = core_clock.now()
    time.sleep(0.3)
    second = core_clock.now()
    fake.advance(3 * 86400)

    assert abs((first - friday).total_seconds()) < 0.2
    assert 0.25 < (second - first).total_seconds() < 1.0
    assert abs((core_clock.now() - (friday + dt.timedelta(days=3))).total_seconds()) < 1.0


@pytest.mark.django_db(transaction=True)
def test_backdated_registrations_give_overdue_triage_clocks_quickly(cluster_factory):
    from mediation.deadlines.models import Clock

    cluster = cluster_factory()
    town = township_create(webhook=cluster.webhook)
    wednesday = dt.datetime(2026, 3, 11, 9, 0, tzinfo=SHANGHAI)
    cluster.clock.set(wednesday)
    monday = dt.datetime(2026, 3, 9, 10, 0, tzinfo=SHANGHAI)

    started = time.monotonic()
    ids = disputes_register(town, count=60, now=monday, rng=random.Random(3))
    elapsed = time.monotonic() - started

    clocks = Clock.objects.filter(case_id__in=ids, rule_code="dispute.triage", status="running")
    assert clocks.count() == 60
    assert all(c.due_at < cluster.clock.now() for c in clocks)
    print(f"\n[faults] 60 registrations took {elapsed:.2f}s")
    assert elapsed < 15


@pytest.mark.django_db(transaction=True)
def test_the_invariant_checker_flags_what_it_should(cluster_factory, settings):
    """In-process sweep and delivery into the real sinks: the checker passes a clean run,
    flags an unescalated overdue clock and a stuck delivery, and tolerates a raw duplicate at
    a sink only when a fault was injected just before its first copy arrived."""
    from mediation.escalation.sweeps import sweep_run
    from mediation.notifications.models import Delivery
    from mediation.notifications.services import deliveries_deliver, deliveries_dispatch

    cluster = cluster_factory()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", cluster.smtp.port
    town = township_create(webhook=cluster.webhook)
    cluster.clock.set(dt.datetime(2026, 3, 11, 10, 0, tzinfo=SHANGHAI))
    monday = dt.datetime(2026, 3, 9, 10, 0, tzinfo=SHANGHAI)
    disputes_register(town, count=3, now=monday, rng=random.Random(5))

    before = check_invariants(cluster)
    assert any("without a level-1 escalation" in v for v in before.violations)

    now = cluster.clock.now()
    sweep_run(now=now, trigger="selftest")
    ids = deliveries_dispatch(now=now, limit=100)
    deliveries_deliver(ids, worker="selftest", clock=cluster.clock.now)
    clean = check_invariants(cluster)
    assert clean.violations == []
    assert clean.stats["escalations"] == 3
    assert clean.stats["email_distinct_keys"] == clean.stats["email_sent_rows"] > 0
    assert clean.stats["webhook_distinct_keys"] == clean.stats["webhook_sent_rows"] > 0

    first = cluster.smtp.records()[0]
    resend = EmailMessage()
    resend["From"], resend["To"], resend["Subject"] = "m@localhost", first["to"][0], "dup"
    resend["Message-ID"] = first["message_id"]
    resend["X-Idempotency-Key"] = first["key"]
    resend.set_content("dup")
    with smtplib.SMTP("127.0.0.1", cluster.smtp.port, timeout=5) as smtp:
        smtp.send_message(resend)
    dup = check_invariants(cluster, duplicate_window=2.0)
    assert any("more than once without a kill" in v for v in dup.violations)
    cluster.fault_times.append(first["t"] + 0.5)  # as if a kill had landed right after it
    assert check_invariants(cluster, duplicate_window=2.0).violations == []
    assert check_invariants(cluster, duplicate_window=2.0).stats["raw_duplicates"] == 1

    Delivery.objects.filter(pk=ids[0]).update(
        status="sending", lease_until=now - dt.timedelta(minutes=1)
    )
    stuck = check_invariants(cluster, duplicate_window=2.0)
    assert any("'sending' with an expired lease" in v for v in stuck.violations)
