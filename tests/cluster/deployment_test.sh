#!/usr/bin/env bash
# shellcheck disable=SC2154  # ns is set by new_namespace (lib.sh)
# A Deployment applied with kubectl becomes a ReplicaSet and Running pods on the kwok node
# (controller-manager, scheduler and kwok all take part).
source "$(dirname "$0")/lib.sh"
new_namespace deploy
kubectl -n "$ns" apply -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.invalid/web:1
        resources:
          requests: {cpu: 50m, memory: 16Mi}
YAML

wait_until "3 Running pods" 90 bash -c "[ \"\$(kubectl -n '$ns' get pods -l app=web --field-selector=status.phase=Running -o name | wc -l)\" -eq 3 ]"
wait_until "deployment available (3/3 ready)" 60 bash -c "[ \"\$(kubectl -n '$ns' get deploy web -o jsonpath='{.status.readyReplicas}')\" = 3 ]"

rs="$(kubectl -n "$ns" get rs -l app=web -o name | wc -l)"
[ "$rs" -eq 1 ] || fail "want 1 ReplicaSet, got ${rs}"
nodes="$(kubectl -n "$ns" get pods -l app=web -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort -u)"
[ "$nodes" = kwok-node-0 ] || fail "pods should be scheduled on kwok-node-0, got: ${nodes}"
info "pods:"; kubectl -n "$ns" get pods -l app=web -o wide

# Scaling down removes pods (kwok's pod-delete stage finishes the deletion).
kubectl -n "$ns" scale deploy web --replicas=1 >/dev/null
wait_until "scaled down to 1 pod" 60 bash -c "[ \"\$(kubectl -n '$ns' get pods -l app=web -o name | wc -l)\" -eq 1 ]"
