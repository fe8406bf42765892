#!/usr/bin/env bash
# Starts a MySQL server (not MariaDB) for running __test__/mysql.spec.js against by hand:
# Debian sid's mysql-server-core (MySQL 9.7 when this was written) in a minimal sid chroot made
# with debootstrap, listening on 127.0.0.1:$MYSQL_SID_PORT (3307) with root and no password, a
# database `test`. Debian stable has no MySQL server, and sid's binaries need sid's libraries,
# hence the chroot. Needs root (debootstrap, chroot, mount) and Debian's mirror; the first run
# takes a few minutes, later ones only start the server. Not part of CI (sid moves, and the
# chroot is ~500 MB); docs/mysql.md says what it found. Then:
#   MYSQL_PORT=3307 RESHUFFLE_DATASTORE_REQUIRE_MYSQL=1 npx jest __test__/mysql.spec.js
set -euo pipefail
cd "$(dirname "$0")/.."

root="${MYSQL_SID_ROOT:-$PWD/target/mysql-sid}"
port="${MYSQL_SID_PORT:-3307}"
datadir=/var/lib/mysql-test # inside the chroot

if [ ! -x "$root/usr/sbin/mysqld" ]; then
  mkdir -p "$root"
  debootstrap --variant=minbase --include=mysql-server-core sid "$root" http://deb.debian.org/debian >&2
fi
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
chmod 1777 "$root/tmp"
# mysqld refuses to start without its --secure-file-priv folder.
mkdir -p "$root/var/lib/mysql-files" && chmod 700 "$root/var/lib/mysql-files"
if [ ! -d "$root$datadir/mysql" ]; then
  chroot "$root" /usr/sbin/mysqld --no-defaults --initialize-insecure --user=root --datadir="$datadir" >&2
fi

answers() { mariadb -h127.0.0.1 -P"$port" -uroot --skip-ssl -e 'SELECT 1' >/dev/null 2>&1; }
if ! answers; then
  # setsid: the server outlives the shell that started it.
  setsid nohup chroot "$root" /usr/sbin/mysqld --no-defaults --user=root --datadir="$datadir" \
    --port="$port" --bind-address=127.0.0.1 --socket="/tmp/mysql$port.sock" --mysqlx=OFF \
    --log-error="/tmp/mysqld$port.err" >/dev/null 2>&1 &
  for _ in $(seq 60); do answers && break; sleep 1; done
fi
# --initialize-insecure makes root@localhost only; the tests connect over TCP.
mariadb -h127.0.0.1 -P"$port" -uroot --skip-ssl -e "
  CREATE DATABASE IF NOT EXISTS test;
  CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY '';
  GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;
  SELECT CONCAT('MySQL ', VERSION(), ' on 127.0.0.1:', @@port) AS server" >&2
