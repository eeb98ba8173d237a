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
import time
import urllib.request
from email.message import EmailMessage

import psycopg
import pytest

from mediation.core import clock as core_clock
from mediation.core.clock import SHANGHAI
from tests.e2e.faults.harness import FakeClock, disputes_register, township_create, wait_until

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
