#!/usr/bin/env bash
# A self-signed TLS certificate for trying the HTTPS/HTTP/2 side of deploy/nginx.conf (and for the
# tests): DIR/fullchain.pem and DIR/privkey.pem, an ECDSA P-256 key, valid for localhost and
# 127.0.0.1 for 30 days. Browsers warn about it; in production use your CA's certificate and key
# under the same two names (Let's Encrypt's are called exactly that).
#
#   scripts/tls-cert.sh DIR [HOSTNAME]
set -euo pipefail
dir=${1:?usage: tls-cert.sh DIR [HOSTNAME]}
host=${2:-localhost}
command -v openssl >/dev/null || { echo "tls-cert: openssl is not installed (apt-get install -y openssl)" >&2; exit 1; }
names="DNS:localhost,IP:127.0.0.1"
[ "$host" = localhost ] || names="DNS:$host,$names"
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=$host" \
    -addext "subjectAltName=$names" \
    -keyout "$dir/privkey.pem" -out "$dir/fullchain.pem" 2>/dev/null
chmod 600 "$dir/privkey.pem"
echo "tls-cert: $dir/fullchain.pem and $dir/privkey.pem (self-signed, $host)"
