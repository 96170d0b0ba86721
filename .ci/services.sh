#!/usr/bin/env bash
# Make the two test database servers answer on 127.0.0.1 the way tests/conftest.py expects, on a
# Debian machine (run as root). Installs them from Debian's packages the first time, starts them when
# they are down, opens password-less local access and creates the `test` database. Idempotent: every
# step checks before it acts, so running it again on a ready machine only waits for the servers.
#   PostgreSQL  127.0.0.1:5432  users postgres and root, trust auth   database test
#   MariaDB     127.0.0.1:3306  user root, no password                database test (utf8mb4_bin)
# Usage: bash .ci/services.sh        (prints how long the installation took, if it had to install)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

say() { echo "services: $*"; }

wait_for() {  # wait_for NAME SECONDS COMMAND...: poll until COMMAND succeeds, bounded
    local name=$1 seconds=$2
    shift 2
    for _ in $(seq "$seconds"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    say "$name did not answer within ${seconds}s" >&2
    return 1
}

install_missing() {
    local packages=()
    command -v pg_ctlcluster >/dev/null 2>&1 || packages+=(postgresql postgresql-client)
    [ -x /usr/sbin/mariadbd ] || packages+=(mariadb-server mariadb-client)
    [ ${#packages[@]} -eq 0 ] && return 0
    local started=$SECONDS
    say "installing ${packages[*]} from Debian's packages"
    apt-get update -qq >/dev/null
    # policy-rc.d-less containers: the packages' own service start may fail; we start them below.
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    say "installation took $((SECONDS - started)) s"
}

start_postgresql() {
    local version conf hba reload=""
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    conf=/etc/postgresql/$version/main/postgresql.conf
    hba=/etc/postgresql/$version/main/pg_hba.conf
    # A cluster created while 5432 was busy gets another port: move it back.
    if ! grep -Eq '^port *= *5432\b' "$conf"; then
        sed -i -E 's/^#?port *= *[0-9]+/port = 5432/' "$conf"
        pg_ctlcluster --skip-systemctl-redirect "$version" main stop >/dev/null 2>&1 || true
    fi
    if ! grep -Eq '^host +all +all +127\.0\.0\.1/32 +trust' "$hba"; then
        printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' >"$hba"
        reload=1
    fi
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        say "starting PostgreSQL $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
    elif [ -n "$reload" ]; then
        pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    fi
    wait_for PostgreSQL 60 pg_isready -q -h 127.0.0.1 -p 5432
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'root'" | grep -q 1 \
        || psql -q -h 127.0.0.1 -U postgres -c "CREATE ROLE root SUPERUSER LOGIN"
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
        || psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE test"
}

mariadb_answers() {
    mariadb-admin ping -h 127.0.0.1 -u root --silent || mariadb-admin ping --silent
}

start_mariadb() {
    if ! mariadb_answers >/dev/null 2>&1; then
        say "starting MariaDB"
        install -d -o mysql -g mysql /run/mysqld
        # setsid: the server must outlive this script and the CI step that ran it.
        setsid /usr/sbin/mariadbd --user=mysql </dev/null >>/tmp/chatmigrate-mariadbd.log 2>&1 &
    fi
    wait_for MariaDB 60 mariadb_answers
    if ! mariadb -h 127.0.0.1 -u root -e 'SELECT 1' >/dev/null 2>&1; then
        # Debian's fresh install admits root through the unix socket only; open TCP without a password.
        mariadb -u root -e "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('')
            OR unix_socket; CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY '';
            GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;"
    fi
    mariadb -h 127.0.0.1 -u root -e "CREATE DATABASE IF NOT EXISTS test CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
}

install_missing
start_postgresql
start_mariadb
say "PostgreSQL and MariaDB answer on 127.0.0.1"
