#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_pool (tests/fuzz/corpus/pool/) and fuzz_kubeconfig (corpus/kubeconfig/).
Run it again after a change to the pool spec, the golden files or the kubeconfig loader.

fuzz_pool seeds are one JSON text each: a GasolineWorkerPool, or [pool, live Deployment], or [desired, live] for
the comparison (pool_fuzz.cc). They come from tests/operator/unit/golden/*.pool.json and *.children.json, the
chart's charts/gasoline/examples/sample-pool.yaml, and live-object shapes: the server's status, conditions and
managedFields.
Files named regression_* are inputs the fuzzer once failed on, kept verbatim; this script leaves them alone.
"""
import copy
import glob
import json
import os

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(ROOT, "tests", "operator", "unit", "golden")
SAMPLE = os.path.join(ROOT, "charts", "gasoline", "examples", "sample-pool.yaml")
MANAGER = "gasoline-operator"


def clear(out):
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if not name.startswith("regression_"):
            os.remove(os.path.join(out, name))


def write(out, name, data):
    if not isinstance(data, (bytes, str)):
        data = json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def fields_v1(value):
    """The fieldsV1 set the API server records for an apply of `value` (lists keyed by name, else by value)."""
    if isinstance(value, dict):
        return {"f:" + k: fields_v1(v) if isinstance(v, (dict, list)) else {} for k, v in value.items()}
    if isinstance(value, list):
        out = {}
        for item in value:
            if isinstance(item, dict) and "name" in item:
                out["k:" + json.dumps({"name": item["name"]}, separators=(",", ":"))] = dict(
                    {".": {}}, **fields_v1(item))
            elif isinstance(item, dict) and "containerPort" in item:
                key = {"containerPort": item["containerPort"], "protocol": item.get("protocol", "TCP")}
                out["k:" + json.dumps(key, separators=(",", ":"))] = dict({".": {}}, **fields_v1(item))
            elif not isinstance(item, (dict, list)):
                out["v:" + json.dumps(item)] = {}
        return out
    return {}


def live(desired, generation=3):
    """desired as the API server returns it: server-set metadata, managedFields, defaults, status."""
    obj = copy.deepcopy(desired)
    meta = obj.setdefault("metadata", {})
    meta.update({"uid": "0f3c5a8e-0000-4000-8000-000000000001", "resourceVersion": "4711", "generation": generation,
                 "creationTimestamp": "2025-12-31T23:00:00Z"})
    meta["managedFields"] = [{"manager": MANAGER, "operation": "Apply", "apiVersion": desired.get("apiVersion", "v1"),
                              "time": "2025-12-31T23:00:00Z", "fieldsType": "FieldsV1",
                              "fieldsV1": fields_v1({k: v for k, v in desired.items() if k in ("metadata", "spec")})},
                             {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
                              "time": "2025-12-31T23:00:01Z", "fieldsType": "FieldsV1", "subresource": "status",
                              "fieldsV1": {"f:status": {"f:replicas": {}}}}]
    spec = obj.setdefault("spec", {})
    if desired.get("kind") == "Deployment":
        spec.setdefault("replicas", 2)
        spec["revisionHistoryLimit"] = 10
        spec["progressDeadlineSeconds"] = 600
        obj["status"] = {"observedGeneration": generation, "replicas": 2, "readyReplicas": 1, "updatedReplicas": 2,
                         "availableReplicas": 1,
                         "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                        {"type": "Progressing", "status": "True",
                                         "reason": "NewReplicaSetAvailable", "message": "ok"}]}
    if desired.get("kind") == "Service":
        spec["clusterIP"] = "10.96.0.17"
    return obj


def failed_deployment(desired):
    obj = live(desired, generation=5)
    obj["status"]["observedGeneration"] = 4
    obj["status"]["conditions"][1] = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                      "message": "ReplicaSet \"x-5d4\" has timed out progressing."}
    return obj


def with_status(pool):
    p = copy.deepcopy(pool)
    p["status"] = {"observedGeneration": 1, "replicas": 1, "selector": "app.kubernetes.io/instance=x",
                   "conditions": [{"type": "Ready", "status": "True", "reason": "AllReplicasReady", "message": "1/1",
                                   "lastTransitionTime": "2025-01-01T00:00:00Z", "observedGeneration": 1},
                                  {"type": "Progressing", "status": "False", "reason": "UpToDate",
                                   "lastTransitionTime": "2025-01-01T00:00:00Z"},
                                  {"type": "Degraded", "status": "True", "reason": "ReconcileFailed",
                                   "message": "spec.replicas: must be >= 0", "lastTransitionTime": "2025-01-01T00:00:00Z"}]}
    return p


def pool_corpus():
    out = os.path.join(HERE, "corpus", "pool")
    clear(out)
    for path in sorted(glob.glob(os.path.join(GOLDEN, "*.pool.json"))):
        stem = os.path.basename(path)[: -len(".pool.json")]
        with open(path) as f:
            pool = json.load(f)
        write(out, f"golden_{stem}", pool)
        write(out, f"golden_{stem}_status", with_status(pool))
        children_path = os.path.join(GOLDEN, stem + ".children.json")
        if not os.path.exists(children_path):
            continue
        with open(children_path) as f:
            children = json.load(f)
        deployment = children["deployment"]
        write(out, f"golden_{stem}_live", [pool, live(deployment)])
        write(out, f"golden_{stem}_failed", [with_status(pool), failed_deployment(deployment)])
        for kind, child in sorted(children.items()):
            if child is not None:
                write(out, f"golden_{stem}_{kind}_compare", [child, live(child)])

    with open(SAMPLE) as f:
        sample = yaml.safe_load(f)
    write(out, "sample_pool", sample)
    # As the API server returns it: namespace, uid, generation and the CRD's defaults filled in.
    served = copy.deepcopy(sample)
    served["metadata"].update({"namespace": "gasoline", "uid": "6c1d1a4e-0000-4000-8000-000000000002",
                               "generation": 2})
    served["spec"].update({"replicas": 1, "paused": False,
                           "disruption": {"enabled": True, "maxUnavailable": "25%"},
                           "sidecar": {"concurrency": 32, "pingInterval": "500ms",
                                       "shedding": {"startPercent": 50, "endPercent": 80.5}}})
    write(out, "sample_pool_served", served)

    # Small shapes for the corner cases of the comparison and the status.
    write(out, "quantities", [{"resources": {"requests": {"cpu": "0.5", "memory": "1Gi"}, "limits": {"cpu": 1}},
                               "sizeLimit": "1e3"},
                              {"resources": {"requests": {"cpu": "500m", "memory": "1024Mi"}, "limits": {"cpu": "1"}},
                               "sizeLimit": "1k"}])
    write(out, "numbers", [{"a": 1, "b": 1.0, "c": 18446744073709551615, "d": -1, "e": [], "labels": {}},
                           {"a": 1.0, "b": 1, "c": 18446744073709551615, "d": -1}])
    write(out, "bare_status", {"metadata": {"generation": 4, "name": "p", "namespace": "n"},
                               "spec": {"paused": True, "selectorLabels": {"tier": "a"}},
                               "status": {"selector": "old=1", "conditions": [{"type": "Ready"}]}})
    write(out, "scalar", "1")
    write(out, "empty_object", "{}")


KUBECONFIG = """apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:16443
    certificate-authority-data: Q0EtUEVN
    insecure-skip-tls-verify: false
users:
- name: admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
- name: bot
  user:
    token: abc.def
    tokenFile: token
contexts:
- name: dev
  context: {cluster: c1, user: admin, namespace: team-a}
- name: ci
  context: {cluster: c1, user: bot}
"""


def kubeconfig_corpus():
    out = os.path.join(HERE, "corpus", "kubeconfig")
    clear(out)
    write(out, "inline_data", KUBECONFIG)
    write(out, "token_user", KUBECONFIG.replace("current-context: dev", "current-context: ci"))
    write(out, "flow_style", json.dumps(yaml.safe_load(KUBECONFIG)))
    write(out, "files", """current-context: dev
clusters: [{name: c1, cluster: {server: "https://k:6443", certificate-authority: config}}]
users: [{name: u, user: {client-certificate: ./config, client-key: config}}]
contexts: [{name: dev, context: {cluster: c1, user: u}}]
""")
    write(out, "exec_user", """current-context: dev
clusters: [{name: c1, cluster: {server: "https://k:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {exec: {command: aws}}}]
contexts: [{name: dev, context: {cluster: c1, user: u}}]
""")
    write(out, "anchors", """base: &c {server: "https://k:6443"}
current-context: dev
clusters: [{name: c1, cluster: *c}]
contexts: [{name: dev, context: {cluster: c1, namespace: [x]}}]
""")
    write(out, "missing_context", "current-context: nope\ncontexts: []\n")
    write(out, "empty", "")
    write(out, "not_a_map", "- 1\n- 2\n")


if __name__ == "__main__":
    pool_corpus()
    kubeconfig_corpus()
