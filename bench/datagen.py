"""Bulk data for the benchmarks: `python -m bench.run datagen --scale 1m`.

Everything is written by a handful of `INSERT … SELECT … FROM generate_series` statements in
the dedicated database `mediation_bench` (created and migrated on first use), never through
the services: the point is to get 1 M or 5 M rows in a minute or two, not to exercise the
case workflow. Secondary indexes and unique constraints of the big tables are dropped for
the load and rebuilt afterwards; foreign-key triggers are skipped for the session
(`session_replication_role = replica`) because every key is valid by construction.

Shape (N = 100k / 1m / 5m cases; case id i = 1..N):

- The county 综治中心 (root) and 信访局; 20 townships, each a 综治中心 under the county with the
  township mediation committee below it; 1,000 village mediation committees (50 under each
  township committee), each with a group robot URL.
- Users: per village a head (role supervisor) and two mediators; three supervisors per
  township peace office and at the county peace office. Village heads have API tokens.
- N open disputes spread over the villages: i % 10 in 0..3 `registered` (running
  `dispute.triage` clock), the rest `mediating` (running `dispute.mediate` clock, plus a
  stopped triage clock). Every case has one running duty clock: N open clocks.
- Exactly 10,000 "newly overdue" clocks: cases with i % (N / 10,000) == 0, due yesterday, no
  escalation yet. Every other running clock is due 7 to 97 days from now.
- Cases with i % 5 == 1 have the village head as assignee (one recipient per reminder:
  used by the delivery benchmark). Bench 3 takes registered cases with i % 10 in (2, 3).
- Case events: `register` for every case, and triage / assign / accept / start_mediation
  for the mediating ones (the statistics pages read them).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import psycopg

from bench.common import DB_NAME, OVERDUE_TARGET, SCALES, log

TOWNSHIPS = 20
VILLAGES = 1_000
OVERDUE = OVERDUE_TARGET
PASSWORD = "bench-password-1"
BIG_TABLES = (
    "cases_case",
    "deadlines_clock",
    "cases_caseevent",
    "parties_party",
    "cases_caseparty",
)
APP_TABLES = (
    "notifications_delivery",
    "notifications_notification",
    "notifications_channelpreference",
    "escalation_escalation",
    "escalation_sweeprun",
    "deadlines_reminder",
    "deadlines_clockpause",
    "deadlines_clock",
    "cases_caseevent",
    "cases_custody",
    "cases_referral",
    "cases_extension",
    "cases_opinion",
    "cases_agreement",
    "casefiles_fileaccess",
    "casefiles_attachment",
    "casefiles_mediationsession_parties_present",
    "casefiles_mediationsession",
    "casefiles_followupvisit",
    "casefiles_oralagreementrecord",
    "cases_caseparty",
    "parties_idnumberreveallog",
    "parties_party",
    "cases_casenumbersequence",
    "cases_case",
    "cases_channel",
    "knox_authtoken",
    "django_session",
    "accounts_user",
    "agencies_agency",
)


def ensure_database(*, reset: bool = False) -> bool:
    """Create (or with reset, recreate) the bench database; returns True if it is new."""
    with psycopg.connect("postgresql://root@127.0.0.1:5432/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if exists and reset:
            conn.execute(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
            return True
    return False


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _indexes(cur: Any, table: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(secondary indexes, unique constraints) of a table, with their definitions."""
    cur.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.tablename = %s AND i.indexname NOT IN (
            SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)
        """,
        [table, table],
    )
    indexes = list(cur.fetchall())
    cur.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'u'",
        [table],
    )
    constraints = list(cur.fetchall())
    return indexes, constraints


def _agencies_and_users(cur: Any, now: dt.datetime) -> dict[str, Any]:
    from django.contrib.auth.hashers import make_password

    # As tests/factories/agencies.py: the county 综治中心 is the root, each township 综治中心
    # sits under it with the township mediation committee below, and the village committees
    # under that. Supervisors of a 综治中心 thus see every case below it.
    agencies: list[tuple[Any, ...]] = [
        (1, "bench-county-po", "测试县综治中心", "peace_office", "county", None, "BCP", ""),
        (2, "bench-county-pb", "测试县信访局", "petition_office", "county", 1, "BCB", ""),
    ]
    per_town = VILLAGES // TOWNSHIPS
    for t in range(TOWNSHIPS):
        committee, centre = 10 + 2 * t, 11 + 2 * t
        agencies.append(
            (
                centre,
                f"bench-t{t}-po",
                f"测试镇{t}综治中心",
                "peace_office",
                "township",
                1,
                f"BTP{t}",
                "",
            )
        )
        agencies.append(
            (
                committee,
                f"bench-t{t}",
                f"测试镇{t}人民调解委员会",
                "mediation_committee",
                "township",
                centre,
                f"BT{t}",
                "",
            )
        )
    for v in range(VILLAGES):
        parent = 10 + 2 * (v // per_town)  # the township mediation committee
        agencies.append(
            (
                1000 + v,
                f"bench-v{v}",
                f"测试村{v}人民调解委员会",
                "mediation_committee",
                "village",
                parent,
                f"BV{v:04d}",
                f"http://127.0.0.1:9/robot/v{v}",
            )
        )
    cur.executemany(
        "INSERT INTO agencies_agency (id, code, name, kind, level, parent_id, case_number_prefix,"
        " webhook_url, is_active) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, true)",
        agencies,
    )
    password = make_password(PASSWORD)
    users: list[tuple[Any, ...]] = []

    def user(uid: int, username: str, role: str, agency: int, name: str) -> None:
        users.append(
            (uid, password, username, f"{username}@bench.example", role, agency, name, now)
        )

    for n in range(3):
        user(100 + n, f"b-county-s{n}", "supervisor", 1, f"县督办{n}")
    for t in range(TOWNSHIPS):
        for n in range(3):
            user(5000 + 3 * t + n, f"b-t{t}-s{n}", "supervisor", 11 + 2 * t, f"镇{t}督办{n}")
    for v in range(VILLAGES):
        user(10000 + 3 * v, f"b-v{v}-head", "supervisor", 1000 + v, f"村{v}主任")
        user(10001 + 3 * v, f"b-v{v}-m1", "mediator", 1000 + v, f"村{v}调解员1")
        user(10002 + 3 * v, f"b-v{v}-m2", "mediator", 1000 + v, f"村{v}调解员2")
    cur.executemany(
        "INSERT INTO accounts_user (id, password, is_superuser, username, first_name, last_name,"
        " email, is_staff, is_active, date_joined, role, display_name, phone, agency_id)"
        " VALUES (%s, %s, false, %s, '', '', %s, false, true, %s, %s, %s, '', %s)",
        [(u[0], u[1], u[2], u[3], u[7], u[4], u[6], u[5]) for u in users],
    )
    cur.execute(
        "UPDATE agencies_agency a SET head_id = 10000 + 3 * (a.id - 1000) WHERE a.id >= 1000"
    )
    # django-rest-knox rows: the token is md5('bench-token-' || id) (bench/transitions.py
    # sends it); knox stores its SHA-512 digest and its first 15 characters, no expiry.
    cur.execute(
        "INSERT INTO knox_authtoken (digest, token_key, created, expiry, user_id) "
        "SELECT encode(sha512(convert_to(md5('bench-token-' || id), 'UTF8')), 'hex'), "
        "left(md5('bench-token-' || id), 15), %s, NULL, id "
        "FROM accounts_user WHERE username LIKE '%%-head'",
        [now],
    )
    cur.execute(
        "INSERT INTO cases_channel (code, name, sort_order, is_active) "
        "VALUES ('visit', '来访', 0, true) RETURNING id"
    )
    channel_id = cur.fetchone()[0]
    for table in ("agencies_agency", "accounts_user"):
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )
    return {"channel_id": channel_id, "agencies": len(agencies), "users": len(users)}


_CASES_SQL = """
INSERT INTO cases_case (
    id, kind, number, year, sequence, state, version, state_entered_at, title, description,
    received_on, registered_at, risk_level, mediation_track, accepted_on, mediation_period_start,
    extension_days, petition_type, involves_accusation, collective, headcount, supervised,
    transfer_target, external_reference, outcome_note, created_at, updated_at, assignee_id,
    holder_agency_id, registering_agency_id, channel_id, next_due_at)
SELECT i, 'dispute',
       format('(%%s)BV%%s人调字第%%s号', extract(year FROM reg AT TIME ZONE 'Asia/Shanghai')::int,
              lpad(v::text, 4, '0'), lpad(((i - 1) / %(villages)s + 1)::text, 7, '0')),
       extract(year FROM reg AT TIME ZONE 'Asia/Shanghai')::int,
       (i - 1) / %(villages)s + 1,
       CASE WHEN i %% 10 < 4 THEN 'registered' ELSE 'mediating' END,
       CASE WHEN i %% 10 < 4 THEN 1 ELSE 5 END,
       CASE WHEN i %% 10 < 4 THEN reg ELSE reg + interval '2 days' END,
       (ARRAY['宅基地界址','土地承包','婚姻家庭','赡养','邻里通行','债务','劳务欠薪',
              '交通事故','物业服务','山林权属','征地补偿','消费','医疗','环境污染','合同',
              '损害赔偿'])[1 + i %% 16] || '纠纷' || i,
       '申请人反映' || (ARRAY['排水沟占地','围墙越界','树木遮挡','借款未还','工资拖欠',
              '噪音扰民','漏水','牲畜损坏庄稼','分家析产','彩礼返还'])[1 + (i / 16) %% 10]
           || '，事由编号' || (i %% 9973),
       (reg AT TIME ZONE 'Asia/Shanghai')::date, reg, 'low', 'people',
       CASE WHEN i %% 10 < 4 THEN NULL
            ELSE ((reg + interval '1 day') AT TIME ZONE 'Asia/Shanghai')::date END,
       CASE WHEN i %% 10 < 4 THEN NULL
            ELSE ((reg + interval '1 day') AT TIME ZONE 'Asia/Shanghai')::date END,
       0, '', false, false, 1, false, '', '', '', reg, reg,
       CASE WHEN i %% 5 = 1 THEN 10000 + 3 * v ELSE 10001 + 3 * v END,
       1000 + v, 1000 + v, %(channel)s,
       -- = the running duty clock's due_at (_RUNNING_CLOCKS_SQL), as the services keep it
       ((CASE WHEN i %% %(stride)s = 0 THEN %(today)s::date - 1
              ELSE %(today)s::date + 7 + (i %% 90)::int END) + 1)::timestamp
           AT TIME ZONE 'Asia/Shanghai'
FROM (
    SELECT i, (i - 1) %% %(villages)s AS v,
           %(now)s::timestamptz - interval '3 days'
               - make_interval(secs => ((i::bigint * 7919) %% 15292800)) AS reg
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
) s
"""

_RUNNING_CLOCKS_SQL = """
INSERT INTO deadlines_clock (
    id, rule_code, kind, entered_state, start_date, nominal_due, due, due_at, provisional,
    extra_days, paused_days, explanation, status, started_at, stopped_at, stop_reason,
    generation, case_id)
SELECT k.id,
       CASE WHEN k.state = 'registered' THEN 'dispute.triage' ELSE 'dispute.mediate' END,
       'duty',
       CASE WHEN k.state = 'registered' THEN 'registered' ELSE 'accepted' END,
       COALESCE(k.mediation_period_start, (k.state_entered_at AT TIME ZONE 'Asia/Shanghai')::date),
       d.due, d.due,
       (d.due + 1)::timestamp AT TIME ZONE 'Asia/Shanghai',
       false, 0, 0, '[]'::jsonb, 'running', k.state_entered_at, NULL, '', 1, k.id
FROM cases_case k
CROSS JOIN LATERAL (
    SELECT CASE WHEN k.id %% %(stride)s = 0 THEN %(today)s::date - 1
                ELSE %(today)s::date + 7 + (k.id %% 90)::int END AS due
) d
WHERE k.id BETWEEN %(lo)s AND %(hi)s
"""

# Two parties per case (applicant 2i-1, respondent 2i): names from 100 surnames and 500 given
# names, so a full name matches ~40 parties and a two-character prefix a few hundred; phones
# 138/139 + the case id. The look-up digests are stand-ins (sha256 of the row id) except for the
# parties `search_targets()` gives real keyed digests.
_PARTIES_SQL = """
INSERT INTO parties_party (id, name, kind, gender, phone, phone_hash, address,
                           id_number_encrypted, id_number_hash, id_number_masked, birth_date,
                           is_minor, created_at)
SELECT p.id,
       substr('王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤',
              1 + (p.id %% 100)::int, 1)
         || substr('建国秀英志强丽华文明玉兰海燕春梅永红德福桂芳小军国庆立新少华金凤',
                   1 + ((p.id / 100) %% 20)::int, 1)
         || substr('平安军伟勇杰涛斌超明刚磊洋鹏辉鑫宇浩凯健俊帅峰博轩然泽楠欣怡婷雪琳颖',
                   1 + ((p.id / 2000) %% 25)::int, 1),
       'person', '',
       CASE WHEN p.id %% 2 = 1 THEN '138' ELSE '139' END || lpad(((p.id + 1) / 2)::text, 8, '0'),
       encode(sha256(('phone' || p.id)::bytea), 'hex'),
       '测试村', 'x', encode(sha256(('id' || p.id)::bytea), 'hex'), '110***********0000',
       NULL, false, %(now)s
FROM generate_series(2 * %(lo)s - 1, 2 * %(hi)s) AS p(id)
"""

_CASE_PARTIES_SQL = """
INSERT INTO cases_caseparty (case_id, party_id, role)
SELECT (p.id + 1) / 2, p.id, CASE WHEN p.id %% 2 = 1 THEN 'applicant' ELSE 'respondent' END
FROM generate_series(2 * %(lo)s - 1, 2 * %(hi)s) AS p(id)
"""

_STOPPED_CLOCKS_SQL = """
INSERT INTO deadlines_clock (
    rule_code, kind, entered_state, start_date, nominal_due, due, due_at, provisional,
    extra_days, paused_days, explanation, status, started_at, stopped_at, stop_reason,
    generation, case_id)
SELECT 'dispute.triage', 'duty', 'registered', d.start, d.start + 1, d.start + 1,
       (d.start + 2)::timestamp AT TIME ZONE 'Asia/Shanghai', false, 0, 0, '[]'::jsonb,
       'stopped', k.registered_at,
       k.registered_at
           + CASE WHEN k.id %% 3 = 0 THEN interval '3 days' ELSE interval '12 hours' END,
       'left:triaged', 1, k.id
FROM cases_case k
CROSS JOIN LATERAL (SELECT (k.registered_at AT TIME ZONE 'Asia/Shanghai')::date AS start) d
WHERE k.state = 'mediating' AND k.id BETWEEN %(lo)s AND %(hi)s
"""

_EVENTS_SQL = """
INSERT INTO cases_caseevent (case_id, version, actor_id, actor_agency_id, at, transition,
                             from_state, to_state, note, data)
SELECT k.id, e.version, k.assignee_id, k.holder_agency_id, k.registered_at + e.after,
       e.transition, e.from_state, e.to_state, '', '{}'::jsonb
FROM cases_case k
JOIN (VALUES (1, interval '0', 'register', '', 'registered'),
             (2, interval '12 hours', 'triage', 'registered', 'triaged'),
             (3, interval '1 day', 'assign', 'triaged', 'assigned'),
             (4, interval '25 hours', 'accept', 'assigned', 'accepted'),
             (5, interval '2 days', 'start_mediation', 'accepted', 'mediating'))
     AS e(version, after, transition, from_state, to_state)
  ON e.version <= k.version
WHERE k.id BETWEEN %(lo)s AND %(hi)s
"""


def generate(*, scale: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """Truncate the app tables of the bench database and fill them for `scale`."""
    from django.db import connection

    from mediation.core.clock import local_date
    from mediation.core.clock import now as clock_now

    n = SCALES[scale]
    now = now or clock_now()
    stride = n // OVERDUE
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def step(name: str, sql: str, params: dict[str, Any], chunk: int = 1_000_000) -> None:
        t0 = time.perf_counter()
        for lo in range(1, n + 1, chunk):
            cur.execute(sql, {**params, "lo": lo, "hi": min(lo + chunk - 1, n)})
        timings[name] = round(time.perf_counter() - t0, 1)
        log(f"datagen {name}: {timings[name]} s")

    with connection.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute(f"TRUNCATE {', '.join(APP_TABLES)} RESTART IDENTITY CASCADE")
        saved = {t: _indexes(cur, t) for t in BIG_TABLES}
        for table, (indexes, constraints) in saved.items():
            for name, _def in constraints:
                cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            for name, _def in indexes:
                cur.execute(f'DROP INDEX "{name}"')
        try:
            meta = _agencies_and_users(cur, now)
            clock_params = {"stride": stride, "today": local_date(now)}
            base = {"villages": VILLAGES, "now": now, "channel": meta["channel_id"]}
            step("cases", _CASES_SQL, {**base, **clock_params})
            step("running_clocks", _RUNNING_CLOCKS_SQL, clock_params)
            cur.execute("SELECT setval(pg_get_serial_sequence('deadlines_clock', 'id'), %s)", [n])
            cur.execute("SELECT setval(pg_get_serial_sequence('cases_case', 'id'), %s)", [n])
            step("stopped_clocks", _STOPPED_CLOCKS_SQL, {})
            step("events", _EVENTS_SQL, {})
            step("parties", _PARTIES_SQL, {"now": now})
            step("case_parties", _CASE_PARTIES_SQL, {})
            cur.execute("SELECT setval(pg_get_serial_sequence('parties_party', 'id'), %s)", [2 * n])
        finally:
            # Rebuilt even when the load failed: a rerun must find the indexes to drop again.
            t0 = time.perf_counter()
            for table, (indexes, constraints) in saved.items():
                for name, definition in constraints:
                    cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
                for _name, definition in indexes:
                    cur.execute(definition)
            timings["indexes"] = round(time.perf_counter() - t0, 1)
            log(f"datagen indexes: {timings['indexes']} s")
        cur.execute("SET session_replication_role = origin")
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        for table in (*BIG_TABLES, "agencies_agency", "accounts_user"):
            cur.execute(f"VACUUM (ANALYZE) {table}")
    timings["vacuum_analyze"] = round(time.perf_counter() - t0, 1)
    total = round(time.perf_counter() - started, 1)
    counts = counts_now()
    log(f"datagen {scale}: {total} s, {counts}")
    return {"scale": scale, "cases": n, "seconds": total, "timings": timings, **meta, **counts}


def counts_now() -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT (SELECT count(*) FROM cases_case),
                   (SELECT count(*) FROM deadlines_clock WHERE status = 'running'),
                   (SELECT count(*) FROM deadlines_clock),
                   (SELECT count(*) FROM cases_caseevent),
                   pg_size_pretty(pg_database_size(current_database()))
            """
        )
        cases, running, clocks, events, size = cur.fetchone()
    return {
        "case_rows": cases,
        "running_clocks": running,
        "clock_rows": clocks,
        "event_rows": events,
        "database_size": size,
    }


def current_scale() -> str | None:
    """The scale the bench database holds now (by its case count), or None."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM cases_case")
        n = cur.fetchone()[0]
    for name, size in SCALES.items():
        if n >= size and n < size * 1.1:
            return name
    return None
