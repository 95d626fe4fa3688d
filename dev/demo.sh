#!/usr/bin/env bash
# `make demo`: the whole system on this machine on the built-in defaults: one broadcast,
# and one transactional message through herald-api beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/herald dev demo
