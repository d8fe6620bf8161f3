#!/usr/bin/env bash
# What bench/h2 needs beyond Node: h2load (Debian's nghttp2-client), nginx with nchan, HAProxy, openssl (for
# scripts/make-cert.sh) and taskset. Installs the missing Debian packages (as root); starts nothing.
set -euo pipefail
missing=()
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || missing+=(libnginx-mod-nchan)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "bench/h2/setup.sh: ${missing[*]} missing; apt-get install -y ${missing[*]} (as root)" >&2
  exit 1
fi
echo "bench/h2/setup.sh: installing ${missing[*]}" >&2
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
