# The README's commands. Each installs what is missing first (Debian packages, as root or via sudo).
SHELL := /bin/bash
SWIFT ?= swift
# The embedded development database: a private cluster under .data/, used when DATABASE_URL is unset.
PG_DIR := .data/postgres
PG_PORT ?= 54329
DEV_KEYS := $(CURDIR)/.data/dev-keys
FORMAT_PATHS := Package.swift Sources Tests

.PHONY: run test bench build fmt lint deps db-start db-stop dev-keys

# Development settings for `make run` only, each overridable from the environment. A deployment
# sets its own secrets (README, "Configuration").
run: export PAYNOTIFY_API_KEYS ?= dev-merchant-key-0123456789
run: export PAYNOTIFY_STREAM_SECRET ?= dev-stream-secret-not-for-production-0123456789
run: export PAYNOTIFY_SANDBOX_SECRETS ?= dev-sandbox-secret
run: export PAYNOTIFY_ADMIN_TOKEN ?= dev-admin-token-0123456789
# The checkout demo at http://127.0.0.1:8080/ (its /demo endpoints exist only with this setting).
run: export PAYNOTIFY_DEMO ?= true
run: export PAYNOTIFY_STRIPE_SECRETS ?= whsec_dev_stripe_secret
# Merchant webhooks to a receiver on this machine (`paynotify listen`), which production refuses.
run: export PAYNOTIFY_ALLOW_HTTP_WEBHOOKS ?= true
run: export PAYNOTIFY_WEBHOOK_ALLOWED_CIDRS ?= 127.0.0.0/8,::1
# WeChat Pay and Alipay sign with RSA: dev-keys makes a key pair for each under .data/dev-keys,
# whose public halves these settings trust (and whose private halves only a simulator holds).
run: export PAYNOTIFY_WECHATPAY_PLATFORM_KEYS ?= DEV_PLATFORM_SERIAL=$(DEV_KEYS)/wechatpay-platform-public.pem
run: export PAYNOTIFY_WECHATPAY_APIV3_KEY ?= dev-apiv3-key-0123456789abcdefgh
run: export PAYNOTIFY_ALIPAY_PUBLIC_KEY ?= $(DEV_KEYS)/alipay-public.pem
run: export PAYNOTIFY_ALIPAY_APP_ID ?= 2021000000000000
# Reconciliation against the local provider emulator (`paynotify emulate-providers`, which `make
# run` starts beside the server on :8090): the APIs of WeChat Pay, Alipay and Stripe with their
# real signing, our keys made by dev-keys. Asked 10 s after creation in development, so the
# demo's "Pay, but lose the callback" ends soon; production's default starts at 1 minute.
run: export PAYNOTIFY_WECHATPAY_MCHID ?= 1900000000
run: export PAYNOTIFY_WECHATPAY_MERCHANT_SERIAL ?= DEV_MERCHANT_SERIAL
run: export PAYNOTIFY_WECHATPAY_MERCHANT_KEY ?= $(DEV_KEYS)/wechatpay-merchant-private.pem
run: export PAYNOTIFY_WECHATPAY_API_URL ?= http://127.0.0.1:8090
run: export PAYNOTIFY_ALIPAY_APP_PRIVATE_KEY ?= $(DEV_KEYS)/alipay-app-private.pem
run: export PAYNOTIFY_ALIPAY_GATEWAY_URL ?= http://127.0.0.1:8090/gateway.do
run: export PAYNOTIFY_STRIPE_API_KEY ?= sk_test_dev_0123456789
run: export PAYNOTIFY_STRIPE_API_URL ?= http://127.0.0.1:8090
run: export PAYNOTIFY_RECONCILE_AFTER ?= 10s,30s,1m,5m,10m,30m
run: export PAYNOTIFY_DEMO_EMULATOR_URL ?= http://127.0.0.1:8090

## run: install what is missing, start the embedded database unless DATABASE_URL is set, build in
## release mode, start the provider emulator and serve (Ctrl-C stops both cleanly; the database
## keeps running, `make db-stop` stops it).
run: deps dev-keys
	@if [ -z "$$DATABASE_URL" ]; then \
	    DATABASE_URL=$$(scripts/pg-cluster.sh start $(PG_DIR) $(PG_PORT)) || exit 1; \
	    echo "database: $$DATABASE_URL (embedded, in $(PG_DIR))"; \
	    export DATABASE_URL; \
	fi; \
	$(SWIFT) build -c release --product paynotify && \
	echo "paynotify: serving on http://$${PAYNOTIFY_HOST:-127.0.0.1}:$${PAYNOTIFY_PORT:-8080}  (/healthz, /readyz)" && \
	echo "paynotify: merchant API key $$PAYNOTIFY_API_KEYS, sandbox webhook secret $$PAYNOTIFY_SANDBOX_SECRETS (development only)" && \
	echo "paynotify: checkout demo on /, ops page on /ops (admin token $$PAYNOTIFY_ADMIN_TOKEN)" && \
	echo "paynotify: provider emulator on http://127.0.0.1:8090 (WeChat Pay, Alipay, Stripe APIs; /control/…)" && \
	{ .build/release/paynotify emulate-providers --port 8090 --keys $(DEV_KEYS) \
	      --webhook-url http://$${PAYNOTIFY_HOST:-127.0.0.1}:$${PAYNOTIFY_PORT:-8080} & emulator=$$!; \
	  trap 'kill $$emulator 2>/dev/null' EXIT; \
	  .build/release/paynotify serve; }

## test: a throwaway database, the format check and every test.
test:
	@scripts/test.sh

## bench: release build, a dedicated durable PostgreSQL in .build-bench/, the load generator's
## benchmarks each beside pgbench's ceiling, and a PASS/MISS summary (bench/run.sh says more).
bench: deps
	@bash bench/run.sh

## drills: the fault drills at full size (1,000 streams behind nginx, two instances, a steady
## webhook load; PostgreSQL restarted, listeners killed, instances SIGKILLed and SIGTERMed, the
## same behind PgBouncer, a Patroni leader killed and switched over). `make test` runs the same
## drills at a tenth of the size. Each prints one JSON line {"drill": …}.
drills:
	@set -o pipefail; PAYNOTIFY_DRILLS=full PAYNOTIFY_TEST_TIMEOUT=30m scripts/test.sh --filter DrillTests 2>&1 \
	    | tee .build/drills.log | grep -E '"drill"|✔|✘'

build: deps
	$(SWIFT) build

fmt:
	$(SWIFT) format format --in-place --recursive --parallel $(FORMAT_PATHS)

lint:
	$(SWIFT) format lint --strict --recursive --parallel $(FORMAT_PATHS)

deps:
	@scripts/install-deps.sh

## dev-keys: RSA key pairs for the local WeChat Pay and Alipay configuration (made once): each
## provider's own key (wechatpay-platform, alipay), which signs its callbacks and API answers, and
## ours (wechatpay-merchant, alipay-app), which signs our API requests to it.
dev-keys:
	@mkdir -p $(DEV_KEYS)
	@for name in wechatpay-platform alipay wechatpay-merchant alipay-app; do \
	    if [ ! -f $(DEV_KEYS)/$$name-private.pem ]; then \
	        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out $(DEV_KEYS)/$$name-private.pem 2>/dev/null && \
	        openssl pkey -in $(DEV_KEYS)/$$name-private.pem -pubout -out $(DEV_KEYS)/$$name-public.pem && \
	        echo "dev-keys: made $$name key pair in $(DEV_KEYS)"; \
	    fi; \
	done

db-start: deps
	@scripts/pg-cluster.sh start $(PG_DIR) $(PG_PORT)

db-stop:
	@scripts/pg-cluster.sh stop $(PG_DIR)
