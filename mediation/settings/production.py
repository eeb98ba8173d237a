"""Production: base settings with security tightened. `manage.py check --deploy` is clean."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import LOGGING, env

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS")
ID_HASH_KEY = env.str("ID_HASH_KEY")
LOOKUP_CODE_KEY = env.str("LOOKUP_CODE_KEY")
# Never the demo's SQLite file: without DATABASE_URL a production process refuses to start.
_database_url = env.str("DATABASE_URL")

# .env.example marks every secret it ships with CHANGE-ME; those values are public. A stack
# started from the template alone refuses to run instead of running with them.
_secrets = {
    "DJANGO_SECRET_KEY": SECRET_KEY,
    "FIELD_ENCRYPTION_KEYS": ",".join(FIELD_ENCRYPTION_KEYS),
    "ID_HASH_KEY": ID_HASH_KEY,
    "LOOKUP_CODE_KEY": LOOKUP_CODE_KEY,
    "DATABASE_URL": _database_url,
}
for _name, _value in _secrets.items():
    if "CHANGE-ME" in _value:
        raise ImproperlyConfigured(
            f"{_name} still holds the public placeholder from .env.example; set it in .env"
        )

# Web, workers and beat connect as the application role, never as the tables' owner.
DATABASE_ROLE_CHECK = env.bool("DATABASE_ROLE_CHECK", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# One TLS proxy in front (docs/DEPLOY.md); its X-Forwarded-For entry is the client address.
TRUSTED_PROXY_COUNT = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=1)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 60 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
STORAGES = {
    **STORAGES,  # noqa: F405  (the case file's storage, FILE_STORAGE: base.py)
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# JSON log lines unless LOG_FORMAT says otherwise (mediation/core/logging.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = {
    **LOGGING,
    "handlers": {"console": {**LOGGING["handlers"]["console"], "formatter": LOG_FORMAT}},
}
