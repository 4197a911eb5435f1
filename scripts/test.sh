#!/usr/bin/env bash
# Runs every check and test of Tidings: formatting, clippy for the server and the WASM, the Rust
# tests on SQLite and PostgreSQL, and the Playwright tests in Chromium against the release
# build. Installs and starts what they need. Ends with "N passed, N failed"; exits non-zero on
# any failure.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
set +e # from here on, failures are counted, not fatal

passed=0
failed=0
skipped=0
failures=()
record() { # record NAME PASSED FAILED
  passed=$((passed + $2))
  failed=$((failed + $3))
  if [ "$3" -gt 0 ]; then failures+=("$1"); fi
}
check() { # check NAME COMMAND...: one check that passes or fails as a whole
  local name="$1"
  shift
  step "$name"
  if "$@"; then record "$name" 1 0; else record "$name" 0 1; fi
}

(
  set -e
  ensure_build_tools
  ensure_chromium
  ensure_postgres
  ensure_end2end_dependencies
) || { echo "set-up failed"; echo "0 passed, 1 failed"; exit 1; }
ensure_postgres >/dev/null # exports TIDINGS_TEST_POSTGRES_URL into this shell

cd "$PROJECT_ROOT"
# Everything is built once, so incremental compilation's caches would only fill the disk.
export CARGO_INCREMENTAL=0
check "cargo fmt --check" cargo fmt --all -- --check
check "clippy (server: ssr)" cargo clippy --features ssr -- -D warnings
check "clippy (server with test jobs, and the tests)" cargo clippy --features ssr,test-jobs --all-targets -- -D warnings
check "clippy (browser: hydrate)" cargo clippy --lib --target wasm32-unknown-unknown \
  --no-default-features --features hydrate -- -D warnings

step "Rust tests, SQLite and PostgreSQL (cargo test)"
log="$(mktemp)"
cargo test --features ssr,test-jobs 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
read -r rust_passed rust_failed rust_ignored < <(awk '/^test result:/ { p += $4; f += $6; i += $8 } END { print p + 0, f + 0, i + 0 }' "$log")
skipped=$((skipped + rust_ignored))
if [ "$status" -ne 0 ] && [ "$rust_failed" -eq 0 ]; then rust_failed=1; fi # did not build
record "Rust tests" "$rust_passed" "$rust_failed"

# The end-to-end tests start tasks of the test-only job kinds, so their server has them.
if build_release --bin-features ssr,test-jobs; then
  record "release build" 1 0
  step "Playwright end-to-end tests (Chromium)"
  results="$PROJECT_ROOT/end2end/test-results/results.json"
  rm -f "$results"
  (cd end2end && npx playwright test)
  status=$?
  if [ -f "$results" ]; then
    read -r e2e_passed e2e_failed e2e_skipped < <(node -e '
      const { stats } = require(process.argv[1]);
      console.log(stats.expected + stats.flaky, stats.unexpected, stats.skipped);' "$results")
  else
    e2e_passed=0 e2e_failed=1 e2e_skipped=0
  fi
  if [ "$status" -ne 0 ] && [ "$e2e_failed" -eq 0 ]; then e2e_failed=1; fi
  record "Playwright" "$e2e_passed" "$e2e_failed"
  skipped=$((skipped + e2e_skipped))
  echo "Screenshots: end2end/artifacts/"
else
  record "release build" 0 1
fi

step "Summary"
for name in "${failures[@]}"; do echo "failed: $name"; done
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
