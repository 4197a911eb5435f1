# Shared set-up for scripts/run.sh and scripts/test.sh: installs what building and testing
# Tidings needs, each step idempotent and announced. Source it; do not run it.
#
# Everything comes from the package registries (crates.io, npm, Debian): nothing is downloaded
# from elsewhere, so this works on machines that reach only those.

set -euo pipefail

PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="$PROJECT_ROOT/.tools"
CARGO_LEPTOS_VERSION="0.3.10"
BINARYEN_VERSION="132"
export PATH="$TOOLS_DIR/node_modules/.bin:$HOME/.cargo/bin:$PATH"

step() { printf '\n\033[1m==> %s\033[0m  (at %ds)\n' "$*" "$SECONDS"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=""
apt_install() {
  if [ -z "$APT_UPDATED" ]; then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# The version of wasm-bindgen pinned in Cargo.lock; the CLI must be exactly the same.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$PROJECT_ROOT/Cargo.lock"
}

ensure_build_tools() {
  step "Rust target wasm32-unknown-unknown"
  if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    echo "already installed"
  else
    rustup target add wasm32-unknown-unknown
  fi

  step "cargo-leptos $CARGO_LEPTOS_VERSION"
  if cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
    echo "already installed"
  else
    # --locked: the newer dependency versions cargo would pick need a newer rustc.
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
  fi

  local bindgen
  bindgen="$(wasm_bindgen_version)"
  step "wasm-bindgen-cli $bindgen (the version in Cargo.lock)"
  if wasm-bindgen --version 2>/dev/null | grep -q " $bindgen\$"; then
    echo "already installed"
  else
    # Not --locked: its lockfile names a webpki-roots version the registry no longer serves.
    cargo install wasm-bindgen-cli --version "$bindgen"
  fi

  step "wasm-opt (npm binaryen $BINARYEN_VERSION, in .tools/)"
  if wasm-opt --version 2>/dev/null | grep -q "version $BINARYEN_VERSION"; then
    echo "already installed"
  else
    # Debian's binaryen is too old for the WASM features rustc emits; npm's is current.
    npm install --prefix "$TOOLS_DIR" --no-audit --no-fund --silent "binaryen@$BINARYEN_VERSION"
  fi
}

ensure_chromium() {
  step "Chromium (Debian)"
  if command -v chromium >/dev/null; then
    chromium --version
  else
    apt_install chromium
  fi
}

# Starts a local PostgreSQL with a role for the tests and exports TIDINGS_TEST_POSTGRES_URL.
ensure_postgres() {
  step "PostgreSQL (Debian)"
  if ! command -v pg_lsclusters >/dev/null || [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
    apt_install postgresql
  fi
  local version cluster status
  read -r version cluster _ status _ < <(pg_lsclusters -h | head -n 1)
  if [ "$status" != "online" ]; then
    as_root pg_ctlcluster "$version" "$cluster" start
  fi
  echo "PostgreSQL $version/$cluster is running"
  local psql=(as_root su postgres -c)
  if [ "$("${psql[@]}" "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname = 'tidings'\"")" != "1" ]; then
    "${psql[@]}" "psql -qc \"CREATE ROLE tidings LOGIN CREATEDB PASSWORD 'tidings'\""
  fi
  export TIDINGS_TEST_POSTGRES_URL="postgres://tidings:tidings@127.0.0.1:5432/postgres"
  # Databases left behind by an interrupted earlier run.
  local leftovers
  leftovers="$("${psql[@]}" "psql -tAc \"SELECT datname FROM pg_database WHERE datname LIKE 'tidings_test_%'\"")"
  for database in $leftovers; do
    "${psql[@]}" "psql -qc 'DROP DATABASE IF EXISTS $database WITH (FORCE)'"
  done
}

ensure_end2end_dependencies() {
  step "Playwright (npm ci in end2end/)"
  # Playwright's own browser download is not reachable here; the tests use Debian's Chromium.
  (cd "$PROJECT_ROOT/end2end" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
  echo "installed"
}

# build_release [EXTRA ARGS...]: the optimised server and WASM, e.g. with
# `--bin-features ssr,test-jobs` for the end-to-end tests.
build_release() {
  step "Building the release: server and WASM (cargo leptos build --release $*)"
  (cd "$PROJECT_ROOT" && cargo leptos build --release "$@")
}
