"""Test settings: real PostgreSQL and Redis (DATABASE_URL / REDIS_URL may point elsewhere)."""

from .base import *  # noqa: F403
from .base import env, postgres_options

DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://root@127.0.0.1:5432/postgres"),
}
DATABASES["default"]["CONN_MAX_AGE"] = 0
postgres_options(DATABASES["default"], application_name="mediation-tests")
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="test_mediation")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# Static files are not collected for tests; do not warn about a missing STATIC_ROOT.
WHITENOISE_AUTOREFRESH = True

# django-axes needs a request in authenticate(); the test client's login() passes none.
# tests/integration/test_login_throttling.py turns it back on.
AXES_ENABLED = False

# Attachments go to a throwaway directory, never to var/media.
import tempfile  # noqa: E402

MEDIA_ROOT = tempfile.mkdtemp(prefix="mediation-test-media-")
STORAGES = {
    **STORAGES,  # noqa: F405
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT, "base_url": None},
    },
}
