#!/usr/bin/env bash
# Installs what the deploy checks (tests/deploy) need beyond the Python dev extras:
# promtool and prometheus, from Debian's `prometheus` package. Does nothing when promtool
# is already on PATH. Installs only as root (with apt-get); otherwise prints the command.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "promtool/prometheus missing: install them with" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends prometheus" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# No recommends: prometheus-node-exporter is not needed to run the checks.
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 prometheus
promtool --version | head -n 1
