#!/usr/bin/env python3
"""Checks the output of `helm template --include-crds` of charts/gasoline for one values scenario.

usage: check_manifests.py RENDERED --scenario NAME --release R --namespace NS --crd CRD --example EXAMPLE

Scenarios (the values they were rendered with are in chart_lint_test.sh):
  default   the chart's defaults (sidecars authenticate with ServiceAccount tokens: kv.auth.serviceAccountTokens)
  custom    kv.replicas=5, no persistence, kv.auth.existingSecret and no ServiceAccount tokens, digest image,
            fullnameOverride, samplePool, ...
  external  kv.enabled=false with operator.kvAddress
  norbac    operator.rbac.create=false, operator.serviceAccount.create=false, and the same for the kv
  monitoring  every monitoring.* part enabled, with extra labels and pool namespaces
Prints one line per check group and exits 1 with every failure listed.
"""
import argparse
import base64
import subprocess
import tempfile
import json
import os
import re
import sys

import yaml

errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)
    return cond


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def one(docs, kind, name):
    found = [d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name]
    check(len(found) == 1, f"want exactly one {kind}/{name}, found {len(found)}")
    return found[0] if found else None


CLUSTER_SCOPED = {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy",
                  "ValidatingAdmissionPolicyBinding"}
STD_LABELS = ["helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
              "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of", "app.kubernetes.io/component"]

WRITE = ["get", "list", "watch", "create", "patch", "update", "delete"]
EXPECTED_CLUSTER_RULES = sorted([
    (("gasoline.dev",), ("gasolineworkerpools",), ("get", "list", "watch")),
    (("gasoline.dev",), ("gasolineworkerpools/status",), ("get", "patch", "update")),
    (("apps",), ("deployments",), tuple(WRITE)),
    (("",), ("services",), tuple(WRITE)),
    (("autoscaling",), ("horizontalpodautoscalers",), tuple(WRITE)),
    (("policy",), ("poddisruptionbudgets",), tuple(WRITE)),
    (("networking.k8s.io",), ("networkpolicies",), tuple(WRITE)),
    (("",), ("events",), ("create", "patch")),
    (("events.k8s.io",), ("events",), ("create", "patch")),
])
EXPECTED_ROLE_RULES = [(("coordination.k8s.io",), ("leases",), ("get", "create", "update"))]
# The kv's only API access: verifying the sidecars' ServiceAccount tokens.
EXPECTED_KV_RULES = [(("authentication.k8s.io",), ("tokenreviews",), ("create",))]


def rules_of(obj):
    out = []
    for r in obj.get("rules", []):
        check(not r.get("resourceNames") and not r.get("nonResourceURLs"), f"{obj['metadata']['name']}: unexpected rule {r}")
        out.append((tuple(r.get("apiGroups", [])), tuple(r.get("resources", [])), tuple(r.get("verbs", []))))
    return sorted(out)


def check_common(docs, ns, release):
    for d in docs:
        kind, name = d.get("kind"), d.get("metadata", {}).get("name")
        check(d.get("apiVersion") and kind and name, f"object without apiVersion/kind/name: {d}")
        if kind == "CustomResourceDefinition":
            continue
        labels = d["metadata"].get("labels") or {}
        for l in STD_LABELS:
            check(l in labels, f"{kind}/{name}: missing label {l}")
        check(labels.get("app.kubernetes.io/instance") == release, f"{kind}/{name}: instance label {labels.get('app.kubernetes.io/instance')}")
        check(labels.get("app.kubernetes.io/managed-by") == "Helm", f"{kind}/{name}: managed-by label")
        if kind in CLUSTER_SCOPED:
            check("namespace" not in d["metadata"], f"{kind}/{name}: cluster-scoped object with a namespace")
        else:
            check(d["metadata"].get("namespace") == ns, f"{kind}/{name}: namespace {d['metadata'].get('namespace')}, want {ns}")
    print(f"ok: {len(docs)} objects have apiVersion/kind/name, the standard labels and namespace {ns}")


def check_no_wildcards(docs):
    for d in docs:
        if d["kind"] not in ("ClusterRole", "Role"):
            continue
        for r in d.get("rules", []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                for v in r.get(field, []) or []:
                    check("*" not in v, f"{d['kind']}/{d['metadata']['name']}: wildcard '{v}' in {field}")
            check("secrets" not in r.get("resources", []), f"{d['kind']}/{d['metadata']['name']}: grants secrets")
            check("pods" not in r.get("resources", []), f"{d['kind']}/{d['metadata']['name']}: grants pods")
        check(d.get("aggregationRule") is None, f"{d['kind']}/{d['metadata']['name']}: aggregationRule")
    print("ok: no RBAC wildcards, no secrets, no pods")


def pod_specs(docs):
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield d, d["spec"]["template"]["spec"]


def check_security(docs):
    n = 0
    for d, spec in pod_specs(docs):
        where = f"{d['kind']}/{d['metadata']['name']}"
        psc = spec.get("securityContext") or {}
        check(psc.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot")
        for k in ("runAsUser", "runAsGroup", "fsGroup"):
            check(isinstance(psc.get(k), int) and psc.get(k) > 0, f"{where}: pod {k} must be a fixed non-root id, got {psc.get(k)}")
        check((psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", f"{where}: pod seccompProfile")
        containers = (spec.get("initContainers") or []) + spec.get("containers", [])
        check(containers, f"{where}: no containers")
        for c in containers:
            cw = f"{where} container {c['name']}"
            sc = c.get("securityContext") or {}
            check(sc.get("readOnlyRootFilesystem") is True, f"{cw}: readOnlyRootFilesystem")
            check(sc.get("allowPrivilegeEscalation") is False, f"{cw}: allowPrivilegeEscalation")
            check(sc.get("runAsNonRoot") is True, f"{cw}: runAsNonRoot")
            check((sc.get("capabilities") or {}).get("drop") == ["ALL"], f"{cw}: capabilities.drop")
            check(not (sc.get("capabilities") or {}).get("add"), f"{cw}: capabilities.add")
            check(not sc.get("privileged"), f"{cw}: privileged")
            check((sc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", f"{cw}: seccompProfile")
            check((c.get("resources") or {}).get("requests"), f"{cw}: no resource requests")
            check(c.get("livenessProbe") and c.get("readinessProbe"), f"{cw}: liveness and readiness probes")
            check(":" in c["image"] or "@" in c["image"], f"{cw}: image without tag: {c['image']}")
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            check("/tmp" in mounts, f"{cw}: no writable /tmp with a read-only root")
        check(not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), f"{where}: host namespaces")
        n += 1
    check(n > 0, "no pod templates rendered")
    print(f"ok: {n} pod templates are non-root, read-only, no privilege escalation, drop ALL, seccomp RuntimeDefault")


def env_field(c, name):
    for e in c.get("env", []):
        if e["name"] == name:
            return ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
    return None


def token_volume(spec):
    for v in spec.get("volumes", []):
        if v["name"] == "kv-token":
            return v.get("secret") or {}
    return {}


def check_operator(docs, ns, fullname, kv_address, sidecar_image, image, replicas, sa_name, sa_tokens=True,
                   tls_secret="default", pool_admin_from="[]", pool_network_policy=True):
    dep = one(docs, "Deployment", f"{fullname}-operator")
    if not dep:
        return
    spec = dep["spec"]["template"]["spec"]
    check(dep["spec"]["replicas"] == replicas, f"operator replicas {dep['spec']['replicas']}, want {replicas}")
    check(spec.get("serviceAccountName") == sa_name, f"operator serviceAccountName {spec.get('serviceAccountName')}, want {sa_name}")
    c = spec["containers"][0]
    check(c["image"] == image, f"operator image {c['image']}, want {image}")
    check(c.get("command") == ["gasoline-operator"], f"operator command {c.get('command')}")
    want_args = ["--leader-elect", "--leader-election-namespace=$(POD_NAMESPACE)", "--metrics-listen=0.0.0.0:8080",
                 "--probe-listen=0.0.0.0:8081", f"--sidecar-image={sidecar_image}", f"--kv-address={kv_address}",
                 "--kv-token-file=/var/run/gasoline/kv/token"]
    check(c.get("args", [])[:len(want_args)] == want_args, f"operator args {c.get('args')}, want {want_args} first")
    # The operator dials the kv over TLS, trusting the CA of the kv's TLS Secret, and hands that CA to sidecars.
    if tls_secret == "default":
        tls_secret = f"{fullname}-kv-tls"
    tls_arg = "--kv-tls-ca=/var/run/gasoline/kv-tls/ca.crt"
    check((tls_arg in c.get("args", [])) == bool(tls_secret), f"operator {tls_arg} iff TLS ({tls_secret}): {c.get('args')}")
    ca_vol = next((v.get("secret") or {} for v in spec.get("volumes", []) if v["name"] == "kv-tls-ca"), {})
    if tls_secret:
        check(ca_vol.get("secretName") == tls_secret and ca_vol.get("items") == [{"key": "ca.crt", "path": "ca.crt"}],
              f"operator CA volume {ca_vol}, want ca.crt of {tls_secret}")
    check(("--sidecar-kv-credential=service-account" in c.get("args", [])) == sa_tokens,
          f"operator --sidecar-kv-credential=service-account iff kv.auth.serviceAccountTokens ({sa_tokens}): {c.get('args')}")
    # Every pool gets a NetworkPolicy fencing its sidecars' admin port, admitting networkPolicy.poolAdminFrom.
    for want in (f"--pool-network-policy={str(pool_network_policy).lower()}", f"--pool-admin-from={pool_admin_from}"):
        check(want in c.get("args", []), f"operator {want}: {c.get('args')}")
    if fullname != "gw":
        check(not any(a.startswith("--allowed-kv-address") for a in c.get("args", [])),
              "by default the operator may dial only --kv-address")
    check(env_field(c, "POD_NAME") == "metadata.name", "operator env POD_NAME from metadata.name")
    check(env_field(c, "POD_NAMESPACE") == "metadata.namespace", "operator env POD_NAMESPACE from metadata.namespace")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports == {"metrics": 8080, "probes": 8081}, f"operator ports {ports}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        hg = (c.get(probe) or {}).get("httpGet") or {}
        check(hg.get("path") == path and hg.get("port") in ("probes", 8081), f"operator {probe} {hg}")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    check(mounts.get("/var/run/gasoline/kv", {}).get("readOnly") is True, "operator mounts the kv token read-only")
    print(f"ok: operator Deployment {fullname}-operator (image, command, flags, env, probes, ports)")


def check_rbac(docs, fullname, ns, sa_name):
    cr = one(docs, "ClusterRole", f"{fullname}-operator")
    if cr:
        got = rules_of(cr)
        check(got == EXPECTED_CLUSTER_RULES, f"ClusterRole rules\n  got  {got}\n  want {EXPECTED_CLUSTER_RULES}")
    roles = by_kind(docs, "Role")
    check(len(roles) == 1, f"want one Role, got {len(roles)}")
    for r in roles:
        check(rules_of(r) == EXPECTED_ROLE_RULES, f"Role rules {rules_of(r)}")
        check(r["metadata"]["namespace"] == ns, "Role in the release namespace")
    for kind, ref_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        for b in by_kind(docs, kind):
            if b["roleRef"]["name"] == f"{fullname}-kv-token-review":
                continue  # the kv's (check_kv_rbac)
            check(b["roleRef"]["kind"] == ref_kind, f"{kind} roleRef {b['roleRef']}")
            check(b["subjects"] == [{"kind": "ServiceAccount", "name": sa_name, "namespace": ns}],
                  f"{kind} subjects {b['subjects']}")
    print("ok: RBAC is exactly the least-privilege set (ClusterRole + leader-election Role)")


def check_kv_rbac(docs, fullname, ns, sa_tokens, sa_name):
    kv = f"{fullname}-kv"
    crs = [d for d in by_kind(docs, "ClusterRole") if d["metadata"]["name"] == f"{kv}-token-review"]
    crbs = [d for d in by_kind(docs, "ClusterRoleBinding") if d["metadata"]["name"] == f"{kv}-token-review"]
    if not sa_tokens:
        check(not crs and not crbs, "kv TokenReview RBAC rendered without kv.auth.serviceAccountTokens")
        print("ok: no kv RBAC without ServiceAccount tokens")
        return
    check(len(crs) == 1 and len(crbs) == 1, f"want one kv ClusterRole and binding, got {len(crs)} and {len(crbs)}")
    for cr in crs:
        check(rules_of(cr) == EXPECTED_KV_RULES, f"kv ClusterRole rules {rules_of(cr)}, want {EXPECTED_KV_RULES}")
    for b in crbs:
        check(b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"{kv}-token-review"},
              f"kv ClusterRoleBinding roleRef {b['roleRef']}")
        check(b["subjects"] == [{"kind": "ServiceAccount", "name": sa_name, "namespace": ns}],
              f"kv ClusterRoleBinding subjects {b['subjects']}")
    print("ok: the kv may create TokenReviews, nothing else")


def check_kv(docs, ns, fullname, replicas, persistence, secret, key, raft_secret, raft_key, sa_tokens=True,
             sa_name=None, tls_secret=None, credentials_secret=None):
    kv = f"{fullname}-kv"
    sts = one(docs, "StatefulSet", kv)
    if not sts:
        return
    s = sts["spec"]
    spec = s["template"]["spec"]
    check(s["replicas"] == replicas, f"kv replicas {s['replicas']}, want {replicas}")
    check(s.get("podManagementPolicy") == "Parallel", "kv podManagementPolicy Parallel")
    check(s.get("serviceName") == kv, f"kv serviceName {s.get('serviceName')}")
    if persistence:
        # Default: the claims outlive the release (kv.persistence.deleteOnUninstall=false).
        check((s.get("persistentVolumeClaimRetentionPolicy") or {}).get("whenDeleted") == "Retain",
              f"kv persistentVolumeClaimRetentionPolicy {s.get('persistentVolumeClaimRetentionPolicy')}")
    # The kv talks to the API server (TokenReviews) only to verify ServiceAccount tokens.
    check(spec.get("automountServiceAccountToken") is sa_tokens, f"kv automountServiceAccountToken {sa_tokens}")
    check(spec.get("serviceAccountName") == (sa_name or kv), f"kv serviceAccountName {spec.get('serviceAccountName')}")
    check(("--kube-token-review" in spec["containers"][0].get("args", [])) == sa_tokens,
          f"kv --kube-token-review iff kv.auth.serviceAccountTokens ({sa_tokens})")
    c = spec["containers"][0]
    check(c.get("command") == ["gasoline-kv"], f"kv command {c.get('command')}")
    want = ["--listen=0.0.0.0:7400", "--raft-bind=0.0.0.0:7410", "--metrics-listen=0.0.0.0:9400",
            "--data-dir=/var/lib/gasoline", "--token-file=/var/run/gasoline/kv/token",
            "--raft-secret-file=/var/run/gasoline/raft/secret"]
    want += ["--tls-cert=/var/run/gasoline/tls/tls.crt", "--tls-key=/var/run/gasoline/tls/tls.key"]
    # kv.tls.raft "auto" without a running StatefulSet (helm template): the replicas' Raft traffic is TLS too.
    want += ["--raft-tls-cert=/var/run/gasoline/tls/tls.crt", "--raft-tls-key=/var/run/gasoline/tls/tls.key",
             "--raft-tls-ca=/var/run/gasoline/tls/ca.crt"]
    want += ["--raft-id-from-pod-name"]
    want += [f"--peer={i + 1}={kv}-{i}.{kv}.{ns}.svc:7410,{kv}-{i}.{kv}.{ns}.svc:7400" for i in range(replicas)]
    check(c.get("args", [])[:len(want)] == want, f"kv args\n  got  {c.get('args')}\n  want {want}")
    check(env_field(c, "POD_NAME") == "metadata.name", "kv env POD_NAME from metadata.name")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports == {"client": 7400, "raft": 7410, "metrics": 9400}, f"kv ports {ports}")
    # The kv serves /healthz and /readyz beside /metrics; ready means a known leader and an applied log.
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        p = (c.get(probe) or {}).get("httpGet") or {}
        check(p.get("path") == path and p.get("port") in ("metrics", 9400), f"kv {probe} must be httpGet {path} on metrics: {p}")
    check("--metrics-listen=0.0.0.0:9400" in c.get("args", []), "kv serves its probes on 0.0.0.0:9400 (the kubelet probes the pod IP)")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    check(mounts.get("/var/lib/gasoline") == "data", "kv data volume at /var/lib/gasoline")
    check(mounts.get("/var/run/gasoline/kv") == "kv-token", "kv token at /var/run/gasoline/kv")
    raft_mounts = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/var/run/gasoline/raft"]
    check(len(raft_mounts) == 1 and raft_mounts[0]["name"] == "raft-secret" and raft_mounts[0].get("readOnly") is True,
          f"kv Raft secret mounted read-only at /var/run/gasoline/raft: {raft_mounts}")
    rv = next((v.get("secret") or {} for v in spec.get("volumes", []) if v["name"] == "raft-secret"), {})
    check(rv.get("secretName") == raft_secret and rv.get("items") == [{"key": raft_key, "path": "secret"}]
          and rv.get("defaultMode") == 0o440, f"kv Raft secret volume {rv}, want secret {raft_secret} key {raft_key} mode 0440")
    check(raft_secret != secret, "the Raft secret must not be the client token's Secret")
    # Only the kv may read the Raft secret: whoever holds it can join the Raft cluster.
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job") and d is not sts:
            vols = d["spec"]["template"]["spec"].get("volumes", [])
            check(all((v.get("secret") or {}).get("secretName") != raft_secret for v in vols),
                  f"{d['kind']}/{d['metadata']['name']} mounts the Raft secret")
    tls_vol = next((v.get("secret") or {} for v in spec.get("volumes", []) if v["name"] == "tls"), {})
    check(tls_vol.get("secretName") == (tls_secret or f"{kv}-tls") and tls_vol.get("defaultMode") == 0o440
          and tls_vol.get("items") == [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"},
                                       {"key": "ca.crt", "path": "ca.crt"}],
          f"kv TLS volume {tls_vol}")
    check({"name": "tls", "mountPath": "/var/run/gasoline/tls", "readOnly": True} in c.get("volumeMounts", []),
          "kv mounts its certificate read-only at /var/run/gasoline/tls")
    # Only the kv holds the key; every other workload may see the CA alone.
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job") and d is not sts:
            for v in d["spec"]["template"]["spec"].get("volumes", []):
                if (v.get("secret") or {}).get("secretName") == tls_vol.get("secretName"):
                    check(v["secret"].get("items") == [{"key": "ca.crt", "path": "ca.crt"}],
                          f"{d['kind']}/{d['metadata']['name']} mounts more of the kv's TLS Secret than ca.crt")
    # kv.auth.credentialsSecret: the scoped static tokens, mounted read-only and named by --credentials-file.
    cred_arg = "--credentials-file=/var/run/gasoline/credentials/credentials"
    check((cred_arg in c.get("args", [])) == bool(credentials_secret), f"kv {cred_arg} iff kv.auth.credentialsSecret")
    cv = next((v.get("secret") or {} for v in spec.get("volumes", []) if v["name"] == "credentials"), {})
    if credentials_secret:
        check(cv.get("secretName") == credentials_secret and cv.get("defaultMode") == 0o440
              and cv.get("items") == [{"key": "credentials", "path": "credentials"}], f"kv credentials volume {cv}")
    else:
        check(not cv, "a credentials volume without kv.auth.credentialsSecret")
    tv = token_volume(spec)
    check(tv.get("secretName") == secret and tv.get("items") == [{"key": key, "path": "token"}],
          f"kv token volume {tv}, want secret {secret} key {key}")
    vcts = s.get("volumeClaimTemplates") or []
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    if persistence:
        check([v["metadata"]["name"] for v in vcts] == ["data"], f"kv volumeClaimTemplates {vcts}")
        check("data" not in vols, "kv: both a PVC template and a data volume")
    else:
        check(not vcts, "kv: PVC template with persistence disabled")
        check("emptyDir" in vols.get("data", {}), "kv: emptyDir data volume without persistence")

    sel = s["selector"]["matchLabels"]
    check(s["template"]["metadata"]["labels"].items() >= sel.items(), "kv pod labels match the selector")
    headless = one(docs, "Service", kv)
    if headless:
        hs = headless["spec"]
        check(hs.get("clusterIP") == "None", "headless kv Service clusterIP None")
        check(hs.get("publishNotReadyAddresses") is True, "headless kv Service publishNotReadyAddresses")
        check(hs.get("selector") == sel, "headless kv Service selector")
        check({p["port"] for p in hs["ports"]} == {7400, 7410}, f"headless ports {hs['ports']}")
    client = one(docs, "Service", f"{kv}-client")
    if client:
        check(client["spec"].get("clusterIP") != "None", "client Service is not headless")
        check(client["spec"].get("selector") == sel, "client Service selector")
        check(7400 in {p["port"] for p in client["spec"]["ports"]}, "client Service port 7400")
    pdb = one(docs, "PodDisruptionBudget", kv)
    if pdb:
        check(pdb["spec"].get("maxUnavailable") == 1, f"kv PDB maxUnavailable {pdb['spec'].get('maxUnavailable')}")
        check(pdb["spec"]["selector"]["matchLabels"] == sel, "kv PDB selector")
    print(f"ok: kv StatefulSet {kv} ({replicas} replicas, Parallel, peers, http probes /healthz /readyz), headless + client Services, PDB")


def check_secret(docs, ns, expect_created):
    secrets = by_kind(docs, "Secret")
    if not expect_created:
        check(not secrets, f"a Secret was rendered although kv.auth.existingSecret is set: {[s['metadata']['name'] for s in secrets]}")
        print("ok: no token Secret rendered (existingSecret)")
        return
    s = one(docs, "Secret", "gasoline-kv-token")
    if s:
        tok = base64.b64decode(s["data"]["token"]).decode()
        check(len(tok) == 48 and tok.isalnum(), f"token is {len(tok)} characters, want 48 alphanumeric")
        check(list(s["data"].keys()) == ["token"], f"Secret keys {list(s['data'])}")
    print("ok: Secret gasoline-kv-token with a 48-character random token")


def check_tls_secret(docs, name, fullname, ns):
    """The chart-made certificate: signed by the CA in the same Secret, for the kv's Service and pod names."""
    s = one(docs, "Secret", name)
    if not s:
        return
    check(s.get("type") == "kubernetes.io/tls", f"TLS Secret type {s.get('type')}")
    check(sorted(s["data"]) == ["ca.crt", "tls.crt", "tls.key"], f"TLS Secret keys {sorted(s['data'])}")
    with tempfile.TemporaryDirectory() as d:
        for k in ("ca.crt", "tls.crt"):
            with open(os.path.join(d, k), "wb") as f:
                f.write(base64.b64decode(s["data"][k]))
        v = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(d, "ca.crt"), os.path.join(d, "tls.crt")],
                           capture_output=True, text=True)
        check(v.returncode == 0, f"the certificate does not chain to ca.crt: {v.stdout}{v.stderr}")
        for host in (f"{fullname}-kv.{ns}.svc", f"{fullname}-kv-1.{fullname}-kv.{ns}.svc", f"{fullname}-kv-client.{ns}.svc",
                     "localhost"):
            h = subprocess.run(["openssl", "x509", "-noout", "-checkhost", host, "-in", os.path.join(d, "tls.crt")],
                               capture_output=True, text=True)
            check("does match" in h.stdout, f"the kv certificate does not name {host}: {h.stdout.strip()}")
    print(f"ok: Secret {name}: a certificate for the kv's Services and pods, signed by its ca.crt")


def check_raft_secret(docs, name):
    s = one(docs, "Secret", name)
    if s:
        secret = base64.b64decode(s["data"]["secret"]).decode()
        check(len(secret) == 48 and secret.isalnum(), f"Raft secret is {len(secret)} characters, want 48 alphanumeric")
        check(list(s["data"].keys()) == ["secret"], f"Raft Secret keys {list(s['data'])}")
        token = one(docs, "Secret", "gasoline-kv-token")
        if token:
            check(token["data"]["token"] != s["data"]["secret"], "the Raft secret equals the client token")
    print(f"ok: Secret {name} with a 48-character random Raft secret, distinct from the token")


def ingress_policy(docs, name, workload_kind, what):
    """The NetworkPolicy NAME and the workload it guards (WORKLOAD_KIND/NAME), once it is checked that the policy
    selects exactly the workload's pods and restricts ingress only; (None, None) when either is missing."""
    np = one(docs, "NetworkPolicy", name)
    workload = one(docs, workload_kind, name)
    if not np or not workload:
        return None, None
    spec = np["spec"]
    labels = workload["spec"]["selector"]["matchLabels"]
    check(spec["podSelector"] == {"matchLabels": labels}, f"{what} NetworkPolicy selects {spec['podSelector']}")
    check(spec.get("policyTypes") == ["Ingress"], f"{what} NetworkPolicy policyTypes {spec.get('policyTypes')}")
    return spec, workload


def check_network_policy(docs, fullname, clients_from, metrics_from):
    kv = f"{fullname}-kv"
    spec, sts = ingress_policy(docs, kv, "StatefulSet", "kv")
    if not spec:
        return
    kv_labels = sts["spec"]["selector"]["matchLabels"]
    by_port = {}
    for rule in spec.get("ingress", []):
        for p in rule.get("ports", []):
            by_port.setdefault(p["port"], []).append(rule.get("from"))
    # Raft: the kv replicas only, never a namespace-wide peer.
    check(by_port.get(7410) == [[{"podSelector": {"matchLabels": kv_labels}}]],
          f"Raft port 7410 must admit the kv pods only: {by_port.get(7410)}")
    check(by_port.get(7400) == [clients_from], f"client port 7400 from {by_port.get(7400)}, want {clients_from}")
    check(by_port.get(9400) == [metrics_from], f"metrics port 9400 from {by_port.get(9400)}, want {metrics_from}")
    check(sorted(by_port) == [7400, 7410, 9400], f"kv NetworkPolicy ports {sorted(by_port)}")
    print(f"ok: NetworkPolicy {kv}: Raft from kv pods only, clients and metrics from the configured peers")


def check_gateway(docs, fullname, kv_address, image, tls_secret, clients_from):
    """The gateway: a Deployment that dials the kv with no credential of its own (only the kv's CA when TLS is on),
    its Service on 7490, and a NetworkPolicy admitting clients_from (None: no policy rendered)."""
    name = f"{fullname}-gateway"
    dep = one(docs, "Deployment", name)
    svc = one(docs, "Service", name)
    if not dep or not svc:
        return
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    check(c["image"] == image, f"gateway image {c['image']}, want {image}")
    check(c.get("command") == ["gasoline-gateway"], f"gateway command {c.get('command')}")
    args = c.get("args", [])
    for want in ("--listen=0.0.0.0:7490", f"--kv={kv_address}"):
        check(want in args, f"gateway {want}: {args}")
    tls_arg = "--kv-tls-ca=/var/run/gasoline/kv-tls/ca.crt"
    check((tls_arg in args) == bool(tls_secret), f"gateway {tls_arg} iff TLS ({tls_secret}): {args}")
    check(spec.get("automountServiceAccountToken") is False, "the gateway needs no ServiceAccount token")
    secrets = [v["secret"] for v in spec.get("volumes", []) if "secret" in v]
    want_secrets = [{"secretName": tls_secret, "defaultMode": 0o440, "items": [{"key": "ca.crt", "path": "ca.crt"}]}] \
        if tls_secret else []
    check(secrets == want_secrets, f"the gateway mounts the kv's CA only, never a token or key: {secrets}")
    ports = [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]]
    check(ports == [(7490, "http")], f"gateway Service ports {ports}")
    check(svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"], "gateway Service selects its pods")
    if clients_from is None:
        check(not [d for d in by_kind(docs, "NetworkPolicy") if d["metadata"]["name"] == name],
              "no gateway NetworkPolicy with networkPolicy.enabled=false")
    else:
        np_spec, _ = ingress_policy(docs, name, "Deployment", "gateway")
        want = [{"from": clients_from, "ports": [{"port": 7490, "protocol": "TCP"}]}]
        check(np_spec is not None and np_spec.get("ingress") == want,
              f"gateway NetworkPolicy ingress {np_spec and np_spec.get('ingress')}, want {want}")
    print(f"ok: gateway {name}: kv {kv_address}, TLS CA {tls_secret or 'none'}, Service 7490, policy {clients_from}")


def check_operator_network_policy(docs, fullname, metrics_from):
    op = f"{fullname}-operator"
    spec, dep = ingress_policy(docs, op, "Deployment", "operator")
    if not spec:
        return
    # The metrics port from the configured peers, and nothing else: the probe port (8081) is reached by the kubelet
    # from the node, which no peer names.
    ports = {p["name"]: p["containerPort"] for p in dep["spec"]["template"]["spec"]["containers"][0].get("ports", [])}
    want = [{"from": metrics_from, "ports": [{"port": ports.get("metrics"), "protocol": "TCP"}]}]
    check(spec.get("ingress") == want, f"operator NetworkPolicy ingress {spec.get('ingress')}, want {want}")
    print(f"ok: NetworkPolicy {op}: the metrics port {ports.get('metrics')} from the configured peers only")


def check_pool_policy(docs, name):
    vap = one(docs, "ValidatingAdmissionPolicy", name)
    binding = one(docs, "ValidatingAdmissionPolicyBinding", name)
    if not vap or not binding:
        return
    rules = vap["spec"]["matchConstraints"]["resourceRules"]
    check(rules == [{"apiGroups": ["gasoline.dev"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                     "resources": ["gasolineworkerpools"]}], f"pool policy matches {rules}")
    check(vap["spec"].get("failurePolicy") == "Fail", "pool policy failurePolicy Fail")
    expr = vap["spec"]["validations"][0]["expression"]
    check("object.spec.kv.pool.startsWith(object.metadata.namespace + '.')" in expr, f"pool policy expression {expr}")
    check(binding["spec"] == {"policyName": name, "validationActions": ["Deny"]}, f"pool policy binding {binding['spec']}")
    print(f"ok: ValidatingAdmissionPolicy {name} keeps spec.kv.pool within the pool's namespace")


def check_crd(docs, crd_path):
    crds = by_kind(docs, "CustomResourceDefinition")
    check(len(crds) == 1, f"want the CRD once in --include-crds output, got {len(crds)}")
    want = load(crd_path)
    check(len(want) == 1, "crds/ file holds one document")
    if crds and want:
        check(crds[0] == want[0], "the chart's CRD differs from crds/gasoline.dev_gasolineworkerpools.yaml")
        spec = crds[0]["spec"]
        undocumented = []

        def walk(node, path):
            for name, sub in (node.get("properties") or {}).items():
                if path == "" and name == "metadata":
                    continue
                if not sub.get("description"):
                    undocumented.append(f"{path}.{name}")
                walk(sub, f"{path}.{name}")
            if isinstance(node.get("items"), dict):
                walk(node["items"], path + "[]")
            if isinstance(node.get("additionalProperties"), dict):
                walk(node["additionalProperties"], path + "{}")
        for ver in spec["versions"]:
            walk(ver["schema"]["openAPIV3Schema"], "")
            for col in ver.get("additionalPrinterColumns", []):
                check(col["name"] == "Age" or col.get("description"), f"printer column {col['name']} has no description")
        check(not undocumented, f"CRD fields without a description: {undocumented}")
        check(spec["names"]["shortNames"] == ["gwp"], "CRD short name gwp")
        check(spec["versions"][0]["subresources"].get("scale", {}).get("labelSelectorPath") == ".status.selector", "CRD scale subresource")
    print("ok: the CRD is included and identical to crds/")


def check_sample(docs, ns, example_path, enabled):
    pools = by_kind(docs, "GasolineWorkerPool")
    if not enabled:
        check(not pools, "a GasolineWorkerPool was rendered with samplePool.enabled=false")
        return
    check(len(pools) == 1, f"want one sample pool, got {len(pools)}")
    if pools:
        want = load(example_path)[0]
        p = pools[0]
        check(p["spec"] == want["spec"], "the sample pool's spec differs from examples/sample-pool.yaml")
        check(p["metadata"]["name"] == want["metadata"]["name"] and p["metadata"]["namespace"] == ns, "sample pool name/namespace")
    print("ok: sample pool = examples/sample-pool.yaml in the release namespace")


def check_sample_file(example_path):
    p = load(example_path)[0]
    s = p["spec"]
    check(p["apiVersion"] == "gasoline.dev/v1alpha1" and p["kind"] == "GasolineWorkerPool", "example kind")
    check(s["workflows"] == ["order", "ship"], f"example workflows {s['workflows']}")
    c = s["template"]["spec"]["containers"][0]
    check(c["image"].startswith("gasoline/example-app"), f"example image {c['image']}")
    check("cpu" in c["resources"]["requests"], "example cpu request")
    a = s["autoscaling"]
    check((a["minReplicas"], a["maxReplicas"], a["targetCPUUtilizationPercentage"]) == (1, 4, 50), f"example autoscaling {a}")
    print("ok: examples/sample-pool.yaml (example-app, order+ship, cpu request, 1..4 at 50 %)")


ALERTS = ["GasolineWorkflowsOverdue", "GasolinePoolNoActiveWorkers", "GasolineKvNoLeader", "GasolineKvReplicaLagging",
          "GasolineShedRatioHigh", "GasolineOperatorReconcileErrors"]


def github_anchor(heading):
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def check_monitoring(docs, fn, ns, chart_dir, runbook_path):
    """ServiceMonitors select the kv client, operator metrics and gateway Services on a port those Services have; the
    PodMonitor selects the labels the operator puts on pool pods (operator/pool/labels.cc) on the sidecar's admin
    port; every alert has a severity and a runbook anchor that exists in docs/runbook.md; the dashboard ConfigMap
    carries the discovery label and exactly dashboards/gasoline.json."""
    services = {d["metadata"]["name"]: d for d in by_kind(docs, "Service")}
    for name, svc, port in ((f"{fn}-kv", f"{fn}-kv-client", "metrics"),
                            (f"{fn}-operator", f"{fn}-operator-metrics", "metrics"),
                            (f"{fn}-gateway", f"{fn}-gateway", "http")):
        sm = one(docs, "ServiceMonitor", name)
        if not sm or not check(svc in services, f"no Service {svc}"):
            continue
        check(sm["apiVersion"] == "monitoring.coreos.com/v1", f"ServiceMonitor/{name} apiVersion {sm['apiVersion']}")
        sel = sm["spec"]["selector"]["matchLabels"]
        labels = services[svc]["metadata"]["labels"]
        check(all(labels.get(k) == v for k, v in sel.items()), f"ServiceMonitor/{name} selector {sel} misses {svc}")
        ports = [p["name"] for p in services[svc]["spec"]["ports"]]
        check([e["port"] for e in sm["spec"]["endpoints"]] == [port] and port in ports,
              f"ServiceMonitor/{name} endpoints {sm['spec']['endpoints']}, Service ports {ports}")
        check(sm["spec"]["namespaceSelector"] == {"matchNames": [ns]}, f"ServiceMonitor/{name} namespaceSelector")
        check(sm["metadata"]["labels"].get("release") == "kps", f"ServiceMonitor/{name}: monitoring.labels")
    pm = one(docs, "PodMonitor", f"{fn}-sidecars")
    if pm:
        check(pm["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "gasoline-worker",
                                                        "app.kubernetes.io/part-of": "gasoline"},
              f"PodMonitor selector {pm['spec']['selector']}")
        check(pm["spec"]["namespaceSelector"] == {"matchNames": ["shop", "billing"]},
              f"PodMonitor namespaceSelector {pm['spec']['namespaceSelector']}")
        ep = pm["spec"]["podMetricsEndpoints"]
        check(len(ep) == 1 and ep[0]["port"] == "gasoline-admin" and ep[0]["path"] == "/metrics", f"PodMonitor {ep}")
        check({"sourceLabels": ["__meta_kubernetes_pod_label_gasoline_dev_pool"], "targetLabel": "pool"}
              in ep[0].get("relabelings", []), "PodMonitor: the pod's gasoline.dev/pool label becomes `pool`")
    rule = one(docs, "PrometheusRule", fn)
    if rule:
        with open(runbook_path) as f:
            anchors = {github_anchor(l[3:]) for l in f if l.startswith("## ")}
        rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
        check([r["alert"] for r in rules] == ALERTS, f"alerts {[r['alert'] for r in rules]}, want {ALERTS}")
        for r in rules:
            where = f"alert {r['alert']}"
            check(r["labels"].get("severity") in ("warning", "critical"), f"{where}: severity {r['labels']}")
            check(r["labels"].get("team") == "platform", f"{where}: additionalLabels")
            check(r.get("for"), f"{where}: no `for`")
            check(set(r["annotations"]) >= {"summary", "description", "runbook"}, f"{where}: annotations")
            anchor = r["annotations"].get("runbook", "").partition("#")[2]
            check(anchor == r["alert"].lower() and anchor in anchors,
                  f"{where}: runbook anchor '{anchor}' is not a section of docs/runbook.md")
            check("{{ $labels" not in r["expr"], f"{where}: Prometheus template in the expression")
    cm = one(docs, "ConfigMap", f"{fn}-dashboard")
    if cm:
        check(cm["metadata"]["labels"].get("grafana_dashboard") == "1", "dashboard ConfigMap: grafana_dashboard label")
        with open(os.path.join(chart_dir, "dashboards", "gasoline.json")) as f:
            want = json.load(f)
        check(json.loads(cm["data"]["gasoline.json"]) == want, "dashboard ConfigMap differs from dashboards/gasoline.json")
    print("ok: ServiceMonitors, PodMonitor, PrometheusRule and the dashboard ConfigMap")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rendered")
    ap.add_argument("--scenario", required=True, choices=["default", "custom", "external", "norbac", "monitoring"])
    ap.add_argument("--release", required=True)
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--crd", required=True)
    ap.add_argument("--example", required=True)
    a = ap.parse_args()
    docs = load(a.rendered)
    ns, rel = a.namespace, a.release
    check_common(docs, ns, rel)
    check_no_wildcards(docs)
    check_security(docs)
    check_crd(docs, a.crd)
    check_sample_file(a.example)
    v = "0.1.0"
    if a.scenario == "default":
        fn = rel if "gasoline" in rel else f"{rel}-gasoline"
        check_operator(docs, ns, fn, f"{fn}-kv.{ns}.svc:7400", f"gasoline/gasoline-worker:{v}",
                       f"gasoline/gasoline-operator:{v}", 2, f"{fn}-operator")
        check_rbac(docs, fn, ns, f"{fn}-operator")
        check_kv(docs, ns, fn, 3, True, "gasoline-kv-token", "token", f"{fn}-kv-raft", "secret")
        check_kv_rbac(docs, fn, ns, True, f"{fn}-kv")
        check(one(docs, "ServiceAccount", f"{fn}-kv") is not None, "kv ServiceAccount")
        check_secret(docs, ns, True)
        check_raft_secret(docs, f"{fn}-kv-raft")
        check_tls_secret(docs, f"{fn}-kv-tls", fn, ns)
        check_pool_policy(docs, f"{fn}-pool-kv-namespace")
        check_network_policy(docs, fn, [{"namespaceSelector": {}}], [{"namespaceSelector": {}}])
        check_operator_network_policy(docs, fn, [{"namespaceSelector": {}}])
        check_gateway(docs, fn, f"{fn}-kv.{ns}.svc:7400", f"gasoline/gasoline-gateway:{v}", f"{fn}-kv-tls",
                      [{"namespaceSelector": {}}])
        check_sample(docs, ns, a.example, False)
        sa = one(docs, "ServiceAccount", f"{fn}-operator")
        check(sa is not None, "operator ServiceAccount")
        kinds = sorted(d["kind"] for d in docs)
        want = sorted(["CustomResourceDefinition", "ServiceAccount", "ServiceAccount", "ClusterRole", "ClusterRole",
                       "ClusterRoleBinding", "ClusterRoleBinding", "Role",
                       "RoleBinding", "Deployment", "Service", "Service", "Service", "StatefulSet",
                       "PodDisruptionBudget", "Secret", "Secret", "Secret", "ValidatingAdmissionPolicy",
                       "ValidatingAdmissionPolicyBinding", "NetworkPolicy", "NetworkPolicy",
                       "Deployment", "Service", "NetworkPolicy"])
        check(kinds == want, f"rendered kinds {kinds}, want {want}")
    elif a.scenario == "custom":
        fn = "gw"
        check_operator(docs, ns, fn, f"{fn}-kv.{ns}.svc:7400", "registry.example/worker:9.9.9",
                       "registry.example/operator@sha256:" + "a" * 64, 1, f"{fn}-operator", sa_tokens=False,
                       tls_secret="my-kv-tls",
                       pool_admin_from='[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]')
        check_rbac(docs, fn, ns, f"{fn}-operator")
        check_kv(docs, ns, fn, 5, False, "my-kv-token", "tok", "my-raft-secret", "rs", sa_tokens=False,
                 tls_secret="my-kv-tls", credentials_secret="my-kv-credentials")
        check_kv_rbac(docs, fn, ns, False, f"{fn}-kv")
        check_network_policy(docs, fn, [{"namespaceSelector": {"matchLabels": {"gasoline.dev/pools": "true"}}}],
                             [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}])
        check_operator_network_policy(
            docs, fn, [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
                       {"ipBlock": {"cidr": "10.1.2.0/24"}}])
        check_secret(docs, ns, False)
        check_sample(docs, ns, a.example, True)
        gateway = [f"{d['kind']}/{d['metadata']['name']}" for d in docs if d["metadata"]["name"] == f"{fn}-gateway"]
        check(not gateway, f"gateway.enabled=false renders no gateway: {gateway}")
        dep = one(docs, "Deployment", f"{fn}-operator")
        if dep:
            c = dep["spec"]["template"]["spec"]["containers"][0]
            check(c["args"][-1] == "--log-level=debug", f"operator extraArgs {c['args']}")
            check("--allowed-kv-address=kv-b.example:7400" in c["args"], f"operator allowedKvAddresses {c['args']}")
            check(token_volume(dep["spec"]["template"]["spec"]).get("secretName") == "my-kv-token", "operator token Secret")
            aff = dep["spec"]["template"]["spec"].get("affinity", {}).get("podAntiAffinity", {})
            check("requiredDuringSchedulingIgnoredDuringExecution" in aff, "operator hard anti-affinity")
        sts = one(docs, "StatefulSet", f"{fn}-kv")
        if sts:
            check("affinity" not in sts["spec"]["template"]["spec"], "kv podAntiAffinity=none renders no affinity")
        for d in docs:
            if d["kind"] != "CustomResourceDefinition":
                check(d["metadata"]["labels"].get("team") == "gasoline", f"{d['kind']}/{d['metadata']['name']}: commonLabels")
    elif a.scenario == "external":
        fn = rel if "gasoline" in rel else f"{rel}-gasoline"
        check_operator(docs, ns, fn, "kv-a.example:7400,kv-b.example:7400", f"gasoline/gasoline-worker:{v}",
                       f"gasoline/gasoline-operator:{v}", 2, f"{fn}-operator", tls_secret=None)
        check(not by_kind(docs, "StatefulSet") and not by_kind(docs, "PodDisruptionBudget"), "kv.enabled=false renders no kv")
        kv_identity = [d for d in docs if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
                       and d["metadata"]["name"] in (f"{fn}-kv", f"{fn}-kv-token-review")]
        check(not kv_identity, f"kv.enabled=false renders the kv's ServiceAccount or RBAC: {kv_identity}")
        nps = sorted(d["metadata"]["name"] for d in by_kind(docs, "NetworkPolicy"))
        check(nps == [f"{fn}-gateway", f"{fn}-operator"],
              f"kv.enabled=false renders the operator's and the gateway's NetworkPolicies only: {nps}")
        check_gateway(docs, fn, "kv-a.example:7400,kv-b.example:7400", f"gasoline/gasoline-gateway:{v}", None,
                      [{"namespaceSelector": {}}])
        check_operator_network_policy(docs, fn, [{"namespaceSelector": {}}])
        check(sorted(s["metadata"]["name"] for s in by_kind(docs, "Service")) == [f"{fn}-gateway", f"{fn}-operator-metrics"],
              "only the gateway's and the operator's metrics Services")
        check_secret(docs, ns, True)
        print("ok: kv.enabled=false renders no kv and passes operator.kvAddress")
    elif a.scenario == "norbac":
        fn = rel if "gasoline" in rel else f"{rel}-gasoline"
        for k in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount"):
            check(not by_kind(docs, k), f"{k} rendered with rbac.create/serviceAccount.create false")
        check(not by_kind(docs, "NetworkPolicy"), "a NetworkPolicy rendered with networkPolicy.enabled=false")
        check_gateway(docs, fn, f"{fn}-kv.{ns}.svc:7400", f"gasoline/gasoline-gateway:{v}", f"{fn}-kv-tls", None)
        check_operator(docs, ns, fn, f"{fn}-kv.{ns}.svc:7400", f"gasoline/gasoline-worker:{v}",
                       f"gasoline/gasoline-operator:{v}", 2, "existing-sa", pool_network_policy=False)
        check_kv(docs, ns, fn, 3, True, "gasoline-kv-token", "token", f"{fn}-kv-raft", "secret",
                 sa_name="existing-kv-sa")
        print("ok: no RBAC, no ServiceAccount, no NetworkPolicy; the operator and the kv use the named ServiceAccounts")
    elif a.scenario == "monitoring":
        fn = rel if "gasoline" in rel else f"{rel}-gasoline"
        chart_dir = os.path.dirname(os.path.dirname(os.path.abspath(a.example)))
        check_monitoring(docs, fn, ns, chart_dir, os.path.join(chart_dir, "..", "..", "docs", "runbook.md"))
    if a.scenario != "monitoring":
        for k in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
            check(not by_kind(docs, k), f"{k} rendered while monitoring is off (the default)")
    if errors:
        print(f"FAIL: {len(errors)} problem(s) in scenario {a.scenario}:", file=sys.stderr)
        for e in errors:
            print(f"  - {e}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: scenario {a.scenario}")


if __name__ == "__main__":
    main()
