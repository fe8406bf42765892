#!/usr/bin/env bash
# Fuzzes every target of fuzz/ for FUZZ_SECONDS seconds each (default 25) and fails on a crash.
# Installs cargo-fuzz from crates.io if it is missing. Works on the stable toolchain:
# RUSTC_BOOTSTRAP=1 lets it accept the -Zsanitizer flags cargo-fuzz passes (AddressSanitizer).
# New inputs go to fuzz/corpus/<target> (not committed); fuzz/seeds/<target> is read only.
# A crash leaves its input in fuzz/artifacts/<target>/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>   (in fuzz/)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-25}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: installing it from crates.io"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

cargo fuzz build
summary=()
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  log="$(mktemp)"
  echo "== fuzz $target for ${seconds}s"
  status=0
  cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 >"$log" 2>&1 || status=$?
  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$log" || true
  runs="$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)"
  if [ "$status" -ne 0 ]; then
    tail -40 "$log"
    rm -f "$log"
    echo "fuzz target $target failed (exit $status); the input is in fuzz/artifacts/$target/"
    exit 1
  fi
  rm -f "$log"
  summary+=("$target: ${runs:-no count}")
done
printf '%s\n' "${summary[@]}"
