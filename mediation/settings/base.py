"""Settings shared by every environment; everything is read from the environment.

`test` and `production` only adjust this file; nothing exists only in production
(house style, STYLE.md "Settings").
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str(
    "DJANGO_SECRET_KEY",
    default="dev-insecure-3b7f1c2e9a8d4f6b0c5e1a7d9f2b4c6e8a0d2f4b6c8e0a2d4f6b8c0e2a4d6f8b0",
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_fsm",
    "mediation.core",
    "mediation.accounts",
    "mediation.agencies",
    "mediation.parties",
    "mediation.deadlines",
    "mediation.cases",
    "mediation.casefiles",
    # REST API (mediation/api); an app only for its message catalog (mediation/api/locale).
    "rest_framework",
    # API tokens: hashed, expiring, revocable (mediation/api/authentication.py).
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "mediation.api",
    "mediation.notifications",
    "mediation.escalation",
    "mediation.reports",
    "mediation.public",
    "mediation.web",
    "axes",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy (django-csp) and Permissions-Policy on every response.
    "csp.middleware.CSPMiddleware",
    "mediation.core.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # NUL and other control characters in any query string, form or JSON body: 400 here,
    # the one place for the web, the admin and the API (mediation/core/middleware.py).
    "mediation.core.middleware.RejectControlCharactersMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it locks out repeated failed logins.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mediation.urls"
WSGI_APPLICATION = "mediation.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "mediation" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "mediation.deadlines.context_processors.calendar_warning",
            ],
        },
    },
]

# Database: PostgreSQL is the database of record. Without DATABASE_URL the embedded demo
# runs on SQLite (README "Run").
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo's SQLite file: its folder (var/, ignored by git) may not exist in a fresh
    # clone, and SQLite creates the file but not the folder. Here, so that every entry point
    # (manage.py, celery, gunicorn, django-admin) works, not only scripts/run.
    _sqlite_name = str(DATABASES["default"].get("NAME") or "")
    if _sqlite_name and _sqlite_name != ":memory:" and not _sqlite_name.startswith("file:"):
        Path(_sqlite_name).parent.mkdir(parents=True, exist_ok=True)
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True


def postgres_options(database: dict, *, application_name: str) -> None:
    """The connection options of a PostgreSQL database (also used by the test settings)."""
    if database["ENGINE"] != "django.db.backends.postgresql":
        return
    options = database.setdefault("OPTIONS", {})
    options.setdefault("application_name", application_name)
    # JIT planning cost more than it saved on the case-list queries (measured: +1.3 s).
    options.setdefault("options", "-c jit=off")
    # Server-side prepared statements: psycopg binds parameters server-side and prepares a
    # statement once a connection has run it DB_PREPARE_THRESHOLD times, so PostgreSQL parses
    # and plans the hot statements (a transition's dozen) once per connection, not per request
    # (BENCHMARKS.md: PostgreSQL CPU per transition). Needs a session per connection: keep it
    # off behind PgBouncer in transaction mode (Debian's 1.18 cannot pool prepared statements;
    # PgBouncer >= 1.21 with max_prepared_statements can). README "Connection pooling".
    if env.bool("DB_PREPARED_STATEMENTS", default=False):
        options["server_side_binding"] = True
        options["prepare_threshold"] = env.int("DB_PREPARE_THRESHOLD", default=5)


postgres_options(
    DATABASES["default"], application_name=env.str("DB_APPLICATION_NAME", default="mediation")
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Warn (core.W001–W003) when the application connects as a superuser or as the owner of its
# tables (mediation/core/checks.py). On in production; the compose `migrate` job, which runs
# as the owner, turns it off.
DATABASE_ROLE_CHECK = env.bool("DATABASE_ROLE_CHECK", default=False)

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Chinese first; English switchable.
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "mediation" / "locale"]
USE_I18N = True
# Deadlines are computed in Asia/Shanghai; timestamps are stored in UTC (DOMAIN.md §2.2 ¶4).
TIME_ZONE = "Asia/Shanghai"
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# The case file's attachments (mediation/casefiles): Django's storage API. FILE_STORAGE=local
# (default: MEDIA_ROOT on this machine's disk, for the embedded demo) or s3 (any S3-compatible
# object store through django-storages; docs/DEPLOY.md). Files are never served from a public
# URL: only the download view, which applies the case access rule, reads them.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")
# No URL serves MEDIA_ROOT (no urlpattern, whitenoise serves static files only); the value
# only has to be a path, which Django's test live server expects.
MEDIA_URL = "/no-public-media/"
FILE_STORAGE = env.str("FILE_STORAGE", default="local")
if FILE_STORAGE == "s3":
    if not env.str("S3_BUCKET", default=""):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("FILE_STORAGE=s3 needs S3_BUCKET (docs/DEPLOY.md)")
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("S3_BUCKET", default=""),
            "endpoint_url": env.str("S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("S3_REGION", default="") or None,
            "access_key": env.str("S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("S3_SECRET_ACCESS_KEY", default="") or None,
            "addressing_style": env.str("S3_ADDRESSING_STYLE", default="path"),
            "default_acl": None,  # private objects; the bucket needs no public policy
            "querystring_auth": True,
            "file_overwrite": False,
            "location": env.str("S3_PREFIX", default=""),
        },
    }
elif FILE_STORAGE == "local":
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": None},
    }
else:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("FILE_STORAGE must be 'local' or 's3'")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Largest attachment accepted (bytes); the proxy in front must allow at least this much.
ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=20 * 1024 * 1024)
# The dossier PDF (卷宗): retention period printed on its cover (保管期限).
DOSSIER_RETENTION = env.str("DOSSIER_RETENTION", default="长期")

# Personal data (DOMAIN.md §5): ID numbers are encrypted at rest (Fernet, AES-128-CBC + HMAC)
# and looked up by a keyed hash. Both keys come from the environment in production.
FIELD_ENCRYPTION_KEYS = env.list(
    "FIELD_ENCRYPTION_KEYS", default=["9W8NWbQw5yN5Qm3V6o0pX1m4y7d2Jk8hTzq3LrUe0aA="]
)
ID_HASH_KEY = env.str("ID_HASH_KEY", default="dev-id-hash-key-change-me-in-production")
# Keys the parties' 查询码 (mediation/cases/lookup.py): the codes are derived from a stored
# nonce with it, and looked up by a hash keyed with it. Changing it invalidates every code.
LOOKUP_CODE_KEY = env.str("LOOKUP_CODE_KEY", default="dev-lookup-code-key-change-me")

# Celery (workers/). Redis is a transport only: PostgreSQL holds every deadline, reminder
# and escalation (RELIABILITY.md §0).
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# Prefix of every Redis key Celery uses (queues, unacked messages, bindings, remote control):
# kombu's `global_keyprefix`. Empty in production (the stack has its own Redis); scripts/run
# sets one per checkout when it joins a Redis that others may use too (README "Set-up").
CELERY_KEY_PREFIX = env.str("CELERY_KEY_PREFIX", default="")
CELERY_TIMEZONE = "Asia/Shanghai"

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="mediation@localhost")

LOGIN_URL = "admin:login"

# Login throttling that survives restarts and several processes: django-axes with its
# database handler (not the cache: a broker flush must not reset lockouts, RELIABILITY §5.5).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# The policy (three limits, a cool-off a flood cannot extend) is mediation/accounts/throttling.py.
AXES_HANDLER = "mediation.accounts.throttling.LoginThrottleHandler"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)  # one username from one address
AXES_ADDRESS_FAILURE_LIMIT = env.int("AXES_ADDRESS_FAILURE_LIMIT", default=20)  # any usernames
AXES_USERNAME_FAILURE_LIMIT = env.int("AXES_USERNAME_FAILURE_LIMIT", default=30)  # any addresses
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.5)  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address", "username"]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "mediation.accounts.throttling.attempted_username"
AXES_LOCKOUT_CALLABLE = "mediation.accounts.throttling.lockout_response"
AXES_LOCKOUT_TEMPLATE = "web/lockout.html"
# The client's address behind the TLS proxy: X-Forwarded-For, this many entries from the right
# (the proxy appends the address it saw); 0 reads only the peer address. Production: 1, the one
# nginx of docs/DEPLOY.md (mediation/core/client_ip.py).
TRUSTED_PROXY_COUNT = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "mediation.core.client_ip.client_ip"

# Sessions live in the database (revocable), expire after 8 hours and at browser close.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 60 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp 4): scripts, styles, images and connections from this
# site only; no inline script, no eval, no CDN (the pages have none), no framing, no plugins.
# The API docs pages (Swagger UI, Redoc) allow inline *styles* only: their bundles inject
# them (mediation/api/urls.py). tests/integration/web/test_security_headers.py.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Browser features the pages never use (mediation/core/middleware.py).
PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), "
    "gyroscope=(), magnetometer=(), microphone=(), midi=(), payment=(), usb=()"
)

# Logs go to stderr, one record per line (mediation/core/logging.py). LOG_FORMAT: `plain` here,
# `json` in production (one object per line: time, level, logger, message, request_id,
# task_id). Whatever the format, every record passes the console handler's filters, which
# mask ID-number-like and phone-like digits (DOMAIN.md §5). gunicorn's own loggers use the same
# handler (deploy/gunicorn.conf.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = {
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
            "formatter": LOG_FORMAT,
            "filters": ["context", "mask_personal_data"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # Celery gives this logger a plain handler of its own unless it already has one.
    "loggers": {
        "celery.task": {"handlers": ["console"], "propagate": False},
        # The dossier's PDF renderer logs every layout step at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
# Celery workers and beat keep the handler above instead of replacing the root logger's.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Reminder and escalation engine (README "Reminders and escalation"). Workers read these
# from the environment like everything else.
SWEEP_INTERVAL_SECONDS = env.float("SWEEP_INTERVAL_SECONDS", default=30.0)
SWEEP_BATCH_SIZE = env.int("SWEEP_BATCH_SIZE", default=1000)
# Reminders older than this at sweep time (an outage) go out as one digest per recipient.
REMINDER_DIGEST_AFTER_SECONDS = env.float("REMINDER_DIGEST_AFTER_SECONDS", default=600.0)
DELIVERY_LEASE_SECONDS = env.float("DELIVERY_LEASE_SECONDS", default=60.0)
DELIVERY_MAX_ATTEMPTS = env.int("DELIVERY_MAX_ATTEMPTS", default=8)
DELIVERY_BACKOFF_BASE_SECONDS = env.float("DELIVERY_BACKOFF_BASE_SECONDS", default=30.0)
DELIVERY_BACKOFF_MAX_SECONDS = env.float("DELIVERY_BACKOFF_MAX_SECONDS", default=3600.0)
# Test-only: sleep this long inside each delivery just before sending (fault injection).
DELIVERY_TEST_DELAY_SECONDS = env.float("DELIVERY_TEST_DELAY_SECONDS", default=0.0)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
SMS_BACKEND = env.str("SMS_BACKEND", default="mediation.notifications.channels.LoggingSmsBackend")
# The SMS provider (mediation/notifications/sms.py, SMS_BACKEND=
# "mediation.notifications.sms.ProviderSmsBackend"): the common template-SMS HTTP API shape
# (template code + parameters, HMAC-SHA256-signed request, a message id in the answer).
SMS_PROVIDER_URL = env.str("SMS_PROVIDER_URL", default="")
SMS_PROVIDER_ACCESS_KEY = env.str("SMS_PROVIDER_ACCESS_KEY", default="")
SMS_PROVIDER_SECRET = env.str("SMS_PROVIDER_SECRET", default="")
SMS_PROVIDER_SIGN_NAME = env.str("SMS_PROVIDER_SIGN_NAME", default="乡镇矛调中心")
SMS_PROVIDER_TIMEOUT_SECONDS = env.float("SMS_PROVIDER_TIMEOUT_SECONDS", default=5.0)
# Template codes registered with the provider, by message (JSON object; defaults below).
SMS_TEMPLATES = env.json(
    "SMS_TEMPLATES",
    default={
        "lookup_code": "SMS_LOOKUP_CODE",
        "accepted": "SMS_ACCEPTED",
        "not_accepted": "SMS_NOT_ACCEPTED",
        "session": "SMS_SESSION",
        "opinion": "SMS_OPINION",
        "closed": "SMS_CLOSED",
        "notice": "SMS_NOTICE",
    },
)
NOTIFICATION_MESSAGE_ID_DOMAIN = env.str(
    "NOTIFICATION_MESSAGE_ID_DOMAIN", default="mediation.local"
)
# Optional bearer token for GET /health/ (empty: open; restrict at the proxy instead).
HEALTH_TOKEN = env.str("HEALTH_TOKEN", default="")
HEALTH_BROKER_TIMEOUT_SECONDS = env.float("HEALTH_BROKER_TIMEOUT_SECONDS", default=1.0)
HEALTH_MAX_DELIVERY_AGE_SECONDS = env.int("HEALTH_MAX_DELIVERY_AGE_SECONDS", default=600)
HEALTH_CALENDAR_HORIZON_DAYS = env.int("HEALTH_CALENDAR_HORIZON_DAYS", default=180)
SWEEP_RUN_RETENTION_DAYS = env.int("SWEEP_RUN_RETENTION_DAYS", default=7)

# Staff web pages (mediation.web): Django's own auth views at /accounts/, so django-axes
# throttles them like the admin login.
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# REST API (mediation/api): token or session authentication, deny by default, JSON only, and
# one exception handler that gives every error as {"code", "message", "details"}.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes "not logged in" a 401, not a 403.
        # DRF's TokenAuthentication, reading the user's agency in the same query.
        "mediation.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["mediation.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "mediation.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "mediation.api.errors.api_exception_handler",
    # Not a security measure (login throttling is django-axes): a brake on runaway clients.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/minute"),
        "user": env.str("API_THROTTLE_USER", default="1200/minute"),
    },
}
# API tokens (django-rest-knox): stored as SHA-512 digests, a new one per login, valid for
# API_TOKEN_TTL_HOURS (8 h, the session's length); revoked by logout, logout-everywhere,
# `manage.py revoke_tokens`, a password change or a deactivation (mediation/api/tokens.py).
API_TOKEN_TTL_HOURS = env.float("API_TOKEN_TTL_HOURS", default=8.0)
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(hours=API_TOKEN_TTL_HOURS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
    "USER_SERIALIZER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "矛盾纠纷与信访事项办理 API",
    "DESCRIPTION": (
        '错误统一为 {"code", "message", "details"}；code 稳定，message 随 Accept-Language'
        "（默认简体中文，en 为英文）。他机构的案件一律返回 404。\n\n"
        "**令牌 Token**：`POST /api/auth/token/`，请求体 "
        '`{"username": "…", "password": "…"}`，返回 `{"token": "…", "expiry": "…"}`；'
        "之后每个请求带请求头 `Authorization: Token <token>`（在本页点击 Authorize 填入）。"
        "令牌默认 8 小时后失效；`POST /api/auth/logout/` 注销本令牌，"
        "`POST /api/auth/logout-all/` 注销本人全部令牌；修改密码或停用账号时全部令牌作废。"
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and the docs page are for signed-in staff only (ASVS 13.4.5).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI and Redoc assets from drf-spectacular-sidecar: browsers may not reach a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Error statuses, string rules and list bounds as the API enforces them
    # (mediation/api/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "mediation.api.schema.document_the_api",
    ],
    "ENUM_NAME_OVERRIDES": {
        "CaseKindEnum": "mediation.cases.models.CaseKind",
        "AgencyKindEnum": "mediation.agencies.models.AgencyKind",
    },
}

# The public side (README "The public side"): apply online, track with a 查询码, rate.
# Limits are counted in Redis through Django's cache framework (the "limits" cache), so they
# hold across gunicorn workers and hosts.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "limits": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.str("LIMITS_REDIS_URL", default=REDIS_URL),
        "KEY_PREFIX": env.str("LIMITS_KEY_PREFIX", default="mediation-limits"),
        "TIMEOUT": 24 * 3600,
        "OPTIONS": {"socket_timeout": 1.0, "socket_connect_timeout": 1.0},
    },
}
# Where online applications go: the agency code of the configured intake agency, or empty
# for the applicant's choice among the township 综治中心 (peace offices at township level).
PUBLIC_INTAKE_AGENCY_CODE = env.str("PUBLIC_INTAKE_AGENCY_CODE", default="")
PUBLIC_PRIVACY_NOTICE_VERSION = env.str("PUBLIC_PRIVACY_NOTICE_VERSION", default="2026-1")
# Submissions of the application form: per client address and per phone, per day.
PUBLIC_APPLY_PER_ADDRESS_PER_DAY = env.int("PUBLIC_APPLY_PER_ADDRESS_PER_DAY", default=10)
PUBLIC_APPLY_PER_PHONE_PER_DAY = env.int("PUBLIC_APPLY_PER_PHONE_PER_DAY", default=3)
# Failed look-ups before 429: per client address and per code, in the window.
PUBLIC_LOOKUP_FAILURES_PER_ADDRESS = env.int("PUBLIC_LOOKUP_FAILURES_PER_ADDRESS", default=10)
PUBLIC_LOOKUP_FAILURES_PER_CODE = env.int("PUBLIC_LOOKUP_FAILURES_PER_CODE", default=5)
PUBLIC_LOOKUP_WINDOW_SECONDS = env.int("PUBLIC_LOOKUP_WINDOW_SECONDS", default=3600)
# Every look-up answer takes at least this long, found or not (no timing oracle).
PUBLIC_LOOKUP_MIN_SECONDS = env.float("PUBLIC_LOOKUP_MIN_SECONDS", default=0.3)
# How long after a rating the party may still change it.
PUBLIC_RATING_CHANGE_DAYS = env.int("PUBLIC_RATING_CHANGE_DAYS", default=7)
# The address printed in SMS rating links (the public site as the parties reach it).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
