#!/usr/bin/env bash
# Installs the real servers the tests start (Debian packages), only when missing.
# The tests themselves start throw-away instances; nothing here is left running.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# nginx: the load balancer of docs/deploy/nginx.conf in front of serve replicas (tests/servers/nginx.py).
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)
# A CJK font: without one Chromium draws every Chinese character as an empty box (tofu), and the
# browser tests would pass on boxes (tests/channels/test_browser.py checks the pixels).
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "installing test servers: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian starts a cluster, a redis and an nginx service on install; the tests use their own.
if command -v service >/dev/null 2>&1; then
  service postgresql stop >/dev/null 2>&1 || true
  service redis-server stop >/dev/null 2>&1 || true
  service nginx stop >/dev/null 2>&1 || true
fi
echo "test servers ready"
