#!/usr/bin/env bash
# Each of our images starts as a pod on the real node: `--help` answers (exit 0, usage text), as the
# image's non-root user 65532 with a read-only root filesystem, no capabilities and the runtime's
# seccomp profile. A long-running gasoline-kv pod is checked from the host's /proc (uid, capabilities,
# read-only root mount) and answers through its pod IP, a ClusterIP and its Service DNS name.
. "$(dirname "$0")/lib.sh"
require_node
new_namespace real-pods
tag="$IMAGE_TAG"

help_pod() { # NAME IMAGE
  cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: main
    image: $2
    imagePullPolicy: Never
    args: [--help]
    ${HARDENED}
YAML
}

declare -A images=([kv]=gasoline/gasoline-kv [worker]=gasoline/gasoline-worker
  [operator]=gasoline/gasoline-operator [gateway]=gasoline/gasoline-gateway [example-app]=gasoline/example-app)
for n in "${!images[@]}"; do help_pod "help-$n" "${images[$n]}:${tag}" | kc -n "$ns" apply -f - >/dev/null; done
pod_done() { case "$(pod_phase "$1")" in Succeeded|Failed) return 0 ;; *) return 1 ;; esac; }
for n in "${!images[@]}"; do wait_until "help-$n (${images[$n]}:${tag}) finished" 60 pod_done "help-$n"; done
for n in "${!images[@]}"; do
  code="$(kc -n "$ns" get pod "help-$n" -o jsonpath='{.status.containerStatuses[0].state.terminated.exitCode}')"
  [ "$code" = 0 ] || { describe_pod "help-$n"; fail "help-$n exited with '${code}'"; }
  grep -q -i 'usage' <<<"$(kc -n "$ns" logs "help-$n")" || fail "help-$n printed no usage: $(kc -n "$ns" logs "help-$n" | head -5)"
done
info "ok: --help of ${!images[*]} answered in pods (runAsNonRoot, read-only root, no capabilities, RuntimeDefault seccomp)"

# A serving kv: probes, addresses, and what the kernel says about the process.
apply_kv
wait_until "kv pod Ready (readiness probe /metrics answered)" 60 pod_ready kv

pid="$(container_pid kv kv)" || true
[ -n "$pid" ] || fail "no running containerd task for the kv container"
uids="$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")"
gids="$(awk '/^Gid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")"
caps="$(awk '/^CapEff:/ { print $2 }' "/proc/$pid/status")"
capsb="$(awk '/^CapBnd:/ { print $2 }' "/proc/$pid/status")"
[ "$uids" = "65532 65532 65532 65532" ] || fail "kv runs with uids '${uids}', expected 65532"
[ "$gids" = "65532 65532 65532 65532" ] || fail "kv runs with gids '${gids}', expected 65532"
{ [ "$caps" = 0000000000000000 ] && [ "$capsb" = 0000000000000000 ]; } || fail "kv has capabilities: effective ${caps}, bounding ${capsb}"
root_opts="$(awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo")"
case ",${root_opts}," in *,ro,*) ;; *) fail "the kv container's root is mounted '${root_opts}', not read-only" ;; esac
grep -q '^Seccomp:[[:space:]]*2' "/proc/$pid/status" || fail "kv runs without a seccomp filter"
info "ok: kv (host pid ${pid}) runs as uid/gid 65532, no capabilities, root mounted ${root_opts}, seccomp filter on"

ip="$(kc -n "$ns" get pod kv -o jsonpath='{.status.podIP}')"
cip="$(kc -n "$ns" get service kv -o jsonpath='{.spec.clusterIP}')"
# (grep on captured output: with pipefail, `curl | grep -q` fails when grep exits first.)
metrics_at() { grep -q '^# TYPE' <<<"$(in_node curl -sf --max-time 2 "http://$1:9400/metrics")"; }
wait_until "kv /metrics through the pod IP ${ip}" 20 metrics_at "$ip"
wait_until "kv /metrics through the ClusterIP ${cip} (kube-proxy)" 30 metrics_at "$cip"
dns_metrics() { grep -q '^# TYPE' <<<"$(in_node_dns curl -sf --max-time 2 "http://kv.${ns}.svc.cluster.local:9400/metrics")"; }
wait_until "kv /metrics through kv.${ns}.svc.cluster.local (CoreDNS)" 30 dns_metrics
# Isolation, asked of the routing tables (nothing is sent): the node's namespace has no route off the
# machine (a pod's default route ends there), and the host drops the pod and Service CIDRs itself.
[ -z "$(in_node ip route show default)" ] || fail "the node's namespace has a default route: $(in_node ip route show default)"
if out="$(in_node ip route get 203.0.113.1 2>&1)"; then fail "the node's namespace routes off the machine: ${out}"; fi
grep -q unreachable <<<"$out" || fail "unexpected answer for a route off the machine: ${out}"
pod_route="$(nsenter --net="/proc/${pid}/ns/net" ip route get 203.0.113.1 2>&1 || true)"
grep -q "via ${GASOLINE_REAL_NODE_IP:-10.88.0.1} " <<<"$pod_route" || fail "the kv pod's route out is not via the node: ${pod_route}"
for cidr in "$ip" "$cip"; do
  grep -q '^blackhole' <<<"$(ip route show match "$cidr")" || fail "the host has no blackhole route covering ${cidr}: $(ip route show match "$cidr")"
done
info "ok: no default route in the node's namespace (${out}); pods route via the node; the host blackholes ${ip} and ${cip}"
# An image that is not imported: the pull goes to containerd's only registry host, a closed port on loopback.
kc -n "$ns" run pull --image="gasoline/not-imported:0" --image-pull-policy=Always >/dev/null
pull_failed() {
  pull_msg="$(kc -n "$ns" get pod pull -o jsonpath='{.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].state.waiting.message}')"
  case "$pull_msg" in ErrImagePull*|ImagePullBackOff*) return 0 ;; *) return 1 ;; esac
}
wait_until "a pull of a missing image fails" 30 pull_failed
pull_failed
grep -q '127\.0\.0\.1:9' <<<"$pull_msg" || fail "the pull did not go to 127.0.0.1:9: ${pull_msg}"
info "ok: pulls fail locally: ${pull_msg}"
no_upstream() { ! in_node_dns getent hosts example.com; }
no_upstream || fail "example.com resolved: CoreDNS must not forward anywhere"
info "ok: example.com does not resolve (no upstream DNS)"
