#!/usr/bin/env bash
# Builds Tidings and serves it on http://127.0.0.1:3000 with an embedded SQLite database in
# ./data. Arguments are passed to the server (see `target/release/tidings --help`).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

ensure_build_tools
build_release

step "Starting Tidings"
cd "$PROJECT_ROOT"
export LEPTOS_ENV="${LEPTOS_ENV:-PROD}"
exec target/release/tidings "$@"
