#!/usr/bin/env bash
# First start of the postgres container (docker-entrypoint-initdb.d, empty volume only):
# the two roles of the application, as README "Security" and docs/DEPLOY.md describe.
#
#   MEDIATION_DB_OWNER (mediation_owner)  owns the database and its tables; `migrate` only
#   MEDIATION_DB_APP   (mediation_app)    web, workers, beat: rows only (grants.psql)
#
# Neither is a superuser; POSTGRES_USER (the image's superuser) is for administration and
# backups only. Passwords come from .env (MEDIATION_DB_OWNER_PASSWORD, MEDIATION_DB_APP_PASSWORD).
set -euo pipefail

owner="${MEDIATION_DB_OWNER:-mediation_owner}"
app="${MEDIATION_DB_APP:-mediation_app}"
: "${MEDIATION_DB_OWNER_PASSWORD:?set MEDIATION_DB_OWNER_PASSWORD in .env}"
: "${MEDIATION_DB_APP_PASSWORD:?set MEDIATION_DB_APP_PASSWORD in .env}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner="$owner" -v app="$app" -v dbname="$POSTGRES_DB" \
    -v owner_password="$MEDIATION_DB_OWNER_PASSWORD" -v app_password="$MEDIATION_DB_APP_PASSWORD" <<'SQL'
CREATE ROLE :"owner" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE :"app" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD :'app_password';
ALTER DATABASE :"dbname" OWNER TO :"owner";
ALTER SCHEMA public OWNER TO :"owner";
SQL

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner="$owner" -v app="$app" -v dbname="$POSTGRES_DB" \
    -f "$(dirname "${BASH_SOURCE[0]}")/grants.psql"
