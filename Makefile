# The README's commands. Each installs what is missing first (Debian packages, as root or via sudo).
SHELL := /bin/bash
SWIFT ?= swift
# The embedded development database: a private cluster under .data/, used when DATABASE_URL is unset.
PG_DIR := .data/postgres
PG_PORT ?= 54329
FORMAT_PATHS := Package.swift Sources Tests

.PHONY: run test build fmt lint deps db-start db-stop

# Development settings for `make run` only, each overridable from the environment. A deployment
# sets its own secrets (README, "Configuration").
run: export PAYNOTIFY_API_KEYS ?= dev-merchant-key-0123456789
run: export PAYNOTIFY_STREAM_SECRET ?= dev-stream-secret-not-for-production-0123456789
run: export PAYNOTIFY_SANDBOX_SECRETS ?= dev-sandbox-secret

## run: install what is missing, start the embedded database unless DATABASE_URL is set, build in
## release mode and serve (Ctrl-C stops cleanly; the database keeps running, `make db-stop` stops it).
run: deps
	@if [ -z "$$DATABASE_URL" ]; then \
	    DATABASE_URL=$$(scripts/pg-cluster.sh start $(PG_DIR) $(PG_PORT)) || exit 1; \
	    echo "database: $$DATABASE_URL (embedded, in $(PG_DIR))"; \
	    export DATABASE_URL; \
	fi; \
	$(SWIFT) build -c release --product paynotify && \
	echo "paynotify: serving on http://$${PAYNOTIFY_HOST:-127.0.0.1}:$${PAYNOTIFY_PORT:-8080}  (/healthz, /readyz)" && \
	echo "paynotify: merchant API key $$PAYNOTIFY_API_KEYS, sandbox webhook secret $$PAYNOTIFY_SANDBOX_SECRETS (development only)" && \
	exec .build/release/paynotify serve

## test: a throwaway database, the format check and every test.
test:
	@scripts/test.sh

build: deps
	$(SWIFT) build

fmt:
	$(SWIFT) format format --in-place --recursive --parallel $(FORMAT_PATHS)

lint:
	$(SWIFT) format lint --strict --recursive --parallel $(FORMAT_PATHS)

deps:
	@scripts/install-deps.sh

db-start: deps
	@scripts/pg-cluster.sh start $(PG_DIR) $(PG_PORT)

db-stop:
	@scripts/pg-cluster.sh stop $(PG_DIR)
