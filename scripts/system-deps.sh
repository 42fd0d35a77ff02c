#!/usr/bin/env bash
# The Debian packages the hub and its tests need, installed when missing (as root), else named.
#   scripts/system-deps.sh run    Java 17 and Maven (the local Kafka broker)
#   scripts/system-deps.sh test   also PostgreSQL (the store's tests) and Chromium (the dashboard's test)
set -euo pipefail
want=()
command -v java >/dev/null 2>&1 || want+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || want+=(maven)
if [ "${1:-run}" = "test" ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ -n "${HUB_TEST_POSTGRES_URL:-}" ] || want+=(postgresql)
  command -v chromium >/dev/null 2>&1 || want+=(chromium)
fi
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${want[*]} (run: sudo apt-get install -y ${want[*]})" >&2
  exit 1
fi
echo "== installing ${want[*]} (Debian)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
