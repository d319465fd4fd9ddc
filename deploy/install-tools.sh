#!/usr/bin/env bash
# Installs the programs the test suite runs beyond the Python dev extras, from Debian's
# packages: PostgreSQL's server binaries (the suite starts its own server in a temporary
# directory), promtool and prometheus (the deploy checks), Chromium (the console's browser
# tests drive it with Playwright), Java 17 and Maven (the suite fetches Apache Kafka's jars
# from Maven Central and starts its own KRaft nodes). Does nothing when all are present.
# Installs only as root (with apt-get); otherwise prints the command.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 \
    || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing for the test suite: ${missing[*]}; install them with" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# No recommends: prometheus-node-exporter and the like are not needed to run the checks.
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"
# Debian's package starts a cluster as a service; the suite runs its own servers instead.
if command -v pg_ctlcluster >/dev/null 2>&1; then
    for version in /usr/lib/postgresql/*; do
        pg_ctlcluster "$(basename "$version")" main stop 2>/dev/null || true
    done
fi
