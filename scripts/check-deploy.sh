#!/usr/bin/env bash
# Checks the deployment files without Docker (`make test` runs it): what docker-compose.yml names
# exists, the Dockerfile's COPY sources exist and are not .dockerignored, `nginx -t` accepts
# deploy/nginx.conf rewritten to loopback exactly as the end-to-end test rewrites it, and promtool
# accepts deploy/prometheus (its rules' unit tests included).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "check-deploy: $*" >&2; exit 1; }

python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q pyyaml 2>/dev/null \
    || python3 -m pip install -q --break-system-packages pyyaml || fail "no PyYAML (apt-get install python3-yaml)"

# (a) docker-compose.yml's files, (b) the Dockerfiles' COPY sources.
python3 - <<'PY' || fail "docker-compose.yml or a Dockerfile names something missing (see above)"
import fnmatch, glob, json, os, re, shlex, sys, yaml

failures, dockerfiles = 0, []
def check(ok, what):
    global failures
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    failures += not ok

compose = yaml.safe_load(open("docker-compose.yml"))
print("docker-compose.yml:")
for name, svc in (compose.get("services") or {}).items():
    if (build := svc.get("build")) is not None:
        build = {"context": build} if isinstance(build, str) else build
        context = build.get("context", ".")
        dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
        check(os.path.isdir(context), f"{name}: build context {context}")
        check(os.path.isfile(dockerfile), f"{name}: dockerfile {dockerfile}")
        dockerfiles.append((context, dockerfile))
    for volume in svc.get("volumes") or []:
        source = volume.split(":")[0] if isinstance(volume, str) else volume.get("type") == "bind" and volume.get("source")
        if source and source.startswith((".", "/")):
            check(os.path.exists(source), f"{name}: bind mount source {source}")
    env_files = svc.get("env_file") or []
    for entry in [env_files] if isinstance(env_files, str) else env_files:
        path, required = (entry, True) if isinstance(entry, str) else (entry["path"], entry.get("required", True))
        if str(required).lower() in ("false", "0", "no"):  # the operator creates it from the example
            check(os.path.isfile(path + ".example"), f"{name}: optional env_file {path}, example {path}.example")
        else:
            check(os.path.isfile(path), f"{name}: env_file {path}")
for section in ("configs", "secrets"):
    for name, item in (compose.get(section) or {}).items():
        if isinstance(item, dict) and "file" in item:
            check(os.path.exists(item["file"]), f"{section} {name}: file {item['file']}")

for context, dockerfile in dict.fromkeys(dockerfiles):
    print(f"{dockerfile} (context {context}):")
    ignore = os.path.join(context, ".dockerignore")
    patterns = [l.strip().strip("/") for l in open(ignore)] if os.path.exists(ignore) else []
    patterns = [p for p in patterns if p and not p.startswith("#")]
    for line in re.sub(r"\\\n", " ", open(dockerfile).read()).splitlines():
        m = re.match(r"\s*(?:COPY|ADD)\s+((?:--\S+\s+)*)(.*)", line, re.I)
        if not m or "--from" in m.group(1):  # copies from another stage, not from the context
            continue
        args = json.loads(m.group(2)) if m.group(2).startswith("[") else shlex.split(m.group(2))
        for source in args[:-1]:
            rel = os.path.relpath(os.path.join(context, source), context)
            excluded = False
            for p in patterns:  # as Docker: the last matching pattern wins, "!" re-includes
                if fnmatch.fnmatch(rel, p.lstrip("!")) or fnmatch.fnmatch(rel.split("/")[0], p.lstrip("!")):
                    excluded = not p.startswith("!")
            check(bool(glob.glob(os.path.join(context, rel))), f"COPY source {rel} exists")
            check(not excluded, f"COPY source {rel} is not excluded by {ignore}")
sys.exit(failures > 0)
PY

# (c) nginx -t on deploy/nginx.conf rewritten as the end-to-end test does.
command -v nginx >/dev/null || fail "nginx is not installed, so deploy/nginx.conf cannot be tested (apt-get install -y nginx)"
for literal in 'server paynotify-1:8080' 'server paynotify-2:8080' 'listen 80;' 'listen 443 ssl http2;' \
    'ssl_certificate /etc/nginx/tls/fullchain.pem;' 'ssl_certificate_key /etc/nginx/tls/privkey.pem;'; do
    grep -qF "$literal" deploy/nginx.conf || fail "deploy/nginx.conf lacks '$literal', which the end-to-end test rewrites"
done
tmp=$(mktemp -d /tmp/check-deploy.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
scripts/tls-cert.sh "$tmp/tls" >/dev/null
sed -e 's/paynotify-1:8080/127.0.0.1:18081/' -e 's/paynotify-2:8080/127.0.0.1:18082/' \
    -e 's/listen 80;/listen 127.0.0.1:18080;/' -e 's/listen 443 ssl http2;/listen 127.0.0.1:18443 ssl http2;/' \
    -e "s|/etc/nginx/tls/|$tmp/tls/|" deploy/nginx.conf >"$tmp/nginx.conf"
echo "deploy/nginx.conf (upstreams on 127.0.0.1:18081/18082, listening on 127.0.0.1:18080 and, TLS, 18443):"
if ! nginx -t -p "$tmp/" -c "$tmp/nginx.conf" -e "$tmp/error.log" -g "pid $tmp/nginx.pid;" 2>"$tmp/test.log"; then
    cat "$tmp/test.log" "$tmp/error.log" >&2 2>/dev/null || true
    fail "nginx rejects deploy/nginx.conf"
fi
sed 's/^/  /' "$tmp/test.log"

# (d) deploy/prometheus: promtool's checks of the configuration and the rules, the rules' unit
# tests, and the Grafana dashboard is JSON whose every query names a series or rule there is.
command -v promtool >/dev/null || fail "promtool is not installed (apt-get install -y prometheus)"
echo "deploy/prometheus:"
(cd deploy/prometheus && promtool check config prometheus.yml && promtool test rules rules.test.yml) 2>&1 \
    | grep -v '^$' | sed 's/^/  /'
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "promtool refuses deploy/prometheus (see above)"
python3 - <<'PY' || fail "deploy/prometheus/grafana-dashboard.json reads something that is not there (see above)"
import json, re, subprocess, sys
dashboard = json.load(open("deploy/prometheus/grafana-dashboard.json"))
rules = open("deploy/prometheus/rules.yml").read()
recorded = set(re.findall(r"record: (\S+)", rules))
exported = set(re.findall(r'"(paynotify_[a-z_]+)"', subprocess.run(
    ["grep", "-rhoE", '"paynotify_[a-z_]+"', "Sources"], capture_output=True, text=True).stdout))
failures = 0
for panel in dashboard["panels"]:
    for target in panel["targets"]:
        for name in re.findall(r"\b(paynotify[_:][a-z0-9_:]+)", target["expr"]):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if name not in recorded and base not in exported:
                print(f"  FAIL {panel['title']}: {name} is neither exported by Sources nor recorded by rules.yml")
                failures += 1
print(f"  grafana-dashboard.json: {len(dashboard['panels'])} panels, {failures} unknown series")
sys.exit(failures > 0)
PY
echo "check-deploy: all deployment files check out"
