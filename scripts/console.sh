#!/usr/bin/env bash
# Installs, migrates the embedded SQLite database, seeds demo threads and a staff user
# (admin / admin, local use only), and serves the console on http://127.0.0.1:8000/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py seed_demo
DJANGO_SUPERUSER_PASSWORD="${DJANGO_SUPERUSER_PASSWORD:-admin}" \
  .venv/bin/python manage.py createsuperuser --noinput --username admin --email admin@localhost 2>/dev/null || true
exec .venv/bin/python manage.py runserver "${PORT:-8000}"
