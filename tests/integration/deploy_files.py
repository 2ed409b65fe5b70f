#!/usr/bin/python3
"""deploy_files.py SOURCE_DIR - static checks of Dockerfile and deploy/ (run by
test_deploy_files.sh): one "ok   - ..." / "FAIL - ..." line per check.

What the server really has is read from its sources, so renaming a route, a variable or
a metric there fails here instead of in production."""
import fnmatch, glob, json, os, re, shlex, sys
import yaml

SRC = sys.argv[1]


def check(desc, cond):
    print(("ok   - " if cond else "FAIL - ") + desc)


def read(rel):
    return open(os.path.join(SRC, rel)).read()


def sources(pattern):
    return "".join(read(os.path.relpath(p, SRC)) for p in glob.glob(os.path.join(SRC, pattern)))


# --- What exists, from the server's sources.
serve_cfg = read("server/cli/serve_config.c")
ENV_VARS = set(re.findall(r'"(AUDIOCLASS_[A-Z0-9_]+)"', serve_cfg + sources("engine/*.[ch]")))
ROUTES = set(re.findall(r'\{"(/[a-z0-9/._-]*)",', sources("server/*/*.c")))
METRICS = set(re.findall(r'"(audioclass_[a-z0-9_]+)', sources("server/http/metrics.c")))
PORT = int(re.search(r'"port", "AUDIOCLASS_PORT", T_INT, F\(port\), "(\d+)"', serve_cfg).group(1))
MAX_BODY = re.search(r'"max-body-bytes", "AUDIOCLASS_MAX_BODY_BYTES", T_BYTES, F\(max_body_bytes\), "(\w+)"',
                     serve_cfg).group(1)
SHUTDOWN = float(re.search(r'"shutdown-timeout", "AUDIOCLASS_SHUTDOWN_TIMEOUT", T_NUM, F\(shutdown_timeout_s\), "([\d.]+)"',
                           serve_cfg).group(1))
check(f"found the server's variables ({len(ENV_VARS)}), routes ({len(ROUTES)}), metrics ({len(METRICS)})",
      len(ENV_VARS) > 10 and {"/classify", "/healthz", "/readyz", "/metrics"} <= ROUTES and len(METRICS) > 5)

# --- Every deployment file parses; names in them exist.
DEPLOY = ["Dockerfile", ".dockerignore"] + sorted(os.path.relpath(p, SRC) for p in
                                                  glob.glob(os.path.join(SRC, "deploy/**/*"), recursive=True)
                                                  if os.path.isfile(p))
docs = {}
for rel in DEPLOY:
    if rel.endswith((".yml", ".yaml")):
        try:
            docs[rel] = [d for d in yaml.safe_load_all(read(rel)) if d]
            check(f"{rel} parses as YAML", len(docs[rel]) > 0)
        except yaml.YAMLError as e:
            check(f"{rel} parses as YAML ({e})", False)
text = {rel: read(rel) for rel in DEPLOY}
unknown = {f"{rel}: {v}" for rel, t in text.items() for v in re.findall(r"AUDIOCLASS_[A-Z0-9_]+", t)
           if v not in ENV_VARS}
check(f"every AUDIOCLASS_* variable named is one the server reads {sorted(unknown) or ''}", not unknown)
unknown = {f"{rel}: {m}" for rel, t in text.items() for m in re.findall(r"\baudioclass_[a-z0-9_]+", t)
           if m not in METRICS}
check(f"every metric named is one server/http/metrics.c exports {sorted(unknown) or ''}", not unknown)
readme = read("deploy/README.md") if os.path.exists(os.path.join(SRC, "deploy/README.md")) else ""
check("deploy/README.md names the queue-depth metric", "audioclass_queue_depth" in readme)

# --- Dockerfile.
df = [l.strip() for l in re.sub(r"\\\n", " ", text["Dockerfile"]).splitlines() if l.strip() and not l.lstrip().startswith("#")]
kw = lambda k: [l[len(k):].strip() for l in df if l.upper().startswith(k + " ")]
check("Dockerfile: two stages on debian:bookworm-slim",
      [f.split()[0] for f in kw("FROM")] == ["debian:bookworm-slim"] * 2)
check(f"Dockerfile: EXPOSE {PORT}", kw("EXPOSE") == [str(PORT)])
envs = dict(item.partition("=")[::2] for e in kw("ENV") for item in shlex.split(e))
check(f"Dockerfile: AUDIOCLASS_PORT is {PORT}", envs.get("AUDIOCLASS_PORT") == str(PORT))
user = kw("USER")[-1] if kw("USER") else ""
UID = int(user.split(":")[0]) if user.split(":")[0].isdigit() else 0
check(f"Dockerfile: runs as a numeric non-root USER ({user})", UID > 0)
ep = json.loads(kw("ENTRYPOINT")[0]) if kw("ENTRYPOINT") else None
cmd = json.loads(kw("CMD")[0]) if kw("CMD") else None
check("Dockerfile: exec-form ENTRYPOINT audioclass, CMD serve", ep and ep[0].endswith("/audioclass") and cmd == ["serve"])
hc = kw("HEALTHCHECK")
hc_cmd = json.loads(hc[0][hc[0].index("CMD") + 3:]) if hc else []
check("Dockerfile: exec-form HEALTHCHECK on /healthz", hc_cmd[-1:] == ["/healthz"] and "/healthz" in ROUTES)
ignore = [l.strip().rstrip("/") for l in text[".dockerignore"].splitlines() if l.strip() and not l.startswith("#")]
for c in kw("COPY"):
    words = shlex.split(c)
    if words[0].startswith("--from="):
        continue
    for s in words[:-1]:
        exists = os.path.exists(os.path.join(SRC, s))
        kept = not any(fnmatch.fnmatch(s.rstrip("/"), p) for p in ignore)
        check(f"Dockerfile: COPY {s} exists and is in the build context", exists and kept)
for d in ("CMakeLists.txt", "cmake", "engine", "server", "bench", "models"):
    check(f".dockerignore keeps {d}", not any(fnmatch.fnmatch(d, p) for p in ignore))

# --- docker compose + nginx + Prometheus agree.
comp = docs["deploy/docker-compose.yml"][0]
svc = comp["services"]
app = svc.get("audioclass", {})
check("compose: services audioclass, nginx, prometheus", {"audioclass", "nginx", "prometheus"} <= set(svc))
check("compose: replicas default 3", re.fullmatch(r"\$\{\w+:-3\}|3", str(app.get("deploy", {}).get("replicas"))) is not None)
b = app.get("build", {})
check("compose: build context holds the Dockerfile",
      os.path.exists(os.path.join(SRC, "deploy", b.get("context", "?"), b.get("dockerfile", "Dockerfile"))))
check(f"compose: replicas expose {PORT}", [str(p) for p in app.get("expose", [])] == [str(PORT)])
check("compose: replicas read-only, no privileges", app.get("read_only") is True and app.get("cap_drop") == ["ALL"])
envc = app.get("environment", {})
check("compose: stop_grace_period longer than the drain",
      int(str(app.get("stop_grace_period", "0s")).rstrip("s")) > float(envc.get("AUDIOCLASS_SHUTDOWN_TIMEOUT", SHUTDOWN)))
for name, s in svc.items():
    for v in s.get("volumes", []):
        src = v.split(":")[0]
        check(f"compose: {name} mounts existing {src}", os.path.exists(os.path.join(SRC, "deploy", src)))
check("compose: nginx published on :8080", "8080:8080" in [str(p) for p in svc["nginx"].get("ports", [])])
check("compose: prometheus only in profile monitoring", svc["prometheus"].get("profiles") == ["monitoring"])
ngx = text["deploy/nginx.conf"]
up = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", ngx, re.M)
check(f"nginx: upstream is the compose service on {PORT}", up == [("audioclass", str(PORT))])
check("nginx: listens on 8080", re.search(r"^\s*listen 8080;", ngx, re.M) is not None)
check(f"nginx: client_max_body_size = server default --max-body-bytes ({MAX_BODY})",
      re.search(r"client_max_body_size (\w+);", ngx).group(1).lower() == MAX_BODY.lower())
check("nginx: retries POSTs on error/timeout/503, bounded",
      re.search(r"proxy_next_upstream error timeout http_503 non_idempotent;", ngx) is not None
      and re.search(r"proxy_next_upstream_tries \d+;", ngx) is not None)
check("nginx: keepalive to the replicas", "keepalive " in ngx and 'proxy_set_header Connection "";' in ngx)
prom = docs["deploy/prometheus.yml"][0]["scrape_configs"][0]
sd = prom["dns_sd_configs"][0]
check("prometheus: scrapes /metrics of every replica on the server port",
      prom.get("metrics_path", "/metrics") in ROUTES and sd["names"] == ["audioclass"] and sd["port"] == PORT)

# --- Kubernetes.
k8s = {}
for rel, ds in docs.items():
    if rel.startswith("deploy/k8s/"):
        for d in ds:
            k8s[d["kind"]] = d
check("k8s: Deployment, Service, HPA, PDB, ConfigMap, Kustomization",
      {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "Kustomization"} <= set(k8s))
for r in k8s.get("Kustomization", {}).get("resources", []):
    check(f"k8s: kustomization resource {r} exists", os.path.exists(os.path.join(SRC, "deploy/k8s", r)))
dep, spec = k8s["Deployment"], k8s["Deployment"]["spec"]
pod = spec["template"]["spec"]
c = pod["containers"][0]
labels = spec["template"]["metadata"]["labels"]
sel_ok = lambda sel: sel and all(labels.get(k) == v for k, v in sel.items())
check("k8s: Deployment selector matches its pods", sel_ok(spec["selector"]["matchLabels"]))
check("k8s: Service selects the pods", sel_ok(k8s["Service"]["spec"]["selector"]))
check("k8s: PDB selects the pods", sel_ok(k8s["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]))
check("k8s: HPA scales the Deployment", k8s["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"])
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
check(f"k8s: container port {PORT}", ports.get("http") == PORT)
check("k8s: Service targets the http port", k8s["Service"]["spec"]["ports"][0]["targetPort"] in ("http", PORT))
check("k8s: readiness /readyz, liveness /healthz",
      c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz")
for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
    if probe in c:
        g = c[probe]["httpGet"]
        check(f"k8s: {probe} {g['path']} is a route on the server port", g["path"] in ROUTES and g["port"] in ("http", PORT))
cm = k8s["ConfigMap"]
check("k8s: envFrom names the ConfigMap", c["envFrom"][0]["configMapRef"]["name"] == cm["metadata"]["name"])
names = set(cm["data"]) | {e["name"] for e in c.get("env", [])}
check(f"k8s: every setting is a server variable {sorted(names - ENV_VARS) or ''}", names <= ENV_VARS)
check("k8s: ConfigMap values are strings", all(isinstance(v, str) for v in cm["data"].values()))
sc, psc = c["securityContext"], pod["securityContext"]
check("k8s: runAsNonRoot with the image's uid", psc.get("runAsNonRoot") is True and psc.get("runAsUser") == UID)
check("k8s: read-only root, no privilege escalation",
      sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False)
check("k8s: CPU and memory requests and limits", all(k in c["resources"][x] for x in ("requests", "limits") for k in ("cpu", "memory")))
pre = c["lifecycle"]["preStop"]["exec"]["command"]
drain = float(cm["data"].get("AUDIOCLASS_SHUTDOWN_TIMEOUT", SHUTDOWN))
check(f"k8s: grace period > preStop sleep + drain ({pre[-1]} + {drain:g} s)",
      pre[0].endswith("sleep") and pod["terminationGracePeriodSeconds"] > float(pre[-1]) + drain)
# The caller counts the lines; a non-zero exit means this script itself broke.
