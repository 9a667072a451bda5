#!/usr/bin/env bash
# The tests' Python environment, under .build/python-env, made once: the reference Standard
# Webhooks library (PyPI `standardwebhooks`), which must accept the signatures merchant webhooks
# carry (Tests/PayNotifyTests/MerchantWebhookDeliveryTests.swift). Prints its python's path.
set -euo pipefail
cd "$(dirname "$0")/.."
env=.build/python-env
if ! "$env/bin/python" -c "import standardwebhooks" >/dev/null 2>&1; then
    rm -rf "$env"
    python3 -m venv "$env" >&2
    "$env/bin/pip" install --quiet --disable-pip-version-check "standardwebhooks==1.1.0" >&2
fi
echo "$PWD/$env/bin/python"
