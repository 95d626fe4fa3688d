#!/usr/bin/env bash
# Installs what the stack and the suite need beyond Python packages: PostgreSQL server
# binaries from Debian, and the Go toolchain check for the control-plane build.
set -euo pipefail

have_postgres() {
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}

if ! have_postgres || { [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; }; then
    if [ "$(id -u)" != 0 ]; then
        echo "PostgreSQL server binaries are missing: run 'sudo apt-get install postgresql'" >&2
        exit 1
    fi
    echo "installing PostgreSQL from Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi

# The packaged cluster is not used (each run makes a throwaway one); don't let it hold 5432.
if command -v pg_lsclusters >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    pg_lsclusters -h 2>/dev/null | awk '$4 == "online" {print $1, $2}' | while read -r version name; do
        pg_ctlcluster "$version" "$name" stop || true
    done
fi

if ! command -v go >/dev/null 2>&1; then
    echo "the Go toolchain (>= 1.26) is needed once to build kube-apiserver and etcd" >&2
    exit 1
fi
