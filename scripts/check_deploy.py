"""The Python half of scripts/check-deploy: one function per check of deploy/ and cloud-init/.

scripts/check-deploy runs `check_deploy.py CHECK ARGS...` once per check, with Debian's
python3 and python3-yaml (deploy/packages/test.txt), and counts each exit status into its
"deploy checks: N passed, M failed" line. A check prints what it found on success; on
failure it prints "error: ..." lines and exits 1. Kept beside the script that runs it.
"""

import ctypes
import http.server
import itertools
import json
import mmap
import os
import re
import shlex
import socket
import subprocess
import sys
import threading

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shutdown_bound_seconds():
    """The binary's stop bound past --shutdown-delay (drain + flush), from src/serve.rs."""
    text = read(os.path.join(REPO, "src", "serve.rs"))
    m = re.search(
        r"const SHUTDOWN_BOUND: Duration = Duration::from_secs\((\d+)\);", text
    )
    if not m:
        sys.exit("error: src/serve.rs no longer states SHUTDOWN_BOUND")
    return int(m.group(1))


def finish(errors, summary):
    """Prints the errors and fails, or prints the summary."""
    for error in errors:
        print("error:", error)
    if errors:
        sys.exit(1)
    print(summary)


def read(path):
    with open(path) as f:
        return f.read()


def run_text(*argv):
    return subprocess.run(argv, check=False, capture_output=True, text=True).stdout


# ---------------------------------------------------------------------------------------------


def dockerfile(dockerfile_path, dockerignore_path):
    """The Dockerfile's invariants (SPEC §5): multi-stage, pinned bases, no remote ADD, package
    lists read from deploy/packages, uid 2000, EXPOSE 8080, HEALTHCHECK on /healthz, a cache
    VOLUME that is the configured cache dir, configuration by LAZYCACHE_* only, nothing
    relying on $HOME."""
    logical, cur = [], ""
    for line in read(dockerfile_path).splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if cur and line.lstrip().startswith("#"):
            continue  # comment lines inside a continuation are dropped by the parser too
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        logical.append((cur + line).strip())
        cur = ""
    instrs = []
    for text in logical:
        word, _, rest = text.partition(" ")
        instrs.append((word.upper(), rest.strip()))
    errors = []
    err = errors.append

    stages, names = [], set()
    for op, arg in instrs:
        if op == "FROM":
            parts = [p for p in arg.split() if not p.startswith("--")]
            image = parts[0]
            alias = (
                parts[2].lower()
                if len(parts) >= 3 and parts[1].upper() == "AS"
                else None
            )
            stages.append({"image": image, "alias": alias, "instrs": []})
            if image.lower() in names:
                pass
            elif "$" in image:
                err(f"FROM {image}: a variable base image is not pinned")
            elif "@sha256:" in image:
                pass
            else:
                tag = image.rsplit("/", 1)[-1].partition(":")[2]
                if not tag:
                    err(f"FROM {image}: no tag (means latest)")
                elif tag == "latest":
                    err(f"FROM {image}: 'latest' is not a pin")
            if alias:
                names.add(alias)
        elif stages:
            stages[-1]["instrs"].append((op, arg))
        elif op != "ARG":
            err(f"{op} before the first FROM")
    if len(stages) < 2:
        err("not multi-stage")
    else:
        build_base = r"rust:1\.9\d(\.\d+)?-bookworm(@sha256:[0-9a-f]{64})?"
        if not re.fullmatch(build_base, stages[0]["image"]):
            err(f"build stage base {stages[0]['image']} is not rust:1.9x-bookworm")
        runtime_base = r"debian:bookworm-slim(@sha256:[0-9a-f]{64})?"
        if not re.fullmatch(runtime_base, stages[-1]["image"]):
            err(f"runtime stage base {stages[-1]['image']} is not debian:bookworm-slim")

    for op, arg in instrs:
        if op == "ADD":
            srcs = [a for a in shlex.split(arg) if not a.startswith("--")][:-1]
            for s in srcs:
                if re.match(r"^(https?|ftp|git)://|^git@|\.git$", s):
                    err(f"remote ADD {s}")
        if op in ("RUN", "CMD", "ENTRYPOINT", "ENV", "HEALTHCHECK") and re.search(
            r"\$\{?HOME\b|~/", arg
        ):
            err(f"{op} relies on $HOME: {arg[:60]}")

    def stage_checks(stage, listname):
        ins = stage["instrs"]
        copies = [
            a for o, a in ins if o == "COPY" and f"deploy/packages/{listname}.txt" in a
        ]
        if not copies:
            err(
                f"stage {stage['alias']}: deploy/packages/{listname}.txt is not copied in"
            )
            return
        dest = copies[0].split()[-1]
        installs = [a for o, a in ins if o == "RUN" and "apt-get install" in a]
        if not installs:
            err(f"stage {stage['alias']}: installs no packages")
        fed = (
            r"sed [^|]*"
            + re.escape(dest.rstrip("/"))
            + r"[^|]*\|\s*xargs apt-get install"
        )
        for a in installs:
            if not re.search(fed, a):
                err(
                    f"stage {stage['alias']}: an apt-get install not fed by sed … {dest} | xargs"
                )
            pieces = a.split("apt-get install")
            for before, after in itertools.pairwise(pieces):
                if not before.rstrip().endswith("xargs"):
                    err(
                        f"stage {stage['alias']}: an apt-get install not fed from the list"
                    )
                command = re.split(r"&&|\|\||;|\|", after)[0]
                literal = [w for w in command.split() if not w.startswith("-")]
                if literal:
                    err(
                        f"stage {stage['alias']}: packages named outside the list: {literal}"
                    )

    if len(stages) >= 2:
        stage_checks(stages[0], "build")
        rt = stages[-1]
        stage_checks(rt, "runtime")
        ins = rt["instrs"]
        users = [a for o, a in ins if o == "USER"]
        if not users or users[-1].split(":")[0] != "2000":
            err(f"runtime USER is {users[-1] if users else 'unset (root)'}, not 2000")
        if not any(o == "EXPOSE" and "8080" in a.split() for o, a in ins):
            err("no EXPOSE 8080")
        hc = [a for o, a in ins if o == "HEALTHCHECK"]
        if not hc or "/healthz" not in hc[-1] or hc[-1].strip().upper() == "NONE":
            err("no HEALTHCHECK on /healthz")
        env = {}
        for o, a in ins:
            if o == "ENV":
                for kv in shlex.split(a):
                    k, _, v = kv.partition("=")
                    env[k] = v
        for k in env:
            if not k.startswith("LAZYCACHE_"):
                err(f"ENV {k}: configuration is by LAZYCACHE_* variables only")
        if "LAZYCACHE_PORT" in env:
            err("ENV LAZYCACHE_PORT would override Cloud Run's PORT")
        cache = env.get("LAZYCACHE_CACHE_DIR")
        if not cache:
            err(
                "LAZYCACHE_CACHE_DIR is not set: the cache location would depend on $HOME/XDG"
            )
        vols = []
        for o, a in ins:
            if o == "VOLUME":
                vols += json.loads(a) if a.startswith("[") else a.split()
        if not vols or cache not in vols:
            err(f"no VOLUME at the cache dir {cache} (volumes: {vols})")
        for o, a in ins:
            if o in ("CMD", "ENTRYPOINT"):
                argv = json.loads(a) if a.startswith("[") else None
                if argv is None:
                    err(
                        f"{o} in shell form: signals would go to /bin/sh, not lazycache"
                    )
                elif any(x.startswith("-") for x in argv):
                    err(f"{o} {argv}: options belong in LAZYCACHE_* variables")
        if not any(o == "COPY" and "--from=" in a for o, a in ins):
            err("runtime stage copies nothing from the build stage")

    with open(dockerignore_path) as f:
        ignore = [
            line.strip() for line in f if line.strip() and not line.startswith("#")
        ]
    for must in ("target", ".git"):
        if must not in ignore:
            err(f".dockerignore does not exclude {must}")

    finish(
        errors,
        f"{len(stages)} stages: "
        + ", ".join(s["image"] for s in stages)
        + "; USER 2000, EXPOSE 8080, HEALTHCHECK /healthz, VOLUME, lists from deploy/packages",
    )


def runtime_libraries(packages, libraries):
    """Every shared library the binary loads comes with deploy/packages/runtime.txt: from a
    listed package, from what those depend on, or from Debian's required base."""
    listed = set(packages.split())
    libs = libraries.split()
    closure = set(listed)
    out = run_text(
        "apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *sorted(listed),
    )  # fmt: skip
    for line in out.splitlines():
        s = line.strip()
        if s.startswith(("Depends:", "PreDepends:")):
            closure.add(s.split(":", 1)[1].strip().strip("<>").split(":")[0])
        elif s and not line.startswith(" "):
            closure.add(s.split(":")[0])
    bad = []
    for pkg in sorted(listed):
        if (
            subprocess.run(
                ["apt-cache", "show", pkg], check=False, capture_output=True
            ).returncode
            != 0
        ):
            bad.append(f"runtime.txt: {pkg} is not a Debian package apt knows")
    for lib in libs:
        owner = ""
        for cand in (
            lib,
            lib.replace("/usr/lib/", "/lib/", 1),
            lib.replace("/lib/", "/usr/lib/", 1),
        ):
            o = run_text("dpkg-query", "-S", cand).strip()
            if o:
                owner = o.split(":")[0]
                break
        if not owner:
            bad.append(f"{lib}: no Debian package owns it")
            continue
        prio = run_text("dpkg-query", "-W", "-f=${Priority}", owner).strip()
        if owner not in closure and prio != "required":
            bad.append(f"{lib}: from {owner}, which runtime.txt does not bring")
    finish(
        bad,
        f"{len(libs)} shared libraries of lazycache, all from runtime.txt ({len(listed)} "
        f"packages, {len(closure)} with dependencies) or Debian's required base",
    )


def healthcheck_command(dockerfile_path):
    """The Dockerfile's HEALTHCHECK command, run for real against a loopback server: healthy
    on 200 (port from LAZYCACHE_PORT, or Cloud Run's PORT), unhealthy on 503 and on a closed
    port."""
    text = read(dockerfile_path).replace("\\\n", " ")
    m = re.search(r"^HEALTHCHECK\b.*?\bCMD\s+(\[.*\])\s*$", text, re.MULTILINE)
    if not m:
        finish(["no HEALTHCHECK ... CMD [...] in exec form"], "")
    argv = json.loads(m.group(1))
    status = {"code": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            code = status["code"] if self.path == "/healthz" else 404
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    base = {k: v for k, v in os.environ.items() if k not in ("LAZYCACHE_PORT", "PORT")}

    def rc(env):
        run = subprocess.run(
            argv, check=False, env={**base, **env}, timeout=10, capture_output=True
        )
        return run.returncode

    errors = []
    if rc({"LAZYCACHE_PORT": str(port)}) != 0:
        errors.append("200 on LAZYCACHE_PORT judged unhealthy")
    if rc({"PORT": str(port)}) != 0:
        errors.append("200 on PORT judged unhealthy")
    if rc({"LAZYCACHE_PORT": str(closed)}) == 0:
        errors.append("a closed port judged healthy")
    status["code"] = 503
    if rc({"LAZYCACHE_PORT": str(port)}) == 0:
        errors.append("503 judged healthy")
    srv.shutdown()
    finish(
        errors,
        "HEALTHCHECK command: 200 healthy (LAZYCACHE_PORT and PORT), 503 and closed port unhealthy",
    )


def cloud_init_content(cloud_config, container_unit):
    """What the cloud-config must do on COS: user uid 2000, the unit byte-for-byte as in
    deploy/systemd, the settings (mirror, GCS bucket, cache sizes), registry credentials,
    start."""
    d = yaml.safe_load(read(cloud_config))
    unit_text = read(container_unit)
    errors = []
    users = [u for u in d.get("users", []) if isinstance(u, dict)]
    if not any(u.get("uid") == 2000 for u in users):
        errors.append("no user with uid 2000")
    files = {f["path"]: f for f in d.get("write_files", [])}
    unit = files.get("/etc/systemd/system/lazycache-container.service")
    if not unit:
        errors.append("does not write /etc/systemd/system/lazycache-container.service")
    elif unit["content"] != unit_text:
        errors.append(
            "its unit differs from deploy/systemd/lazycache-container.service"
        )
    env = files.get("/etc/lazycache/env")
    keys = {}
    if env:
        for line in env["content"].splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                keys[k] = v
    for k in (
        "LAZYCACHE_MIRROR",
        "LAZYCACHE_DISK_CACHE_SIZE",
        "LAZYCACHE_MEMORY_CACHE_SIZE",
    ):
        if not keys.get(k):
            errors.append(f"/etc/lazycache/env does not set {k}")
    if not keys.get("LAZYCACHE_OBJECT_STORE", "").startswith("gs://"):
        errors.append("/etc/lazycache/env has no gs:// LAZYCACHE_OBJECT_STORE")
    if "IMAGE=" not in files.get("/etc/lazycache/container.env", {}).get("content", ""):
        errors.append("no /etc/lazycache/container.env with IMAGE=")
    # Secrets: never in the user-data (clear instance metadata) nor in the unit; fetched from
    # Secret Manager into a root-only file that the container reads.
    text = read(cloud_config)
    for secret in ("LAZYCACHE_API_KEY", "LAZYCACHE_CACHE_SIGNING_KEY"):
        if re.search(rf"^\s*{secret}=\S", text, re.MULTILINE) or re.search(
            rf"{secret}=\S", unit_text
        ):
            errors.append(f"{secret} has a value in the user-data or the unit")
    fetch = files.get("/etc/lazycache/fetch-secrets", {})
    if fetch.get("content") != read(
        os.path.join(REPO, "deploy", "gce", "fetch-secrets")
    ):
        errors.append(
            "/etc/lazycache/fetch-secrets differs from deploy/gce/fetch-secrets"
        )
    if fetch.get("permissions") != "0700" or fetch.get("owner") != "root:root":
        errors.append("/etc/lazycache/fetch-secrets is not root's, mode 0700")
    for needed in (
        "umask 077; touch /etc/lazycache/secrets.env",
        "ExecStartPre=-/bin/sh /etc/lazycache/fetch-secrets",
        "--env-file /etc/lazycache/secrets.env",
    ):
        if needed not in unit_text:
            errors.append(f"the unit lacks {needed}")
    cmds = [" ".join(c) if isinstance(c, list) else c for c in d.get("runcmd", [])]

    def has(*words):
        return any(all(w in c for w in words) for c in cmds)

    if not has(
        "docker-credential-gcr",
        "configure-docker",
        "DOCKER_CONFIG=/etc/lazycache/docker",
    ):
        errors.append(
            "runcmd does not configure docker-credential-gcr into /etc/lazycache/docker"
        )
    if "Environment=DOCKER_CONFIG=/etc/lazycache/docker" not in unit_text:
        errors.append(
            "the unit's DOCKER_CONFIG is not where runcmd puts the credentials"
        )
    if not has("systemctl", "daemon-reload"):
        errors.append("runcmd has no systemctl daemon-reload")
    if not has("systemctl", "enable", "--now", "lazycache-container.service"):
        errors.append("runcmd does not enable --now lazycache-container.service")
    finish(
        errors,
        f"user uid 2000, {len(files)} files (unit identical to deploy/systemd), "
        "credentials, secrets fetched into a root-only file, enable --now",
    )


def mdwe_frame(binary, clip, output):
    """`lazycache frame` of one clip under the kernel's MemoryDenyWriteExecute (PR_SET_MDWE,
    Linux 6.3+), which lazycache.service's MemoryDenyWriteExecute=yes stands for."""
    libc = ctypes.CDLL(None, use_errno=True)
    # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN; inherited by children
    if libc.prctl(65, 1, 0, 0, 0) != 0:
        print("skip: this kernel has no PR_SET_MDWE")
        return
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        sys.exit("error: MDWE set but a W+X mapping was allowed")
    except OSError:
        pass
    r = subprocess.run(
        [binary, "frame", clip, "13", "-o", output],
        check=False,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0 or not os.path.getsize(output):
        sys.exit(f"error: lazycache frame failed under MDWE: {r.stderr.strip()[-300:]}")
    print(
        f"{os.path.basename(clip)}: frame 13 decoded and encoded "
        "with writable-executable memory refused"
    )


def unit_invariants(native_unit, container_unit):
    """What the units promise beyond being valid: the native one hardened and draining
    gracefully, the container one run by docker as on COS (pull, --rm, --name, restart,
    drain, clean-up)."""

    def parse(path):
        kv = {}
        for line in read(path).replace("\\\n", " ").splitlines():
            if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
                k, _, v = line.partition("=")
                kv.setdefault(k.strip(), []).append(v.strip())
        return kv

    def seconds(v):
        m = re.fullmatch(r"(\d+)\s*(s|sec|min|m)?", v)
        return int(m.group(1)) * (60 if m.group(2) in ("min", "m") else 1) if m else 0

    errors = []
    n = parse(native_unit)
    want = {
        "ProtectSystem": "strict",
        "CacheDirectory": "lazycache",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "KillSignal": "SIGTERM",
        "EnvironmentFile": "/etc/lazycache/env",
        "DynamicUser": "yes",
    }
    for k, v in want.items():
        if v not in n.get(k, []):
            errors.append(f"lazycache.service: no {k}={v}")
    for k in (
        "RestrictAddressFamilies",
        "MemoryMax",
        "CapabilityBoundingSet",
        "SystemCallFilter",
    ):
        if k not in n:
            errors.append(f"lazycache.service: no {k}=")
    bound = shutdown_bound_seconds()
    if seconds(n.get("TimeoutStopSec", ["0"])[-1]) < bound + 5:
        errors.append(
            f"lazycache.service: TimeoutStopSec leaves no room for the {bound} s stop"
        )
    if not n.get("ExecStart", [""])[0].startswith("/usr/local/bin/lazycache serve"):
        errors.append(
            "lazycache.service: ExecStart is not /usr/local/bin/lazycache serve"
        )
    c = parse(container_unit)
    run = " ".join(c.get("ExecStart", []))
    for flag in (
        "docker run",
        "--rm",
        "--name lazycache",
        "--env-file /etc/lazycache/env",
        ":8080",
    ):
        if flag not in run:
            errors.append(f"lazycache-container.service: ExecStart lacks {flag}")
    if not any("docker pull" in v for v in c.get("ExecStartPre", [])):
        errors.append("lazycache-container.service: no docker pull")
    if not any("docker rm" in v for v in c.get("ExecStopPost", [])):
        errors.append("lazycache-container.service: no clean-up in ExecStopPost")
    stop = " ".join(c.get("ExecStop", []))
    m = re.search(r"docker stop (?:-t|--time|--timeout)[ =](\d+)", stop)
    if not m or int(m.group(1)) < bound + 5:
        errors.append(
            f"lazycache-container.service: docker stop gives less than the {bound} s stop"
        )
    elif seconds(c.get("TimeoutStopSec", ["0"])[-1]) <= int(m.group(1)):
        errors.append(
            "lazycache-container.service: TimeoutStopSec does not outlast docker stop"
        )
    if c.get("Restart", ["no"])[-1] not in ("always", "on-failure"):
        errors.append("lazycache-container.service: no restart policy")
    if not c.get("EnvironmentFile"):
        errors.append("lazycache-container.service: no EnvironmentFile")
    finish(
        errors,
        f"native: hardened, drain {n.get('TimeoutStopSec', ['?'])[-1]}; container: pull, "
        f"run --rm --name, stop -t {m.group(1) if m else '?'}, "
        f"Restart={c.get('Restart', ['?'])[-1]}, clean-up",
    )


def docker_commands(unit, root, sock, docker_config):
    """The docker CLI parses every docker command line of the container unit, with ${VARS}
    expanded from the unit and container.env and the env file read by --env-file. No daemon
    here, so each must get as far as "Cannot connect to the Docker daemon", never a usage or
    flag error."""
    lines = read(unit).replace("\\\n", " ").splitlines()
    env = {}

    def load_envfile(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith(("#", ";")):
                    k, _, v = line.partition("=")
                    env[k] = v

    for line in lines:
        if line.startswith("Environment="):
            for kv in shlex.split(line.split("=", 1)[1]):
                k, _, v = kv.partition("=")
                env[k] = v
        elif line.startswith("EnvironmentFile="):
            load_envfile(root + line.split("=", 1)[1].lstrip("-"))
    cmds = []
    for line in lines:
        m = re.match(r"^(Exec\w+)=[-+@!:]*(/usr/bin/docker\b.*)$", line)
        if m:
            command = re.sub(r"\$\{(\w+)\}", lambda v: env[v.group(1)], m.group(2))
            command = command.replace("/etc/lazycache/", root + "/etc/lazycache/")
            cmds.append((m.group(1), shlex.split(command)))
    errors = []
    penv = {
        **os.environ,
        "DOCKER_HOST": "unix://" + sock,
        "DOCKER_CONFIG": docker_config,
    }
    for key, argv in cmds:
        argv[0] = "docker"
        r = subprocess.run(
            argv,
            check=False,
            capture_output=True,
            text=True,
            env=penv,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        out = r.stdout + r.stderr
        if "Cannot connect to the Docker daemon" not in out or re.search(
            r"unknown (flag|shorthand)|invalid|Usage:", out
        ):
            errors.append(f"{key}: docker {' '.join(argv[1:])}\n  -> {out.strip()}")
    if not any(a[1] == "run" for _, a in cmds):
        errors.append("no docker run")
    version = run_text("docker", "--version").split(",")[0].split()[-1]
    finish(
        errors,
        f"{len(cmds)} docker commands parsed by docker {version}: "
        + ", ".join(a[1] for _, a in cmds),
    )


def cloud_run(service_yaml):
    """The Cloud Run service: port, probes, env, gen2."""
    d = yaml.safe_load(read(service_yaml))
    errors = []
    err = errors.append
    if d.get("apiVersion") != "serving.knative.dev/v1" or d.get("kind") != "Service":
        err("not a serving.knative.dev/v1 Service")
    t = d["spec"]["template"]
    ann = t["metadata"]["annotations"]
    if ann.get("run.googleapis.com/execution-environment") != "gen2":
        err("not gen2")
    spec = t["spec"]
    if (
        not isinstance(spec.get("containerConcurrency"), int)
        or spec["containerConcurrency"] < 1
    ):
        err("containerConcurrency is not a positive integer")
    (c,) = spec["containers"]
    ports = c.get("ports", [])
    if [p.get("containerPort") for p in ports] != [8080]:
        err(f"containerPort is not 8080: {ports}")
    lim = c.get("resources", {}).get("limits", {})
    if "memory" not in lim or "cpu" not in lim:
        err("no cpu and memory limits")

    def probe(name, path):
        p = c.get(name, {}).get("httpGet", {})
        if p.get("path") != path or p.get("port", 8080) != 8080:
            err(f"{name} is not httpGet {path} on 8080: {p}")

    probe("startupProbe", "/readyz")
    probe("livenessProbe", "/healthz")
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    for secret in ("LAZYCACHE_API_KEY", "LAZYCACHE_CACHE_SIGNING_KEY"):
        (entry,) = [e for e in c.get("env", []) if e["name"] == secret] or [{}]
        ref = entry.get("valueFrom", {}).get("secretKeyRef", {})
        if "value" in entry or not ref.get("name") or not ref.get("key"):
            err(f"{secret} is not taken from Secret Manager (valueFrom.secretKeyRef)")
    if not str(env.get("LAZYCACHE_OBJECT_STORE", "")).startswith("gs://"):
        err("no gs:// LAZYCACHE_OBJECT_STORE")
    if not env.get("LAZYCACHE_MIRROR"):
        err("no LAZYCACHE_MIRROR")
    for k in env:
        if not k.startswith("LAZYCACHE_"):
            err(f"env {k}: settings are LAZYCACHE_* only")
    if "LAZYCACHE_PORT" in env or "PORT" in env:
        err("PORT is Cloud Run's (reserved); LAZYCACHE_PORT would ignore it")
    finish(
        errors,
        f"gen2, containerPort 8080, concurrency {spec.get('containerConcurrency')}, "
        f"limits {lim}, startup /readyz, liveness /healthz, {len(env)} LAZYCACHE_* env, "
        "API and signing keys from Secret Manager",
    )


def cloud_run_rendered(rendered_yaml):
    """deploy/cloudrun/deploy --dry-run fills in project, bucket and image."""
    text = read(rendered_yaml)
    d = yaml.safe_load(text)
    spec = d["spec"]["template"]["spec"]
    c = spec["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    errors = []
    if "your-project" in text or "your-bucket" in text:
        errors.append("placeholders left")
    if c["image"] != "example.org/lazycache:1":
        errors.append(f"image is {c['image']}")
    if env.get("LAZYCACHE_OBJECT_STORE") != "gs://test-bucket/lazycache":
        errors.append(f"LAZYCACHE_OBJECT_STORE is {env.get('LAZYCACHE_OBJECT_STORE')}")
    if not spec.get("serviceAccountName", "").endswith(
        "@test-project.iam.gserviceaccount.com"
    ):
        errors.append(f"serviceAccountName is {spec.get('serviceAccountName')}")
    finish(errors, "deploy --dry-run fills in project, bucket and image")


# SPEC §2's settings: each must be documented in deploy/README.md and deploy/lazycache.env,
# and be an option of the binary.
SPEC_SETTINGS = [
    "LAZYCACHE_" + name
    for name in [
        "BIND",
        "PORT",
        "MIRROR",
        "CACHE_DIR",
        "DISK_CACHE_SIZE",
        "MEMORY_CACHE_SIZE",
        "OBJECT_STORE",
        "ALLOW_RAW_OUTPUT",
        "PUBLIC",
        "FILE_OVERLAY",
        "FILE_OVERLAY_FLATTEN",
        "MAX_CONCURRENT_DECODES",
        "LISTING_TTL",
        "API_KEY",
        "CACHE_SIGNING_KEY",
        "DECODE_TIMEOUT",
        "ORIGIN_CONCURRENCY",
    ]
]

# Every file of the bundle that may name a LAZYCACHE_* variable.
BUNDLE_FILES = [
    "deploy/Dockerfile",
    "deploy/lazycache.env",
    "deploy/container.env",
    "deploy/README.md",
    "deploy/gce/README.md",
    "deploy/cloudrun/service.yaml",
    "cloud-init/lazycache.yaml",
    "deploy/systemd/lazycache.service",
    "deploy/systemd/lazycache-container.service",
]


def binary_options(binary):
    """The binary's options, as `lazycache serve --print-options` lists them: (flag,
    variable, config file key) per line, tab-separated."""
    out = subprocess.run(
        [binary, "serve", "--print-options"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if out.returncode != 0:
        sys.exit(f"error: {binary} serve --print-options failed: {out.stderr.strip()}")
    rows = [line.split("\t") for line in out.stdout.splitlines() if line.strip()]
    if not rows or any(len(row) != 3 for row in rows):
        sys.exit(
            f"error: {binary} serve --print-options: not three columns:\n{out.stdout}"
        )
    return rows


def settings_names(binary):
    """Every setting of SPEC §2 is an option of the binary and is documented, and every
    LAZYCACHE_* name used anywhere in the bundle is one the binary reads (a misspelt variable
    would be silently ignored). The binary lists its own options: nothing here is scraped
    from the source."""
    known = {variable for _, variable, _ in binary_options(binary) if variable != "-"}
    errors = []
    for name in SPEC_SETTINGS:
        if name not in known:
            errors.append(f"{name} (SPEC §2) is not an option of {binary}")
    for doc in ("deploy/README.md", "deploy/lazycache.env"):
        text = read(doc)
        for name in SPEC_SETTINGS:
            if not re.search(re.escape(name) + r"\b", text):
                errors.append(f"{doc} does not mention {name}")
    for path in BUNDLE_FILES:
        for name in sorted(set(re.findall(r"\bLAZYCACHE_[A-Z0-9_]+", read(path)))):
            if name not in known:
                errors.append(f"{path}: {name} is not a lazycache setting")
    finish(
        errors,
        f"{len(SPEC_SETTINGS)} SPEC settings documented; no unknown LAZYCACHE_* names "
        f"({len(known)} known to the binary) in {len(BUNDLE_FILES)} files",
    )


CHECKS = {
    "dockerfile": dockerfile,
    "runtime-libraries": runtime_libraries,
    "healthcheck-command": healthcheck_command,
    "cloud-init-content": cloud_init_content,
    "mdwe-frame": mdwe_frame,
    "unit-invariants": unit_invariants,
    "docker-commands": docker_commands,
    "cloud-run": cloud_run,
    "cloud-run-rendered": cloud_run_rendered,
    "settings-names": settings_names,
}


def main(argv):
    if len(argv) < 2 or argv[1] not in CHECKS:
        sys.exit(f"usage: {argv[0]} {{{'|'.join(CHECKS)}}} ARGS...")
    CHECKS[argv[1]](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
