#!/usr/bin/env bash
# Installs everything the tests need into .venv and runs the whole suite.
# PostgreSQL (TEST_POSTGRES_URL) and Redis (TEST_REDIS_URL) tests run whenever those
# answer; with CI=true they must answer.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
exec .venv/bin/python -m pytest "$@"
