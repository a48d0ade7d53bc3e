"""Static validation of the deployable fleet (issue: deployable fleet).

Docker does not run in CI, so docker-compose.yml, the Dockerfile, the
Prometheus files and config/docker.conf are checked by reading them:

  * every compose service has an image or a build; build contexts,
    Dockerfiles, bind-mounted files and env files exist in the repository;
  * depends_on names existing services, with valid conditions;
  * the worker service can be scaled (no container_name, no host port);
  * every port another component uses (Prometheus targets, health checks,
    the worker config's Kafka/Redis/mockllm addresses) is a port the service
    listens on: the admin port comes from config/docker.conf as the real
    config loader reads it after the compose --set overrides
    (test_deploy_config in check mode), mockllm's from its --port flag,
    Kafka's from KAFKA_LISTENERS, Redis's from its --port;
  * Prometheus rule files parse, are mounted, and every modelgw_* metric they
    use exists in src/admin/metrics.h;
  * the Dockerfile: stages, COPY sources exist and are not excluded by
    .dockerignore, non-root USER, HEALTHCHECK and EXPOSE on the admin port,
    Debian packages that exist in bookworm (checked with apt-cache when this
    machine is bookworm) and cover every pkg-config module CMakeLists.txt needs.

`docker compose config -q` runs too when a docker CLI with the compose plugin
is installed; it is never required.
"""

import fnmatch
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import urllib.parse

import pytest
import yaml

ROOT = pathlib.Path(
    os.environ.get("MODELGW_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2])
)
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
METRICS_H = ROOT / "src/admin/metrics.h"
CMAKELISTS = ROOT / "CMakeLists.txt"
DOCKER_CONF = ROOT / "config/docker.conf"
VALID_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}

# --- helpers -----------------------------------------------------------------

_INTERP = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value):
    """Compose variable interpolation with every variable unset: defaults apply."""
    if not isinstance(value, str):
        return value

    def repl(m):
        op, default = m.group(2), m.group(3)
        if op in (":-", "-"):
            return default
        if op in (":?", "?"):
            pytest.fail(f"compose requires variable {m.group(1)}: {default}")
        return ""

    return _INTERP.sub(repl, value).replace("$$", "$")


def listify(cmd):
    if cmd is None:
        return []
    if isinstance(cmd, str):
        return shlex.split(interpolate(cmd))
    return [interpolate(str(c)) for c in cmd]


def flag_value(args, flag, default=None):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return default


def http_ports(text):
    """(host, port) of every http:// URL in a string."""
    out = []
    for m in re.finditer(r"https?://[^\s\"']+", text):
        u = urllib.parse.urlsplit(m.group(0))
        out.append((u.hostname, u.port or (443 if u.scheme == "https" else 80)))
    return out


def healthcheck_text(svc):
    hc = svc.get("healthcheck") or {}
    test = hc.get("test")
    if isinstance(test, list):
        return " ".join(listify(test[1:] if test and test[0] in ("CMD", "CMD-SHELL") else test))
    return interpolate(test or "")


@pytest.fixture(scope="module")
def compose():
    with open(COMPOSE) as f:
        doc = yaml.safe_load(f)
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict), "no services"
    return doc


@pytest.fixture(scope="module")
def services(compose):
    return compose["services"]


def metric_families():
    """{name: type} from the GW_METRIC_MAP rows of src/admin/metrics.h."""
    text = METRICS_H.read_text()
    rows = re.findall(r'X\(\s*\w+\s*,\s*"([a-z_:][a-z0-9_:]*)"\s*,\s*(COUNTER|GAUGE|HISTOGRAM)', text)
    assert rows, f"no metric rows found in {METRICS_H}"
    return dict(rows)


# --- the Dockerfile ----------------------------------------------------------


def dockerfile_instructions(path=DOCKERFILE):
    """[(INSTRUCTION, argument text)] with continuations joined, comments dropped."""
    out, cur = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not cur and (not line or line.startswith("#")):
            continue
        if cur and line.startswith("#"):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        word, _, rest = cur.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    assert not cur, "Dockerfile ends inside a continued line"
    return out


def substitute(text, env):
    return re.sub(
        r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), m.group(0)), text
    )


def parse_dockerfile():
    """Stages with their instructions, global ARG defaults applied."""
    args, stages = {}, []
    for ins, rest in dockerfile_instructions():
        if ins == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip().strip('"')
            continue
        if ins == "FROM":
            parts = substitute(rest, args).split()
            image = parts[0]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append({"image": image, "name": name, "ins": [], "env": {}})
            continue
        assert stages, f"{ins} before the first FROM"
        stage = stages[-1]
        if ins == "ENV":
            for m in re.finditer(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)', rest):
                stage["env"][m.group(1)] = m.group(2).strip('"')
        stage["ins"].append((ins, rest))
    return stages


def copy_args(rest):
    if rest.startswith("["):
        import json

        parts = json.loads(rest)
        flags = []
    else:
        parts = rest.split()
        flags = [p for p in parts if p.startswith("--")]
        parts = [p for p in parts if not p.startswith("--")]
    return flags, parts[:-1], parts[-1]


def dockerignore_patterns():
    if not DOCKERIGNORE.exists():
        return []
    pats = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            pats.append(line.rstrip("/"))
    return pats


def ignored(rel, patterns):
    """True when rel (a path in the build context) is excluded (no ! rules used)."""
    assert not any(p.startswith("!") for p in patterns), "extend ignored() for ! rules"
    parts = pathlib.PurePosixPath(rel).parts
    for p in patterns:
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if fnmatch.fnmatch(prefix, p) or (
                p.startswith("**/") and fnmatch.fnmatch(parts[i - 1], p[3:])
            ):
                return True
    return False


def apt_packages(stage):
    pkgs = []
    for ins, rest in stage["ins"]:
        if ins != "RUN":
            continue
        for cmd in re.split(r"&&|;", rest):
            words = cmd.split()
            if "apt-get" in words and "install" in words:
                after = words[words.index("install") + 1 :]
                pkgs += [w for w in after if not w.startswith("-") and "=" not in w]
    return pkgs


def test_dockerfile_stages_and_user():
    stages = parse_dockerfile()
    assert len(stages) >= 2, "multi-stage build expected"
    for s in stages:
        assert s["image"].startswith("debian:bookworm"), s["image"]
    final = stages[-1]
    users = [rest for ins, rest in final["ins"] if ins == "USER"]
    assert users, "the runtime stage must set USER"
    assert users[-1].split(":")[0] not in ("root", "0"), "the worker must not run as root"
    names = {s["name"] for s in stages if s["name"]}
    for s in stages:
        for ins, rest in s["ins"]:
            if ins == "COPY":
                for f in copy_args(rest)[0]:
                    if f.startswith("--from="):
                        assert f[7:] in names, f"COPY {f} names no earlier stage"
    kinds = [ins for ins, _ in final["ins"]]
    assert "ENTRYPOINT" in kinds or "CMD" in kinds


def test_dockerfile_copy_sources_exist_and_are_in_context():
    patterns = dockerignore_patterns()
    checked = 0
    for stage in parse_dockerfile():
        for ins, rest in stage["ins"]:
            if ins not in ("COPY", "ADD"):
                continue
            flags, sources, _dest = copy_args(rest)
            if any(f.startswith("--from=") for f in flags):
                continue
            for src in sources:
                src = src.rstrip("/") or "."
                matches = list(ROOT.glob(src)) if any(c in src for c in "*?[") else [ROOT / src]
                assert matches and all(m.exists() for m in matches), f"COPY source {src} missing"
                for m in matches:
                    rel = m.relative_to(ROOT).as_posix()
                    assert not ignored(rel, patterns), f"COPY source {rel} excluded by .dockerignore"
                checked += 1
    assert checked >= 4


def test_dockerfile_health_and_port_are_the_admin_port(admin_settings):
    final = parse_dockerfile()[-1]
    port = admin_settings["admin.port"]
    exposed = {
        int(p.split("/")[0])
        for ins, rest in final["ins"]
        if ins == "EXPOSE"
        for p in substitute(rest, final["env"]).split()
    }
    assert port in exposed, f"EXPOSE {exposed} lacks the admin port {port}"
    hcs = [rest for ins, rest in final["ins"] if ins == "HEALTHCHECK"]
    assert hcs, "no HEALTHCHECK"
    urls = http_ports(substitute(hcs[-1], final["env"]))
    assert urls, f"HEALTHCHECK queries no URL: {hcs[-1]}"
    for host, p in urls:
        assert host in ("127.0.0.1", "localhost") and p == port, (host, p)
    assert "/health" in hcs[-1]


def test_dockerfile_packages_exist_and_cover_the_build():
    stages = parse_dockerfile()
    build_pkgs, run_pkgs = apt_packages(stages[0]), apt_packages(stages[-1])
    assert build_pkgs and run_pkgs
    assert not any(p.endswith("-dev") for p in run_pkgs), "runtime stage installs -dev packages"
    release = pathlib.Path("/etc/os-release")
    on_bookworm = release.exists() and "VERSION_CODENAME=bookworm" in release.read_text()
    if not (on_bookworm and shutil.which("apt-cache") and shutil.which("dpkg-query")):
        return  # the names are checked against the archive on a bookworm machine only
    wanted = sorted(set(build_pkgs + run_pkgs))
    r = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", *wanted], capture_output=True, text=True
    )
    known = set(re.findall(r"^Package: (\S+)$", r.stdout, re.M))
    missing = [p for p in wanted if p not in known]
    assert not missing, f"not in this bookworm's archive: {missing}"
    # Every pkg-config module CMakeLists.txt requires, by the -dev package owning its .pc.
    text = CMAKELISTS.read_text()
    modules = []
    for m in re.finditer(r"pkg_check_modules\(\s*\w+\s+REQUIRED(?:\s+IMPORTED_TARGET)?([^)]*)\)", text):
        modules += m.group(1).split()
    assert "rdkafka" in modules
    for mod in modules:
        pcdir = subprocess.run(
            ["pkg-config", "--variable=pcfiledir", mod], capture_output=True, text=True
        ).stdout.strip()
        assert pcdir, f"pkg-config module {mod} not installed here"
        owner = subprocess.run(
            ["dpkg-query", "-S", f"{pcdir}/{mod}.pc"], capture_output=True, text=True
        ).stdout
        pkg = owner.split(":")[0].strip()
        assert pkg in build_pkgs, f"{mod}.pc comes from {pkg}, not installed in the build stage"
        # ...and the runtime stage has the library that -dev package depends on.
        deps = subprocess.run(
            ["dpkg-query", "-W", "-f=${Depends}", pkg], capture_output=True, text=True
        ).stdout
        dep_names = {d.strip().split()[0].split(":")[0] for d in re.split(r"[,|]", deps) if d.strip()}
        libs = {d for d in dep_names if d.startswith("lib") and not d.endswith("-dev")}
        if mod == "cmocka":
            continue  # tests only: not linked into the shipped programs
        assert libs & set(run_pkgs), f"runtime stage lacks the library of {pkg} (one of {libs})"


# --- docker-compose.yml ------------------------------------------------------


def test_every_service_has_image_or_build(services):
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, f"service {name} has neither image nor build"


def test_build_contexts_and_dockerfiles_exist(services):
    seen = 0
    for name, svc in services.items():
        build = svc.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        ctx = ROOT / interpolate(build.get("context", "."))
        assert ctx.is_dir(), f"{name}: build context {ctx} missing"
        df = ctx / interpolate(build.get("dockerfile", "Dockerfile"))
        assert df.is_file(), f"{name}: Dockerfile {df} missing"
        seen += 1
    assert seen >= 1


def bind_mounts(svc):
    """(host path, container path) of every bind mount; named volumes yield (None, path)."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            src, dst, kind = v.get("source"), v.get("target"), v.get("type", "volume")
            out.append((interpolate(src) if kind == "bind" else None, dst, src))
            continue
        parts = interpolate(v).split(":")
        if len(parts) == 1:
            out.append((None, parts[0], None))
        elif parts[0].startswith((".", "/", "~")):
            out.append((parts[0], parts[1], parts[0]))
        else:
            out.append((None, parts[1], parts[0]))
    return out


def test_mounted_files_exist(compose, services):
    named = set((compose.get("volumes") or {}).keys())
    for name, svc in services.items():
        for host, _dst, src in bind_mounts(svc):
            if host is None:
                if src is not None:
                    assert src in named, f"{name}: volume {src} not declared"
                continue
            assert not host.startswith("/"), f"{name}: absolute host path {host}"
            assert (ROOT / host).exists(), f"{name}: mounted {host} missing"
        for env_file in listify(svc.get("env_file")):
            assert (ROOT / env_file).exists(), f"{name}: env_file {env_file} missing"


def test_depends_on_targets_exist(services):
    for name, svc in services.items():
        deps = svc.get("depends_on") or []
        items = deps.items() if isinstance(deps, dict) else [(d, {}) for d in deps]
        for target, spec in items:
            assert target in services, f"{name} depends on unknown service {target}"
            assert target != name
            cond = (spec or {}).get("condition", "service_started")
            assert cond in VALID_CONDITIONS, f"{name} -> {target}: condition {cond}"
            if cond == "service_healthy":
                t = services[target]
                has_hc = "healthcheck" in t or "build" in t  # a built image has HEALTHCHECK
                assert has_hc, f"{name} waits for {target} to be healthy; it has no healthcheck"
            if cond == "service_completed_successfully":
                assert str(services[target].get("restart", "no")) == "no", target


def test_worker_is_scalable(services):
    w = services.get("worker")
    assert w is not None, "no worker service"
    assert "container_name" not in w, "container_name prevents --scale"
    assert "hostname" not in w
    for p in w.get("ports") or []:
        spec = p if isinstance(p, str) else str(p.get("published", ""))
        if isinstance(p, dict):
            assert not p.get("published"), f"worker publishes host port {p}"
        else:
            assert ":" not in spec, f"worker publishes fixed host port {spec}"
    replicas = ((w.get("deploy") or {}).get("replicas"))
    assert replicas is None or int(interpolate(str(replicas))) >= 1


# --- ports: who listens where ------------------------------------------------


@pytest.fixture(scope="module")
def worker_set_args(services):
    args = listify(services["worker"].get("command"))
    return args


@pytest.fixture(scope="module")
def admin_settings(services, worker_set_args, binary):
    """Effective worker settings: config/docker.conf + compose --set, via the real loader."""
    args = worker_set_args
    conf = flag_value(args, "--config") or flag_value(args, "-c")
    assert conf, "worker command names no --config"
    # The container path must be the mount of config/docker.conf.
    mounts = {dst: host for host, dst, _ in bind_mounts(services["worker"]) if host}
    host = mounts.get(conf)
    if host is None:
        image_conf = any(
            ins == "COPY" and "config/docker.conf" in rest and conf.startswith("/etc/modelgw")
            for ins, rest in parse_dockerfile()[-1]["ins"]
        )
        assert image_conf, f"{conf} is neither mounted nor copied into the image"
        host = "config/docker.conf"
    sets = []
    for i, a in enumerate(args):
        if a == "--set":
            sets += ["--set", args[i + 1]]
    r = subprocess.run(
        [str(binary("test_deploy_config")), "--file", str(ROOT / host), *sets],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, f"{host} with {sets} rejected by the config loader: {r.stderr}"
    values = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    values["admin.port"] = int(values["admin.port"])
    values["redis.port"] = int(values["redis.port"])
    return values


@pytest.fixture(scope="module")
def listen_ports(services, admin_settings):
    """{service: set of ports it listens on}."""
    ports = {}
    env = (services["kafka"].get("environment")) or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    ports["kafka"] = {
        int(m) for m in re.findall(r"://[^:,]*:(\d+)", interpolate(env["KAFKA_LISTENERS"]))
    }
    redis_args = listify(services["redis"].get("command"))
    ports["redis"] = {int(flag_value(redis_args, "--port", "6379"))}
    mock_args = listify(services["mockllm"].get("command"))
    ports["mockllm"] = {int(flag_value(mock_args, "--port", "18080"))}
    assert flag_value(mock_args, "--host") == "0.0.0.0", "mockllm must listen beyond loopback"
    ports["worker"] = {admin_settings["admin.port"]}
    prom_args = listify(services["prometheus"].get("command"))
    listen = flag_value(prom_args, "--web.listen-address", ":9090")
    ports["prometheus"] = {int(listen.rsplit(":", 1)[1])}
    return ports


def test_worker_config_addresses_match_services(admin_settings, listen_ports, services):
    assert admin_settings["admin.listen"] == "0.0.0.0", "Prometheus scrapes from another container"
    for addr in admin_settings["kafka.bootstrap"].split(","):
        host, port = addr.rsplit(":", 1)
        assert host in services and int(port) in listen_ports[host], addr
    rh, rp = admin_settings["redis.host"], admin_settings["redis.port"]
    assert rh in services and rp in listen_ports[rh], (rh, rp)
    urls = [v for k, v in admin_settings.items() if k.startswith("deployments[") and v]
    assert urls, "no deployment with a base_url"
    for url in urls:
        for host, port in http_ports(url):
            assert host in services, f"{url}: no service {host}"
            assert port in listen_ports[host], f"{url}: {host} listens on {listen_ports[host]}"


def test_worker_exposes_admin_port(services, admin_settings):
    w = services["worker"]
    exposed = {int(str(p).split("/")[0]) for p in w.get("expose") or []}
    assert not exposed or admin_settings["admin.port"] in exposed
    env = w.get("environment") or {}
    if "MODELGW_ADMIN_PORT" in env:  # used by the image's HEALTHCHECK
        assert int(interpolate(str(env["MODELGW_ADMIN_PORT"]))) == admin_settings["admin.port"]


def test_healthchecks_use_listening_ports(services, listen_ports):
    for name, svc in services.items():
        text = healthcheck_text(svc)
        for host, port in http_ports(text):
            assert host in ("127.0.0.1", "localhost", name), (name, host)
            assert port in listen_ports.get(name, set()), f"{name} health check port {port}"
        for m in re.finditer(r"--bootstrap-server\s+([\w.-]+):(\d+)", text):
            assert m.group(1) in (name, "localhost") and int(m.group(2)) in listen_ports[name]
        redis_cli = re.search(r"redis-cli.*?-p\s+(\d+)", text)
        if redis_cli:
            assert int(redis_cli.group(1)) in listen_ports[name]


def test_published_ports_are_listened_on(services, listen_ports):
    for name, svc in services.items():
        for p in svc.get("ports") or []:
            target = p.get("target") if isinstance(p, dict) else str(p).split(":")[-1]
            target = int(str(target).split("/")[0])
            assert target in listen_ports.get(name, set()), f"{name} publishes {p}"


def test_kafka_init_uses_existing_script_and_broker(services, listen_ports):
    init = services["kafka-init"]
    mounts = {dst: host for host, dst, _ in bind_mounts(init) if host}
    entry = listify(init.get("entrypoint"))
    scripts = [a for a in entry if a in mounts]
    assert scripts, f"kafka-init entrypoint {entry} runs no mounted script"
    script = (ROOT / mounts[scripts[0]]).read_text()
    for topic in ("requests.high", "requests.normal", "requests.low"):
        assert re.search(r"llm\.requests\.\$tier|llm\." + re.escape(topic), script), topic
    for topic in ("llm.responses", "llm.chunks", "llm.usage", "llm.dlq"):
        assert topic in script, topic
    env = init.get("environment") or {}
    host, port = interpolate(env.get("KAFKA_BOOTSTRAP", "kafka:9092")).rsplit(":", 1)
    assert host in services and int(port) in listen_ports[host]


# --- Prometheus --------------------------------------------------------------


def prometheus_files(services):
    mounts = {dst: host for host, dst, _ in bind_mounts(services["prometheus"]) if host}
    args = listify(services["prometheus"].get("command"))
    conf = flag_value(args, "--config.file", "/etc/prometheus/prometheus.yml")
    assert conf in mounts, f"{conf} is not mounted into prometheus"
    return mounts, ROOT / mounts[conf]


def test_prometheus_scrapes_every_worker(services, listen_ports):
    _, conf = prometheus_files(services)
    doc = yaml.safe_load(conf.read_text())
    jobs = doc.get("scrape_configs") or []
    assert jobs
    scraped_worker = False
    for job in jobs:
        for sd in job.get("dns_sd_configs") or []:
            for dns_name in sd["names"]:
                svc = dns_name[len("tasks."):] if dns_name.startswith("tasks.") else dns_name
                assert svc in services, f"dns_sd name {dns_name} is no compose service"
                assert sd.get("type", "SRV") == "A", "compose DNS has A records, not SRV"
                assert int(sd["port"]) in listen_ports[svc], f"{svc}: port {sd['port']}"
                scraped_worker |= svc == "worker"
        for sc in job.get("static_configs") or []:
            for target in sc.get("targets") or []:
                host, port = target.rsplit(":", 1)
                svc = "prometheus" if host in ("localhost", "127.0.0.1") else host
                assert svc in services, f"target {target}: no service {svc}"
                assert int(port) in listen_ports.get(svc, set()), f"target {target}"
    assert scraped_worker, "no scrape job discovers the worker replicas"


def test_alert_rules_parse_and_use_real_metrics(services):
    mounts, conf = prometheus_files(services)
    doc = yaml.safe_load(conf.read_text())
    families = metric_families()
    rule_files = doc.get("rule_files") or []
    assert rule_files, "no rule_files"
    used = set()
    for rf in rule_files:
        assert rf in mounts, f"rule file {rf} is not mounted"
        rules_doc = yaml.safe_load((ROOT / mounts[rf]).read_text())
        groups = rules_doc.get("groups")
        assert groups
        for g in groups:
            assert g.get("name") and g.get("rules"), g
            for r in g["rules"]:
                assert r.get("alert") and r.get("expr"), r
                assert r.get("labels", {}).get("severity"), f"{r['alert']}: no severity"
                assert r.get("annotations", {}).get("summary"), f"{r['alert']}: no summary"
                expr = str(r["expr"])
                assert expr.count("(") == expr.count(")"), f"{r['alert']}: unbalanced"
                names = re.findall(r"\bmodelgw_[a-z0-9_]+", expr)
                assert names or re.search(r"\bup\b", expr), f"{r['alert']} uses no metric"
                for n in names:
                    base = n
                    for suffix in ("_bucket", "_sum", "_count"):
                        if n.endswith(suffix) and n[: -len(suffix)] in families:
                            base = n[: -len(suffix)]
                            assert families[base] == "HISTOGRAM", f"{n}: {base} is no histogram"
                    assert base in families, f"{r['alert']}: metric {n} not in {METRICS_H.name}"
                    used.add(base)
    # The signals the operations guide calls essential are alerted on.
    for needed in (
        "modelgw_requests_total",
        "modelgw_breaker_state",
        "modelgw_consumer_lag_messages",
        "modelgw_redis_fallbacks_total",
        "modelgw_dlq_messages_total",
    ):
        assert needed in used, f"no alert uses {needed}"


def test_operations_doc_lists_every_metric():
    doc = ROOT / "docs/operations.md"
    assert doc.is_file(), "docs/operations.md missing"
    text = doc.read_text()
    for name in metric_families():
        assert name in text, f"docs/operations.md does not explain {name}"


# --- optional: the real compose parser ---------------------------------------


def test_docker_compose_config_when_available():
    docker = shutil.which("docker")
    if docker is None:
        return
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        return  # a docker CLI without the compose plugin
    r = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
