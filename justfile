# Developer recipes. `just --list` shows them. Install just with `cargo install just`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Serve on the embedded defaults (SQLite file, in-process Stripe simulator).
run:
    cargo run

# The whole suite: SQLite and a throwaway PostgreSQL the harness starts itself.
test:
    cargo test

# The suite against an existing PostgreSQL (TEST_DATABASE_URL=postgres://…/postgres).
test-pg url:
    TEST_DATABASE_URL={{url}} cargo test

# What CI runs.
ci:
    bash .ci/run

lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

fmt:
    cargo fmt --all

# Migrate a SQLite file with the diesel CLI (the binary also migrates on start).
migrate-sqlite path="data/tenant-billing.db":
    mkdir -p "$(dirname {{path}})"
    diesel migration run --database-url {{path}} --migration-dir migrations/sqlite

# Migrate PostgreSQL with the diesel CLI.
migrate-pg url:
    diesel migration run --database-url {{url}} --migration-dir migrations/postgres

# Regenerate src/db/schema.rs from a migrated PostgreSQL database.
schema url:
    diesel print-schema --database-url {{url}} > src/db/schema.rs
    cargo fmt --all

# Load benchmarks on loopback (installs wrk if missing); see scripts/bench.sh.
bench:
    bash scripts/bench.sh
    bash stripe-sim/bench.sh

# Upgrade flow end to end with curl against `cargo run` (see README).
demo:
    bash scripts/demo.sh
