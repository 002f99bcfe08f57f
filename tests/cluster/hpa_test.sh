#!/usr/bin/env bash
# shellcheck disable=SC2154  # ns is set by new_namespace (lib.sh)
# A real HPA (autoscaling/v2, CPU utilization) scales a Deployment up when the simulated CPU
# usage of its pods rises and down when it falls. Usage is simulated by kwok from the pod
# annotation kwok.x-k8s.io/usage-cpu, served to metrics-server, read by the HPA controller.
source "$(dirname "$0")/lib.sh"
new_namespace hpa
kubectl -n "$ns" apply -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: busy
spec:
  replicas: 1
  selector:
    matchLabels: {app: busy}
  template:
    metadata:
      labels: {app: busy}
      annotations: {kwok.x-k8s.io/usage-cpu: 10m}
    spec:
      containers:
      - name: busy
        image: registry.invalid/busy:1
        resources:
          requests: {cpu: 100m, memory: 16Mi}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: busy
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: busy}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 50}
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      policies: [{type: Pods, value: 4, periodSeconds: 5}]
    scaleDown:
      stabilizationWindowSeconds: 5
      policies: [{type: Percent, value: 100, periodSeconds: 5}]
YAML

hpa_state() {
  kubectl -n "$ns" get hpa busy -o jsonpath='{.status.currentMetrics[0].resource.current.averageUtilization}% replicas={.status.currentReplicas}->{.status.desiredReplicas}' 2>/dev/null
}
# Sets the simulated usage on every pod of the Deployment (new pods included), like a load
# generator would, then checks the replica count.
load_then_replicas() { # USAGE WANT_REPLICAS
  kubectl -n "$ns" annotate pods -l app=busy --overwrite "kwok.x-k8s.io/usage-cpu=$1" >/dev/null 2>&1 || true
  local r
  r="$(kubectl -n "$ns" get deploy busy -o jsonpath='{.status.replicas}')"
  if [ $((SECONDS - last_print)) -ge 5 ]; then info "hpa: $(hpa_state)"; last_print=$SECONDS; fi
  [ "$r" = "$2" ] && [ "$(kubectl -n "$ns" get pods -l app=busy --field-selector=status.phase=Running -o name | wc -l)" -eq "$2" ]
}
metrics_known() {
  [ -n "$(kubectl -n "$ns" get hpa busy -o jsonpath='{.status.currentMetrics[0].resource.current.averageUtilization}' 2>/dev/null)" ]
}
last_print=0

wait_until "pod Running" 90 bash -c "[ \"\$(kubectl -n '$ns' get pods -l app=busy --field-selector=status.phase=Running -o name | wc -l)\" -eq 1 ]"
wait_until "HPA reads CPU utilization from the metrics API" 120 metrics_known
info "hpa: $(hpa_state)"
util="$(kubectl -n "$ns" get hpa busy -o jsonpath='{.status.currentMetrics[0].resource.current.averageUtilization}')"
[ "$util" -le 30 ] || fail "idle utilization should be ~10%, got ${util}%"

info "raising simulated CPU usage to 200m per pod (200% of the request)"
wait_until "HPA scaled the Deployment up to 4 Running pods" 180 load_then_replicas 200m 4
info "hpa: $(hpa_state)"

info "dropping simulated CPU usage to 10m per pod"
wait_until "HPA scaled the Deployment down to 1 pod" 180 load_then_replicas 10m 1
info "hpa: $(hpa_state)"
kubectl -n "$ns" get hpa busy
