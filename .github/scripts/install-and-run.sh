#!/bin/sh
# Installs the tarballs in DIST (the main package and one platform package) into an empty
# project, offline, as a user's app would, runs the small app on memory, file and SQLite, and
# checks that the binary it loaded is the platform package's (nothing was built).
# POSIX sh: it runs on the GitHub runners (bash on Windows) and in node:*-slim/-alpine images.
# Usage: install-and-run.sh DIST APP_SOURCE
set -eu
dist=$(cd "$1" && pwd)
project=$(mktemp -d)
trap 'rm -rf "$project"' EXIT
cp "$2" "$project/app.js"
cd "$project"
npm init -y >/dev/null
npm install --offline --no-audit --no-fund --foreground-scripts "$dist"/*.tgz
out=$(node app.js memory file sqlite)
echo "$out"
# shellcheck disable=SC2016 # a JavaScript template string, not a shell expansion
node -e '
  const { results, native } = JSON.parse(process.argv[1])
  const ok = (r) => JSON.stringify(r.second) === JSON.stringify([["a"], ["a", "b"]]) && r.got.offset === 10
  if (Object.keys(results).length !== 3 || !Object.values(results).every(ok)) throw new Error("wrong results")
  if (native.length !== 1 || !/node_modules[\\/]reshuffle-datastore-[^\\/]+[\\/]reshuffle-datastore\.[^\\/]+\.node$/.test(native[0]))
    throw new Error(`not the platform package binary: ${native}`)
' "$out"
