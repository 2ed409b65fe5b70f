#!/usr/bin/env bash
# test_deploy_files.sh AUDIOCLASS SOURCE_DIR - the deployment files (Dockerfile, deploy/)
# parse, and name only things that exist: files in the repository, the server's port, routes
# (server/http/http_server.c), AUDIOCLASS_* variables (server/cli/serve_config.c, engine/) and metric
# names (server/http/metrics.c); the compose, nginx, Prometheus and Kubernetes pieces agree with
# each other; the server starts with the settings compose and the ConfigMap ship. No Docker
# or cluster needed; the running counterparts are in tests/deploy/ (`make test-deploy`).
# Needs /usr/bin/python3 with PyYAML (python3-yaml).
set -u
SRC=$(realpath "$2")
source "$SRC/tests/integration/lib.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

check "deploy/healthcheck.sh is valid bash" bash -n "$SRC/deploy/healthcheck.sh"
check "deploy/healthcheck.sh is executable" test -x "$SRC/deploy/healthcheck.sh"
check "deploy/measure_rss.sh is valid bash" bash -n "$SRC/deploy/measure_rss.sh"
if command -v nginx >/dev/null; then
  # nginx -t resolves upstream names, so the compose service name becomes loopback here.
  sed 's/server audioclass:8080/server 127.0.0.1:8080/' "$SRC/deploy/nginx.conf" >"$T/nginx.conf"
  check "nginx -t accepts deploy/nginx.conf" nginx -t -q -p "$T/" -c "$T/nginx.conf" -e stderr
else
  echo "skip - nginx -t (nginx not installed; make test-deploy runs it)"
fi

# The settings shipped in compose and the ConfigMap are values the server accepts: it
# starts with them (a bad value exits 2 before listening) and drains on SIGTERM.
for where in compose k8s; do
  mapfile -t ENVS < <(/usr/bin/python3 - "$SRC" "$where" <<'PY'
import sys, yaml
src, where = sys.argv[1], sys.argv[2]
if where == "compose":
    env = yaml.safe_load(open(f"{src}/deploy/docker-compose.yml"))["services"]["audioclass"]["environment"]
else:
    env = dict(yaml.safe_load(open(f"{src}/deploy/k8s/configmap.yaml"))["data"], AUDIOCLASS_THREADS="2")
print("\n".join(f"{k}={v}" for k, v in env.items()))
PY
)
  env "${ENVS[@]}" AUDIOCLASS_PORT=0 AUDIOCLASS_BIND=127.0.0.1 \
    AUDIOCLASS_MODELS="zoo1d=$SRC/tests/golden/zoo1d.safetensors" "$(realpath "$1")" serve 2>"$T/$where.log" &
  PID=$!
  for _ in $(seq 100); do grep -qs '"event":"listening"' "$T/$where.log" && break; kill -0 $PID 2>/dev/null || break; sleep 0.1; done
  check "server starts with the $where settings (${#ENVS[@]} variables)" grep -q '"event":"listening"' "$T/$where.log"
  kill -TERM $PID 2>/dev/null
  wait $PID
  check_eq "server with the $where settings exits 0 on SIGTERM" 0 "$?"
done

# The structured checks: one "ok   - ..." or "FAIL - ..." line each, counted here.
while IFS= read -r line; do
  case "$line" in
  "ok   - "*) ok "${line#ok   - }" ;;
  "FAIL - "*) bad "${line#FAIL - }" ;;
  *) echo "$line" ;;
  esac
done < <(/usr/bin/python3 "$SRC/tests/integration/deploy_files.py" "$SRC" 2>&1 || echo "FAIL - deploy_files.py crashed")
finish
