#!/usr/bin/env bash
# The services the test suite talks to: Redis on 127.0.0.1:6379 and NATS with JetStream on 127.0.0.1:4222
# (the bus drivers' tests; their fault tests also start their own redis-server and nats-server on free ports),
# and Debian's chromium at /usr/bin/chromium, which the dashboard's browser test drives (playwright-core, no
# browser download). Installs the Debian packages when missing and starts the servers when nothing answers.
# Also nginx-light with nchan, which the probe's tests start on their own temp configs (nothing here runs it;
# Debian's package does not start it either).
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
# Not a service: test/docs runs the README's shell blocks, which use curl.
command -v curl >/dev/null 2>&1 || missing+=(curl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || missing+=(libnginx-mod-nchan)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "services.sh: ${missing[*]} missing; install them (apt-get install -y ${missing[*]}) or run this as root" >&2
    exit 1
  fi
  echo "services.sh: installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 6379; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
fi
if ! port_open 4222; then
  # JetStream on, with a store dir: the NATS bus keeps channel history in a stream.
  store="${TMPDIR:-/tmp}/holdfast-nats"
  mkdir -p "$store"
  (nats-server -a 127.0.0.1 -p 4222 -js -sd "$store" >/dev/null 2>&1 &)
fi
for _ in $(seq 1 100); do
  if port_open 6379 && port_open 4222; then exit 0; fi
  sleep 0.1
done
echo "services.sh: Redis (6379) or NATS (4222) did not start within 10 s" >&2
exit 1
