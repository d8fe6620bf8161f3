#!/bin/sh
# A self-signed certificate for trying Holdfast's TLS listener (and for its tests):
#   scripts/make-cert.sh DIR NAME [NAME...]
# writes DIR/NAME.crt and DIR/NAME.key, NAME being the first (P-256, valid 30 days) whose subjectAltName lists every NAME (an IP
# address becomes an IP entry, anything else a DNS entry). Browsers will warn: it is signed by itself.
set -eu
if [ "$#" -lt 2 ]; then
  echo "usage: $0 DIR NAME [NAME...]   (e.g. $0 certs localhost 127.0.0.1)" >&2
  exit 2
fi
dir=$1
shift
# A wildcard name makes a file name with `_` for `*` (_.example.com.crt).
first=$(printf '%s' "$1" | tr '*' '_')
san=""
for name in "$@"; do
  case "$name" in
    *[!0-9.]*) entry="DNS:$name" ;;
    *) entry="IP:$name" ;;
  esac
  san="${san:+$san,}$entry"
done
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=$1" -addext "subjectAltName=$san" \
  -keyout "$dir/$first.key" -out "$dir/$first.crt" 2>/dev/null
echo "$dir/$first.crt"
echo "$dir/$first.key"
