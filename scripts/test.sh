#!/usr/bin/env bash
# Runs every test of the workspace, after setting up what the tests need:
# - a real Request Tracker 5 on 127.0.0.1:8181 (installed from Debian's packages when missing,
#   started when not running; see scripts/rt-setup.sh), whose URL and token land in
#   target/rt-test.env for the tests;
# - a real Redmine 5 on 127.0.0.1:3300 (Debian's packages, sqlite, thin; see
#   scripts/redmine-setup.sh), whose URL and keys land in target/redmine-test.env;
# - a real Tryton 8.2 on 127.0.0.1:8000 (trytond, party and sale from PyPI in a venv, sqlite;
#   see scripts/tryton-setup.sh), whose URL and login land in target/tryton-test.env;
# - then lint (rustfmt, clippy -D warnings) and `cargo test --workspace`.
# Needs root for the apt install and RT's configuration (as in CI).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/rt-setup.sh >/dev/null
bash scripts/redmine-setup.sh >/dev/null
bash scripts/tryton-setup.sh >/dev/null

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace -- --test-threads 4
