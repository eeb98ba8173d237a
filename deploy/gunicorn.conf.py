"""gunicorn settings for the `web` service (docker-compose.yml) and the image's default command.

    gunicorn --config deploy/gunicorn.conf.py mediation.wsgi:application

Settings come from the environment like everything else: WEB_CONCURRENCY (worker processes),
WEB_THREADS (threads per worker), LOG_FORMAT and LOG_LEVEL. gunicorn's own loggers
(`gunicorn.error`: start-up, worker boots and timeouts; `gunicorn.access`: one line per
request) write through the same handler, filters and formatter as Django's LOGGING
(mediation/core/logging.py): JSON lines by default, with the request id and personal data
masked (query strings can carry ID numbers or phone numbers).
"""

import os

bind = "0.0.0.0:8000"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# Threaded workers: a request spends much of its time waiting for PostgreSQL (queries, the
# commit's WAL flush), and another thread of the same process runs meanwhile, so a few
# processes keep the cores busy. Each thread holds its own database connection
# (CONN_MAX_AGE): workers x threads connections per host. gthread also keeps client
# connections alive between requests (the sync worker closes each one).
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
keepalive = 5
# Requests are short; a worker that does not answer for 30 s is killed and replaced.
timeout = 30
graceful_timeout = 30
# Each worker is replaced after about 2,000 requests, which bounds any slow memory growth.
max_requests = 2000
max_requests_jitter = 200
# Worker heartbeat files in memory: /tmp in a container may sit on a slow overlay filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# No runtime control socket (gunicornc): compose restarts and scales the service instead, and
# the image's user has no writable home for the socket.
control_socket_disable = True

# Access lines: peer (the proxy), the client address the proxy reports, request, status, bytes,
# duration. No user agent and no cookies.
access_log_format = '%(h)s %({x-forwarded-for}i)s "%(r)s" %(s)s %(b)s %(M)sms'

_log_format = os.environ.get("LOG_FORMAT", "json")
_log_level = os.environ.get("LOG_LEVEL", "INFO")
# Replaces gunicorn's default logging (and enables the access log). In each worker, Django
# then configures the root logger from LOGGING; the gunicorn loggers below have no handler of
# their own and keep propagating to it.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "mediation.core.logging.ContextFilter"},
        "mask_personal_data": {"()": "mediation.core.logging.MaskPersonalDataFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "mediation.core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": _log_format,
            "filters": ["context", "mask_personal_data"],
        }
    },
    "root": {"handlers": ["console"], "level": _log_level},
    "loggers": {
        "gunicorn.error": {"handlers": [], "propagate": True},
        "gunicorn.access": {"handlers": [], "propagate": True},
    },
}
