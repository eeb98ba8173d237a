# One image for every process of the stack (docker-compose.yml): gunicorn web, the Celery
# workers, Celery beat, Flower and the one-shot migrate job. Settings come from the environment
# only; tests/integration/test_deployment_files.py checks that every COPY source and the CMD
# exist.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=mediation.settings.production

WORKDIR /app

# Debian packages the application loads at run time: pango and harfbuzz (WeasyPrint, the
# dossier PDF), a CJK font for it, libmagic (the content sniffing of uploads).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-wqy-zenhei libmagic1 \
    && rm -rf /var/lib/apt/lists/*

# Every Python dependency ships a wheel (psycopg[binary] bundles libpq): no compiler needed.
COPY requirements.txt ./
RUN pip install -r requirements.txt

RUN useradd --system --uid 10001 --no-create-home --home-dir /app mediation \
    && mkdir -p /var/lib/mediation/media \
    && chown -R mediation:mediation /var/lib/mediation

# Only what the processes run; tests, docs and local state stay out of the image.
COPY manage.py pyproject.toml ./
COPY deploy/gunicorn.conf.py ./deploy/gunicorn.conf.py
COPY workers ./workers
COPY mediation ./mediation

# Static files are built into the image (hashed names, gzip copies) and served by
# whitenoise. The throwaway secrets only let the production settings load for this one
# command, which touches no database; they are not kept in the image.
RUN DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
    FIELD_ENCRYPTION_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    ID_HASH_KEY=collectstatic-only \
    LOOKUP_CODE_KEY=collectstatic-only \
    DATABASE_URL=postgres://collectstatic@localhost/collectstatic-only \
    python manage.py collectstatic --noinput --verbosity 0

USER mediation
EXPOSE 8000

# The web process; workers, beat and Flower get their own command in docker-compose.yml.
# deploy/gunicorn.conf.py: bind 0.0.0.0:8000, WEB_CONCURRENCY workers, JSON logs.
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "mediation.wsgi:application"]
