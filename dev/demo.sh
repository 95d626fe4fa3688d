#!/usr/bin/env bash
# `make demo`: the local stack on the built-in defaults, the examples applied, the result shown.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

"$BIN/herald" dev up
# shellcheck disable=SC1091
. .herald/dev/env
export PATH="$PWD/$BIN:$PATH"

kubectl create namespace demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n demo apply -f examples/
echo
kubectl -n demo get broadcasts
echo
echo "The stack keeps running: '. .herald/dev/env' to use it, 'make down' to stop it."
