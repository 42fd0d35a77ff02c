#!/usr/bin/env bash
# The Debian packages the hub and its tests need, installed when missing (as root), else named.
#   scripts/system-deps.sh venv   python3-venv (scripts/uv makes a venv for uv when none is installed)
#   scripts/system-deps.sh run    Java 17 and Maven (the local Kafka broker)
#   scripts/system-deps.sh test   also PostgreSQL (the store's tests), Chromium, its driver and a CJK font (the pages'
#                                 test: without one, its Korean labels are empty boxes)
set -euo pipefail
want=()
if [ "${1:-run}" = "venv" ]; then
  python3 -c "import ensurepip, venv" >/dev/null 2>&1 || want+=(python3-venv)
else
  command -v java >/dev/null 2>&1 || want+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || want+=(maven)
fi
if [ "${1:-run}" = "test" ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ -n "${HUB_TEST_POSTGRES_URL:-}" ] || want+=(postgresql)
  command -v chromium >/dev/null 2>&1 || want+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || want+=(chromium-driver)  # the browser tests (Selenium), no download
  { command -v fc-list >/dev/null 2>&1 && fc-list :lang=ko | grep -q .; } || want+=(fonts-noto-cjk)
fi
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${want[*]} (run: sudo apt-get install -y ${want[*]})" >&2
  exit 1
fi
echo "== installing ${want[*]} (Debian)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
