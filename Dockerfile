# syntax=docker/dockerfile:1
# PayNotify's image: `docker build -t paynotify .`, or `docker compose build` (docker-compose.yml).
# Two stages: the Swift toolchain builds a release binary with the Swift runtime linked in
# statically; the runtime image is Debian slim with libpq and nothing else of note.

# ---- build ----------------------------------------------------------------------------------------
FROM swift:6.3.1-bookworm AS builder

# libpq's headers and pkg-config, for the CLibPQ system library target.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpq-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build
# The sources the build needs. Package.resolved is not committed (.gitignore), so dependency
# resolution cannot get a layer of its own keyed on a lock file; the cache mount below keeps
# checkouts and build products between builds instead. Tests/ is copied although nothing in it is
# compiled: SwiftPM refuses a manifest whose targets' directories are missing. migrations/ is
# compiled into the binary (Sources/Storage/Migrations links to it).
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
COPY migrations ./migrations

# Build, then copy what the runtime needs out of the cache mount (which is not part of the image):
# the binary, every SwiftPM resource bundle beside it (paynotify_PayNotify.resources must sit next
# to the binary, where Bundle.module looks for it), and the toolchain's static backtracer, so a
# crash prints a symbolicated backtrace.
RUN --mount=type=cache,target=/build/.build \
    swift build -c release --product paynotify --static-swift-stdlib \
    && mkdir -p /staging \
    && cp .build/release/paynotify /staging/ \
    && find -L .build/release/ -maxdepth 1 -name '*.resources' -exec cp -R {} /staging/ \; \
    && cp /usr/libexec/swift/linux/swift-backtrace-static /staging/

# ---- runtime --------------------------------------------------------------------------------------
FROM debian:bookworm-slim

# libpq5: the PostgreSQL client library (it brings libssl3 for sslmode=require/verify-full).
# ca-certificates: to verify a TLS database server (sslmode=verify-full) against public CAs.
# Nothing else: with --static-swift-stdlib the Swift runtime and Foundation (including its own
# ICU data) are inside the binary; it still links glibc, libstdc++ and libgcc_s dynamically, which
# bookworm-slim has. FoundationNetworking (libcurl) and FoundationXML (libxml2) are not used; add
# libcurl4 / libxml2 here if a future import needs them. tzdata is not installed: the service
# works in UTC.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# An unprivileged user to run as (a fixed uid, so orchestrators can check runAsNonRoot). The
# files below stay root's: the process can read but not replace its own binary.
RUN groupadd --system --gid 10001 paynotify \
    && useradd --system --uid 10001 --gid paynotify --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin paynotify

WORKDIR /app
# The binary (the SQL migrations are compiled into it) with its resource bundle(s) and the
# backtracer.
COPY --from=builder /staging/ /app/

# Listen on every interface (the service's default, 127.0.0.1, is unreachable from outside the
# container), on 8080; print a readable backtrace on a crash, using the static backtracer copied
# above.
ENV PAYNOTIFY_HOST=0.0.0.0 \
    PAYNOTIFY_PORT=8080 \
    SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,cache=no,swift-backtrace=/app/swift-backtrace-static

USER 10001:10001
EXPOSE 8080

# Ready = GET /readyz answers 200 (database reachable, LISTEN connection listening). No curl in
# the image: bash's /dev/tcp sends the request and the status line is checked. Assumes the
# service listens on all interfaces (PAYNOTIFY_HOST=0.0.0.0), so loopback reaches it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PAYNOTIFY_PORT:-8080} && printf 'GET /readyz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -qE '^HTTP/1\\.[01] 200[[:space:]]'"]

# SIGTERM (Docker's default, stated for clarity) starts the graceful shutdown: new streams get
# 503 shutting_down, open ones get `retry: 250` and end, in-flight requests finish.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/paynotify"]
CMD ["serve"]
