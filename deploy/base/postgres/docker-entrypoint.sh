#!/bin/sh
# The official postgres image's entrypoint, in the little this project uses of it: on an empty PGDATA,
# initdb with the superuser POSTGRES_USER (password from POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE,
# scram-sha-256 from other hosts), create POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sql and *.sh;
# then run the server as the postgres user, listening on every address of the container.
set -eu
if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
fi
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}" "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE}"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password_file=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" > "$password_file"
    chown postgres "$password_file"
    as_postgres initdb --username="$POSTGRES_USER" --pwfile="$password_file" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 -D "$PGDATA"
    rm -f "$password_file"
    printf "host all all all scram-sha-256\n" >> "$PGDATA/pg_hba.conf"
    as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    if [ "$POSTGRES_DB" != postgres ]; then
        as_postgres psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
            -c "CREATE DATABASE \"$POSTGRES_DB\""
    fi
    for script in /docker-entrypoint-initdb.d/*; do
        case "$script" in
            *.sql) as_postgres psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -f "$script" ;;
            *.sh) . "$script" ;;
        esac
    done
    as_postgres pg_ctl -D "$PGDATA" -m fast -w stop
fi
shift
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -c listen_addresses="*" "$@"
