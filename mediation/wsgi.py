import logging
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediation.settings.base")
application = get_wsgi_application()

# A web process with unusable personal-data keys refuses to start, with the check's message
# (mediation/parties/checks.py), instead of failing on the first ID number.
from django.core import checks  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

_key_errors = [m for m in checks.run_checks(tags=["keys"]) if m.is_serious()]
if _key_errors:
    raise ImproperlyConfigured("\n".join(str(m) for m in _key_errors))

# A web process connected as a superuser or as the tables' owner says so in its log
# (mediation/core/checks.py; on under the production settings).
from django.conf import settings  # noqa: E402

from mediation.core.checks import check_database_role  # noqa: E402

if settings.DATABASE_ROLE_CHECK:
    for _message in check_database_role(databases=["default"]):
        logging.getLogger("mediation.security").warning("%s", _message)
