#!/usr/bin/python3
"""dockerfile.py DOCKERFILE CONTEXT BASE_TAR WORK CACHE - replays a Dockerfile without Docker.

Each stage becomes a directory WORK/<stage> unpacked from BASE_TAR (a Debian 12 root made by
debootstrap, standing in for debian:bookworm-slim). RUN runs in a chroot inside private mount
and PID namespaces (so nothing mounted here outlives the step), COPY honours .dockerignore,
and the last stage's runtime settings go to WORK/image.json for the caller to start.
Only the instructions the project's Dockerfile uses are understood; anything else is an
error, so the Dockerfile cannot quietly grow something this replay would skip.
The steps before a stage's first COPY depend on nothing but the Dockerfile, so, like Docker's
layer cache, their result is kept in CACHE keyed by their text.
"""
import fnmatch, hashlib, json, os, shlex, shutil, subprocess, sys

DOCKER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def instructions(path):
    """(KEYWORD, argument) per logical line: continuations joined, comments dropped."""
    out, cur = [], ""
    for line in open(path):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        kw, _, arg = cur.partition(" ")
        out.append((kw.upper(), arg.strip()))
        cur = ""
    return out


def ignored_patterns(context):
    p = os.path.join(context, ".dockerignore")
    if not os.path.exists(p):
        return []
    return [l.strip().rstrip("/") for l in open(p) if l.strip() and not l.startswith("#")]


def is_ignored(rel, pats):
    # Docker excludes a path when it or any parent directory matches a pattern.
    parts = rel.split("/")
    return any(fnmatch.fnmatch("/".join(parts[:i]), p) for i in range(1, len(parts) + 1) for p in pats)


def run_in(root, cmd, env, workdir, user):
    """/bin/sh -c cmd inside root, with /proc, /dev and the apt cache mounted privately."""
    cache = os.environ["APT_CACHE"]
    envs = " ".join(shlex.quote(f"{k}={v}") for k, v in {"HOME": "/root", **env}.items())
    spec = f"--userspec={user} " if user else ""
    inner = (f"mount -t proc proc {root}/proc && mount --rbind /dev {root}/dev && "
             f"mount --bind {cache} {root}/var/cache/apt/archives && "
             f"cp /etc/resolv.conf {root}/etc/resolv.conf && "
             f"exec chroot {spec}{root} /usr/bin/env -i {envs} "
             f"/bin/sh -c {shlex.quote('cd ' + shlex.quote(workdir) + ' && ' + cmd)}")
    print(f"+ RUN {cmd}", flush=True)
    subprocess.run(["nice", "unshare", "--mount", "--pid", "--fork", "--kill-child", "sh", "-c", inner],
                   stdin=subprocess.DEVNULL, check=True)


def copy(src_root, srcs, dst, root, workdir, pats):
    """COPY: a directory's contents, or a file, into dst (relative to WORKDIR); owner root."""
    dst_abs = os.path.normpath(os.path.join(workdir, dst))
    into_dir = dst.endswith("/") or len(srcs) > 1
    for s in srcs:
        base = os.path.join(src_root, s.lstrip("/"))
        if not os.path.exists(base):
            sys.exit(f"COPY: {s} does not exist")
        if os.path.isfile(base):
            target = os.path.join(dst_abs, os.path.basename(s)) if into_dir else dst_abs
            files = [(base, target)]
        else:
            files = [(os.path.join(d, f), os.path.join(dst_abs, os.path.relpath(os.path.join(d, f), base)))
                     for d, _, fs in os.walk(base) for f in fs]
        for f, t in files:
            if pats and is_ignored(os.path.relpath(f, src_root), pats):
                continue
            out = root + t
            os.makedirs(os.path.dirname(out), exist_ok=True)
            shutil.copy2(f, out)
            os.chown(out, 0, 0)


def main(dockerfile, context, base_tar, work, cache):
    pats = ignored_patterns(context)
    steps = instructions(dockerfile)
    stages, cfg, root, i, used = {}, None, None, 0, set()
    while i < len(steps):
        kw, arg = steps[i]
        i += 1
        if kw == "FROM":
            words = arg.split()
            if words[0] != "debian:bookworm-slim":
                sys.exit(f"FROM {words[0]}: only debian:bookworm-slim is emulated")
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            root = os.path.join(work, name)
            cfg = {"root": root, "env": {"PATH": DOCKER_PATH}, "workdir": "/",
                   "user": "", "entrypoint": [], "cmd": [], "healthcheck": [], "expose": []}
            stages[name] = cfg
            # Layer cache: the stage's leading RUN/ENV/WORKDIR steps, keyed by their text and
            # the base root they start from.
            j = i
            while j < len(steps) and steps[j][0] in ("RUN", "ENV", "WORKDIR"):
                j += 1
            key = repr((os.path.getsize(base_tar), arg, steps[i:j]))
            tar = os.path.join(cache, "layer-" + hashlib.sha256(key.encode()).hexdigest()[:16] + ".tar")
            os.makedirs(root)
            used.add(tar)
            if os.path.exists(tar):
                print(f"+ {len(steps[i:j])} steps from cache ({os.path.basename(tar)})", flush=True)
                subprocess.run(["tar", "-C", root, "-xf", tar], check=True)
                for k, a in steps[i:j]:
                    if k != "RUN":
                        apply(cfg, root, k, a)
                i = j
                continue
            subprocess.run(["tar", "-C", root, "-xzf", base_tar], check=True)
            for k, a in steps[i:j]:
                if k == "RUN":
                    run_in(root, a, cfg["env"], cfg["workdir"], cfg["user"])
                else:
                    apply(cfg, root, k, a)
            subprocess.run(["tar", "-C", root, "-cf", tar + ".tmp", "."], check=True)
            os.rename(tar + ".tmp", tar)
            i = j
        elif kw == "RUN":
            run_in(root, arg, cfg["env"], cfg["workdir"], cfg["user"])
        elif kw == "COPY":
            words = shlex.split(arg)
            src_root, ign = context, pats
            if words[0].startswith("--from="):
                src_root, ign = stages[words.pop(0)[7:]]["root"], []
            print(f"+ COPY {arg}", flush=True)
            copy(src_root, words[:-1], words[-1], root, cfg["workdir"], ign)
        else:
            apply(cfg, root, kw, arg)
    # Layers of older Dockerfiles or base roots are never used again.
    for f in os.listdir(cache):
        if f.startswith("layer-") and os.path.join(cache, f) not in used:
            os.remove(os.path.join(cache, f))
    json.dump(cfg, open(os.path.join(work, "image.json"), "w"), indent=1)


def apply(cfg, root, kw, arg):
    """The instructions that only change the image's settings (and WORKDIR's directory)."""
    if kw == "ENV":
        for item in shlex.split(arg):
            k, _, v = item.partition("=")
            cfg["env"][k] = v
    elif kw == "WORKDIR":
        cfg["workdir"] = os.path.normpath(os.path.join(cfg["workdir"], arg))
        os.makedirs(root + cfg["workdir"], exist_ok=True)
    elif kw == "USER":
        cfg["user"] = arg
    elif kw == "EXPOSE":
        cfg["expose"] += arg.split()
    elif kw in ("ENTRYPOINT", "CMD"):
        cfg[kw.lower()] = json.loads(arg)  # exec form only: a shell in between eats SIGTERM
    elif kw == "HEALTHCHECK":
        cfg["healthcheck"] = json.loads(arg[arg.index("CMD") + 3:])
    else:
        sys.exit(f"{kw}: not understood by tests/deploy/dockerfile.py")


if __name__ == "__main__":
    main(*sys.argv[1:6])
