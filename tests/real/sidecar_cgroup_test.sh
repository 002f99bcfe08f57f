#!/usr/bin/env bash
# gasoline-worker in a pod on the real node reads its own container's CPU from the real cgroup: it names
# the cgroup version it found (v1 on a v1 or hybrid host, v2 on a unified one), its CPU limit matches the
# pod spec and the kernel's cgroup (cfs quota / cpu.max) of that container, and /healthz reports a CPU
# value. The worker reaches the kv through the kv Service's DNS name (CoreDNS, kube-proxy).
. "$(dirname "$0")/lib.sh"
require_node
new_namespace real-cgroup

apply_kv
kc -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: worker}
spec:
  automountServiceAccountToken: false
  enableServiceLinks: false
  securityContext: {runAsNonRoot: true}
  containers:
  - name: worker
    image: gasoline/gasoline-worker:${IMAGE_TAG}
    imagePullPolicy: Never
    args: [--kv=kv.${ns}.svc.cluster.local:7400, --pool=real, --admin-listen=0.0.0.0:9500]
    ports: [{name: admin, containerPort: 9500}]
    readinessProbe: {httpGet: {path: /readyz, port: admin}, periodSeconds: 1}
    resources: {requests: {cpu: 100m, memory: 32Mi}, limits: {cpu: 300m, memory: 128Mi}}
    ${HARDENED}
YAML
wait_until "kv pod Ready" 60 pod_ready kv
wait_until "worker pod Ready (joined the kv through kv.${ns}.svc.cluster.local)" 60 pod_ready worker

start_line="$(kc -n "$ns" logs worker | grep -m1 'gasoline-worker starting' || true)"
[ -n "$start_line" ] || fail "no start line in the worker's log: $(kc -n "$ns" logs worker | head -5)"
info "worker: ${start_line}"
source_="$(echo "$start_line" | sed -n 's/.*"cpu_source":"\([^"]*\)".*/\1/p')"
limit="$(echo "$start_line" | sed -n 's/.*"cpu_limit_cores":\([0-9.]*\).*/\1/p')"
usage_file="$(echo "$start_line" | sed -n 's/.*"cpu_usage_file":"\([^"]*\)".*/\1/p')"

# What the host's kernel says about this container's cgroup.
pid="$(container_pid worker worker)" || true
[ -n "$pid" ] || fail "no running containerd task for the worker container"
if grep -q '^0::/kubepods' "/proc/$pid/cgroup" && ! grep -q ':cpu[,:]' "/proc/$pid/cgroup"; then
  expect=cgroup-v2
  cg="$(awk -F: '$1 == 0 { print $3 }' "/proc/$pid/cgroup")"
  read -r quota period <"$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)${cg}/cpu.max"
else
  expect=cgroup-v1
  cg="$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ { print $3 }' "/proc/$pid/cgroup")"
  dir="$(awk '$3 == "cgroup" && $4 ~ /(^|,)cpu(,|$)/ { print $2; exit }' /proc/self/mounts)${cg}"
  quota="$(cat "$dir/cpu.cfs_quota_us")"
  period="$(cat "$dir/cpu.cfs_period_us")"
fi
kernel_limit="$(awk -v q="$quota" -v p="$period" 'BEGIN { printf "%.3f", q / p }')"
info "host: container cgroup ${cg}: quota ${quota} / period ${period} = ${kernel_limit} cores"

[ "$source_" = "$expect" ] || fail "the worker reads '${source_}', the host has ${expect}"
awk -v a="$limit" -v b="$kernel_limit" 'BEGIN { exit !(a > 0 && (a - b < 0.001 && b - a < 0.001)) }' ||
  fail "the worker's CPU limit ${limit} is not the container's ${kernel_limit} cores (limits.cpu 300m)"
[ -n "$usage_file" ] || fail "the worker names no CPU usage file"

ip="$(kc -n "$ns" get pod worker -o jsonpath='{.status.podIP}')"
health() { in_node curl -sf --max-time 2 "http://${ip}:9500/healthz"; }
cpu_reported() { grep -q '"cpu":[0-9]' <<<"$(health)"; }
wait_until "worker /healthz reports a CPU value" 20 cpu_reported
info "worker /healthz: $(health)"
info "ok: the sidecar reads ${source_} (${usage_file}), limit ${limit} cores = the kernel's ${kernel_limit}"
