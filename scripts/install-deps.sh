#!/usr/bin/env bash
# Installs the Debian packages the project needs, only those missing. Idempotent and quiet when
# everything is there. Runs as root, or through sudo when it is available.
set -euo pipefail

packages=(postgresql libpq-dev pkg-config openssl)
if [ "${PAYNOTIFY_EXTRA_PACKAGES:-}" != "" ]; then
    read -r -a extra <<<"$PAYNOTIFY_EXTRA_PACKAGES"
    packages+=("${extra[@]}")
fi

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null; then
    as_root=(sudo)
else
    echo "install-deps: missing packages ${missing[*]}; run as root or install them" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
