"""The operations kit in deploy/ (docs/operations.md, "Kubernetes" and
"Grafana"), checked by reading it and against a real worker.

Kubernetes manifests (deploy/kubernetes/*.yaml, parsed with PyYAML; no
cluster runs here):
  * every document has apiVersion, kind and metadata.name; the kustomization
    lists exactly the manifest files;
  * the Deployment's selector matches its pod labels, the PodDisruptionBudget
    selects the same pods, the ScaledObject targets the Deployment;
  * the probes: liveness and startup on /health, readiness on /ready, on the
    container port that the ConfigMap's worker config listens on (the config
    is loaded by the real loader: test_deploy_config --file, and must bind
    beyond loopback);
  * the ConfigMap's config: topics, group and drain timeout agree with the
    KEDA triggers (one kafka trigger per request topic, the consumer group)
    and with terminationGracePeriodSeconds;
  * maxReplicaCount is no more than the largest request-topic partition
    count in deploy/kafka/create-topics.sh (KEDA's kafka scaler caps each
    trigger there anyway; with more workers than partitions in all request
    topics together a worker holds none and is never ready);
  * secrets come from secretKeyRef, never a literal value.

Grafana dashboard (deploy/grafana/modelgw-dashboard.json): every query
names only metrics that a real worker's /metrics exposes (a worker on the
real Kafka, a few requests through modelgw-mockllm, then one scrape), with
the suffixes of their type (_bucket only on histograms), and groups or
filters only by labels the metric has (or job, which Prometheus adds).
"""

import json
import os
import pathlib
import re
import subprocess
import urllib.request

import pytest
import yaml

from fleet import MockLLM, Tail, fleet, free_port, make_request, openai_deployment  # noqa: F401

ROOT = pathlib.Path(
    os.environ.get("MODELGW_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2])
)
K8S = ROOT / "deploy/kubernetes"
DASHBOARD = ROOT / "deploy/grafana/modelgw-dashboard.json"
METRICS_H = ROOT / "src/admin/metrics.h"
TOPICS_SH = ROOT / "deploy/kafka/create-topics.sh"


def manifests():
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None:
                continue
            assert {"apiVersion", "kind", "metadata"} <= set(doc), f"{path.name}: {doc}"
            assert doc["metadata"].get("name"), path.name
            docs.setdefault(doc["kind"], []).append(doc)
    return docs


def one(docs, kind):
    assert len(docs.get(kind, [])) == 1, f"want exactly one {kind}: {list(docs)}"
    return docs[kind][0]


def loaded_config(binary, tmp_path, text):
    """The ConfigMap's config through the real loader (exit 0 or the error)."""
    conf = tmp_path / "k8s.conf"
    conf.write_text(text)
    res = subprocess.run([str(binary("test_deploy_config")), "--file", str(conf)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, f"the ConfigMap's config does not load: {res.stderr}"
    return dict(line.split("=", 1) for line in res.stdout.splitlines())


def libconfig_value(text, group, key):
    """A scalar of a top-level group, read from the text (the loader already accepted it)."""
    m = re.search(r"^\s*%s\s*:\s*\{(.*?)^\s*\};" % re.escape(group), text, re.S | re.M)
    assert m, f"no group {group}"
    v = re.search(r"^\s*%s\s*=\s*(\"[^\"]*\"|[0-9.]+)\s*;" % re.escape(key), m.group(1), re.M)
    assert v, f"no {group}.{key}"
    return v.group(1).strip('"')


def request_partitions():
    """{tier: default partition count} from create-topics.sh."""
    text = TOPICS_SH.read_text()
    return {t: int(n) for t, n in re.findall(r"(high|normal|low)\) parts=\"\$\{[A-Z_]+:-(\d+)\}\"",
                                              text)}


def test_kubernetes_manifests(binary, tmp_path):
    docs = manifests()
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kust["resources"]) == sorted(
        p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")

    dep = one(docs, "Deployment")
    cm = one(docs, "ConfigMap")
    pdb = one(docs, "PodDisruptionBudget")
    so = one(docs, "ScaledObject")
    assert dep["apiVersion"] == "apps/v1" and pdb["apiVersion"] == "policy/v1"
    assert so["apiVersion"] == "keda.sh/v1alpha1"

    spec = dep["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    sel = spec["selector"]["matchLabels"]
    assert sel and all(pod_labels.get(k) == v for k, v in sel.items())
    assert pdb["spec"]["selector"]["matchLabels"] == sel
    assert ("maxUnavailable" in pdb["spec"]) != ("minAvailable" in pdb["spec"])
    target = so["spec"]["scaleTargetRef"]
    assert target["name"] == dep["metadata"]["name"] and target.get("kind", "Deployment") == \
        "Deployment"

    # The worker config in the ConfigMap, as the worker will read it.
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    mount = next(m for m in c["volumeMounts"]
                 if any(v["name"] == m["name"] and v.get("configMap", {}).get("name")
                        == cm["metadata"]["name"] for v in pod["volumes"]))
    conf_args = c["args"]
    conf_path = conf_args[conf_args.index("--config") + 1]
    assert conf_path.startswith(mount["mountPath"] + "/")
    conf_key = conf_path[len(mount["mountPath"]) + 1:]
    text = cm["data"][conf_key]
    eff = loaded_config(binary, tmp_path, text)
    assert eff["admin.listen"] not in ("127.0.0.1", "localhost"), "probes could not reach it"
    admin_port = int(eff["admin.port"])
    assert admin_port > 0

    # Probes on the admin port.
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    def probe_port(p):
        port = p["httpGet"]["port"]
        return ports[port] if isinstance(port, str) else port
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["startupProbe"]["httpGet"]["path"] == "/health"
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert probe_port(c[kind]) == admin_port, kind
    ann = spec["template"]["metadata"].get("annotations", {})
    assert int(ann["prometheus.io/port"]) == admin_port

    # Shutdown: the drain fits in the grace period.
    drain_ms = int(libconfig_value(text, "worker", "drain_timeout_ms"))
    assert pod["terminationGracePeriodSeconds"] * 1000 > drain_ms + 5000

    # Secrets only by reference.
    for e in c.get("env", []):
        assert "value" not in e or not re.search(r"KEY|PASSWORD|TOKEN", e["name"]), e
    assert eff["kafka.bootstrap"]

    # KEDA: one kafka trigger per request topic, on the worker's group.
    group = libconfig_value(text, "kafka", "group_id")
    topics = {libconfig_value(text, "topics", t) for t in ("high", "normal", "low")}
    triggers = so["spec"]["triggers"]
    assert all(t["type"] == "kafka" for t in triggers)
    assert {t["metadata"]["topic"] for t in triggers} == topics
    for t in triggers:
        md = t["metadata"]
        assert md["consumerGroup"] == group
        assert md["bootstrapServers"] == eff["kafka.bootstrap"]
        assert int(md["lagThreshold"]) > 0
    parts = request_partitions()
    assert set(parts) == {"high", "normal", "low"}
    assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"]
    assert so["spec"]["maxReplicaCount"] <= max(parts.values())


# ---- the dashboard against a real worker ----------------------------------------------


def declared_metrics():
    """{name: (type, {labels})} from GW_METRIC_MAP in src/admin/metrics.h."""
    text = METRICS_H.read_text().replace("\\\n", " ")
    out = {}
    # the help text may be adjacent string literals across lines
    for m in re.finditer(r'X\(\s*\w+,\s*"(\w+)",\s*(COUNTER|GAUGE|HISTOGRAM),\s*"[^"]*"(?:\s*"[^"]*")*,'
                         r'\s*(\d),\s*(NULL|"\w+"),\s*(NULL|"\w+"),\s*(NULL|"\w+")\)', text):
        labels = {x.strip('"') for x in m.group(4, 5, 6) if x != "NULL"}
        out[m.group(1)] = (m.group(2).lower(), labels)
    entries = set(re.findall(r'X\(\s*\w+,\s*"(modelgw_\w+)"', text))
    assert set(out) == entries, f"declarations this parser missed: {entries - set(out)}"
    return out


def exposed(port):
    """{family name: type} from the # TYPE lines, and {sample name: [labels]}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r"(\w+)(?:\{(.*)\})? ", line)
        labels = set(re.findall(r'(\w+)="', m.group(2) or ""))
        samples.setdefault(m.group(1), []).append(labels)
    return types, samples


def family_of(name, types):
    """The exposed family of a sample name used in a query, and the suffix."""
    if name in types:
        return name, ""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[:-len(suffix)] in types:
            return name[:-len(suffix)], suffix
    return None, None


def query_labels(expr, metric):
    """Labels a query filters metric on ({...} after it) and groups by (by (...))."""
    used = set()
    for m in re.finditer(r"\b%s\{([^}]*)\}" % re.escape(metric), expr):
        used |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", m.group(1)))
    for m in re.finditer(r"\bby\s*\(([^)]*)\)", expr):
        used |= {x.strip() for x in m.group(1).split(",") if x.strip()}
    return used


def test_dashboard_queries_name_exposed_metrics(fleet, start_process, binary):
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 15
    var_queries = [v["definition"] for v in dash["templating"]["list"] if v["type"] == "query"]

    mock = MockLLM(start_process, binary, fleet.tmp_path)
    port = free_port()
    dep = openai_deployment("dash-a", mock.url)
    w = fleet.start_worker("w0", [dep], over={"admin": {"listen": "127.0.0.1", "port": port},
                                               "cache": {"enabled": True}})
    fleet.wait_assigned([w])
    responses = Tail(fleet, "responses")
    reqs = [make_request(text="same question"), make_request(text="another", stream=True)]
    fleet.produce("normal", reqs)
    responses.wait_ids([r["request_id"] for r in reqs])
    again = make_request(text="same question")
    fleet.produce("normal", [again])
    responses.wait_ids([again["request_id"]])
    types, samples = exposed(port)
    declared = declared_metrics()
    assert w.stop() == 0, w.describe()

    named = set()
    for expr in exprs + var_queries:
        metrics = set(re.findall(r"\bmodelgw_\w+", expr))
        assert metrics, f"a query names no modelgw metric: {expr}"
        for name in metrics:
            fam, suffix = family_of(name, types)
            assert fam is not None, f"{name} is not on /metrics: {expr}"
            named.add(fam)
            kind = types[fam]
            assert suffix == "" or kind == "histogram", f"{name}: {fam} is a {kind}"
            assert kind != "histogram" or suffix or "histogram_quantile" not in expr, expr
            assert "histogram_quantile" not in expr or suffix == "_bucket", expr
            assert kind != "counter" or "rate(" in expr or "increase(" in expr, \
                f"a counter must be rated: {expr}"
            allowed = declared[fam][1] | {"job", "instance"} | ({"le"} if suffix == "_bucket"
                                                                else set())
            extra = query_labels(expr, name) - allowed
            assert not extra, f"{expr}: {fam} has no label {sorted(extra)}"
            for labels in samples.get(name, []):
                assert labels - {"le"} <= declared[fam][1], (name, labels)
    # Every family the worker exposes is on the dashboard.
    assert named == set(types) & set(declared), set(types) - named
