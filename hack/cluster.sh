#!/usr/bin/env bash
# A real local Kubernetes control plane for tests, built from the Go module proxy only.
# Run `hack/cluster.sh --help` for the subcommands; docs/cluster.md explains the details.
set -euo pipefail

# ---------------------------------------------------------------------------------------------
# Pinned versions (docs/cluster.md says why these). Overridable for experiments only.
K8S_VERSION="${GASOLINE_K8S_VERSION:-1.36.3}"
ETCD_VERSION="${GASOLINE_ETCD_VERSION:-3.6.16}"
KWOK_VERSION="${GASOLINE_KWOK_VERSION:-0.8.0}"
METRICS_SERVER_VERSION="${GASOLINE_METRICS_SERVER_VERSION:-0.8.0}"
HELM_VERSION="${GASOLINE_HELM_VERSION:-3.21.4}"

# Staging modules (k8s.io/api, k8s.io/client-go, ...) are published as v0.<minor>.<patch>.
K8S_MINOR="${K8S_VERSION#1.}"
K8S_MINOR="${K8S_MINOR%%.*}"
K8S_STAGING_VERSION="0.${K8S_VERSION#1.}"

CACHE_DIR="${GASOLINE_CACHE:-$HOME/.cache/gasoline}/k8s/${K8S_VERSION}"
BIN_DIR="${CACHE_DIR}/bin"
SRC_DIR="${CACHE_DIR}/src"
BUILD_LOG_DIR="${CACHE_DIR}/logs"
GO_JOBS="${GASOLINE_GO_JOBS:-2}"

STATE_DIR="${GASOLINE_CLUSTER_DIR:-/tmp/gasoline-cluster}"
HOST=127.0.0.1
APISERVER_PORT="${GASOLINE_APISERVER_PORT:-16443}"
ETCD_CLIENT_PORT="${GASOLINE_ETCD_CLIENT_PORT:-12379}"
ETCD_PEER_PORT="${GASOLINE_ETCD_PEER_PORT:-12380}"
KCM_PORT="${GASOLINE_KCM_PORT:-16257}"
SCHEDULER_PORT="${GASOLINE_SCHEDULER_PORT:-16259}"
KWOK_PORT="${GASOLINE_KWOK_PORT:-16280}"
METRICS_SERVER_PORT="${GASOLINE_METRICS_SERVER_PORT:-16281}"
SERVICE_CIDR="${GASOLINE_SERVICE_CIDR:-10.96.0.0/16}"
CLUSTER_CIDR="${GASOLINE_CLUSTER_CIDR:-10.244.0.0/16}"
UP_TIMEOUT="${GASOLINE_UP_TIMEOUT:-180}"
HPA_SYNC_PERIOD="${GASOLINE_HPA_SYNC_PERIOD:-2s}"

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MANIFEST_DIR="${HACK_DIR}/cluster"

log() { echo "cluster: $*"; }
die() { echo "cluster: error: $*" >&2; exit 1; }

usage() {
  cat <<EOF
Usage: hack/cluster.sh <command> [options]

A local Kubernetes control plane for tests, built from the Go module proxy (no prebuilt
binaries). Everything listens on ${HOST} only.

Commands:
  build            Build the pinned binaries into ${BIN_DIR}
                   (skips what is already built; needs the Go module proxy on a cold cache).
  up --minimal     Start etcd + kube-apiserver (the envtest shape). Default.
  up --full        Also start kube-controller-manager, kube-scheduler, kwok (fake nodes, simulated
                   pod CPU) and metrics-server behind the aggregation layer, so a real HPA scales.
  env              Print 'export KUBECONFIG=...' (and PATH with the built binaries).
  status           Show which components run and whether the apiserver is ready.
  restart NAME     Stop one component (e.g. kube-apiserver) and start it again with the same flags.
  down             Stop what 'up' started (by pid) and remove the state dir.
  versions         Print the pinned versions.
  built            Exit 0 when everything is built, else say so (used by the tests).
  -h, --help       This help.

Versions: kubernetes v${K8S_VERSION} (staging v${K8S_STAGING_VERSION}), etcd v${ETCD_VERSION},
kwok v${KWOK_VERSION}, metrics-server v${METRICS_SERVER_VERSION}, helm v${HELM_VERSION}.

Environment:
  GASOLINE_CACHE          build cache root (default \$HOME/.cache/gasoline)
  GASOLINE_CLUSTER_DIR    state dir: certs, kubeconfig, pids, logs, etcd data (default /tmp/gasoline-cluster)
  GASOLINE_GO_JOBS        go build -p (default 2)
  GASOLINE_BUILD_KUBECTL  1 = build kubectl even if one is on PATH
  GASOLINE_UP_TIMEOUT     seconds 'up' waits for readiness (default 180)
  GASOLINE_APISERVER_PORT (16443)  GASOLINE_ETCD_CLIENT_PORT (12379)  GASOLINE_ETCD_PEER_PORT (12380)
  GASOLINE_KCM_PORT (16257)  GASOLINE_SCHEDULER_PORT (16259)  GASOLINE_KWOK_PORT (16280)
  GASOLINE_METRICS_SERVER_PORT (16281)
EOF
}

# ---------------------------------------------------------------------------------------------
# build

# Everything is built with the installed Go, without cgo, stripped and trimmed.
go_env() {
  export GOTOOLCHAIN=local CGO_ENABLED=0 GO111MODULE=on
  export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
}

# stamp_ok NAME KEY BINARIES...: true when NAME was built with KEY and all binaries exist.
stamp_ok() {
  local name="$1" key="$2"; shift 2
  [ -f "${BIN_DIR}/.${name}.stamp" ] || return 1
  [ "$(cat "${BIN_DIR}/.${name}.stamp")" = "$key" ] || return 1
  local b
  for b in "$@"; do [ -x "${BIN_DIR}/$b" ] || return 1; done
}

# The proxy check runs only when something must be built. It asks for one module's metadata
# (answered from the module cache when warm) under a timeout.
PROXY_CHECKED=0
check_proxy() {
  [ "$PROXY_CHECKED" = 1 ] && return 0
  local tmp out
  tmp="$(mktemp -d)"
  if ! out="$(cd "$tmp" && timeout 60 go list -m -json "k8s.io/kubernetes@v${K8S_VERSION}" 2>&1)"; then
    rm -rf "$tmp"
    echo "$out" | tail -5 >&2
    die "cannot reach the Go module proxy (GOPROXY=$(go env GOPROXY)) to fetch k8s.io/kubernetes@v${K8S_VERSION}.
       The cluster binaries are built from Go modules only. Check the network / GOPROXY, or run
       'hack/cluster.sh build' once on a machine whose GOMODCACHE ($(go env GOMODCACHE)) it can reuse."
  fi
  rm -rf "$tmp"
  PROXY_CHECKED=1
}

# run_logged NAME CMD...: runs CMD with its output into the build log of NAME.
run_logged() {
  local name="$1"; shift
  if ! "$@" >>"${BUILD_LOG_DIR}/${name}.log" 2>&1; then
    echo "FAILED" >&2
    echo "----- last lines of ${BUILD_LOG_DIR}/${name}.log -----" >&2
    tail -30 "${BUILD_LOG_DIR}/${name}.log" >&2
    die "building ${name} failed (command: $*)"
  fi
}

# Wrapper modules live in the cache (never in the repo); their go.mod/go.sum are generated here.
# wrapper_ready NAME KEY: true when the wrapper NAME was generated for KEY.
wrapper_ready() { [ -f "${SRC_DIR}/$1/.ready" ] && [ "$(cat "${SRC_DIR}/$1/.ready")" = "$2" ]; }

# prepare_wrapper NAME KEY FUNCTION: (re)generates the wrapper NAME by running FUNCTION DIR in
# an empty module, unless it is ready for KEY. Prints one progress line.
prepare_wrapper() {
  local name="$1" key="$2" fn="$3" dir="${SRC_DIR}/$1" start=$SECONDS
  wrapper_ready "$name" "$key" && return 0
  check_proxy
  printf 'cluster: preparing the %s wrapper module (go get)... ' "$name"
  rm -rf "$dir"
  mkdir -p "$dir"
  : >"${BUILD_LOG_DIR}/${name}-wrapper.log"
  run_logged "${name}-wrapper" bash -c "cd '$dir' && go mod init 'local/gasoline-${name}'"
  "$fn" "$dir"
  echo "$key" >"$dir/.ready"
  echo "done in $((SECONDS - start))s"
}

# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging/...;
# Go ignores a dependency's replace directives, so the wrapper replaces each one with the
# published v0.<minor>.<patch>. The list is derived from the release's own go.mod.
# shellcheck disable=SC2317  # run by name through prepare_wrapper
k8s_wrapper() {
  local dir="$1" gomod mods=() args=() m
  gomod="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" |
    sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  [ -f "$gomod" ] || die "could not download the go.mod of k8s.io/kubernetes@v${K8S_VERSION}"
  mapfile -t mods < <(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$gomod" | sort -u)
  [ "${#mods[@]}" -gt 10 ] || die "found only ${#mods[@]} staging modules in $gomod"
  for m in "${mods[@]}"; do args+=("-replace=${m}=${m}@v${K8S_STAGING_VERSION}"); done
  (cd "$dir" && go mod edit "${args[@]}")
  local pkgs=() b
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    pkgs+=("k8s.io/kubernetes/cmd/${b}@v${K8S_VERSION}")
  done
  run_logged kubernetes-wrapper bash -c "cd '$dir' && go get ${pkgs[*]}"
}

# etcd: `go install go.etcd.io/etcd/server/v3@...` fails on the module's own replace directives;
# from a wrapper module they are ignored and the sibling modules resolve to published tags.
# shellcheck disable=SC2317  # run by name through prepare_wrapper
etcd_wrapper() {
  run_logged etcd-wrapper bash -c "cd '$1' && go get go.etcd.io/etcd/server/v3@v${ETCD_VERSION}"
}

# kwok and helm in ONE module: Go's minimal version selection gives them one set of k8s.io/*
# libraries (the newest either requires, v0.36.x), compiled once instead of twice.
# shellcheck disable=SC2317  # run by name through prepare_wrapper
tools_wrapper() {
  run_logged tools-wrapper bash -c "cd '$1' && go get \
    sigs.k8s.io/kwok/cmd/kwok@v${KWOK_VERSION} sigs.k8s.io/kwok/cmd/kwokctl@v${KWOK_VERSION} \
    helm.sh/helm/v3/cmd/helm@v${HELM_VERSION}"
}

# metrics-server v0.8.0 keeps its own module: built against the k8s.io v0.36 libraries of the
# tools module it compiles but panics at start ("cannot find model definition for
# io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics"), so it gets the versions it was released with.
# shellcheck disable=SC2317  # run by name through prepare_wrapper
metrics_server_wrapper() {
  run_logged metrics-server-wrapper bash -c "cd '$1' && go get \
    sigs.k8s.io/metrics-server/cmd/metrics-server@v${METRICS_SERVER_VERSION}"
}

k8s_ldflags() {
  local p flags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X ${p}.gitVersion=v${K8S_VERSION} -X ${p}.gitMajor=1 -X ${p}.gitMinor=${K8S_MINOR}"
    flags+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=${BUILD_DATE}"
  done
  echo "$flags"
}

# build_one NAME KEY WRAPPER LDFLAGS PACKAGE: builds BIN_DIR/NAME unless its stamp says KEY.
build_one() {
  local name="$1" key="$2" wrapper="$3" ldflags="$4" pkg="$5" start
  if stamp_ok "$name" "$key" "$name"; then
    log "${name} (${key}) already built"
    return 0
  fi
  printf 'cluster: building %s... ' "$name"
  start=$SECONDS
  : >"${BUILD_LOG_DIR}/${name}.log"
  run_logged "$name" bash -c "cd '${SRC_DIR}/${wrapper}' && go build -p ${GO_JOBS} -trimpath -ldflags '${ldflags}' -o '${BIN_DIR}/${name}.tmp' '${pkg}'"
  mv -f "${BIN_DIR}/${name}.tmp" "${BIN_DIR}/${name}"
  echo "$key" >"${BIN_DIR}/.${name}.stamp"
  echo "done in $((SECONDS - start))s"
}

# kwok's controller needs its lifecycle stages in its config (kwokctl embeds them). They are
# taken from the kwok module that was just built (not copied into the repo): node-initialize,
# node-heartbeat-with-lease, pod-ready, pod-complete, pod-delete, as kwokctl uses by default.
prepare_kwok_stages() {
  local out="${CACHE_DIR}/share/kwok-stages.yaml" key="kwok v${KWOK_VERSION}" dir f
  if [ -f "$out" ] && [ "$(head -1 "$out")" = "# $key" ]; then return 0; fi
  dir="$(cd "${SRC_DIR}/tools" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  mkdir -p "${CACHE_DIR}/share"
  {
    echo "# $key"
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
      pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      [ -f "$dir/kustomize/stage/$f" ] || die "kwok stage $f not found in $dir"
      echo "---"
      cat "$dir/kustomize/stage/$f"
    done
  } >"$out.tmp"
  mv "$out.tmp" "$out"
}

# kubectl is built when the machine has none, or when its kubectl is outside the supported
# version skew (+/-1 minor) of the pinned Kubernetes, or when GASOLINE_BUILD_KUBECTL=1.
need_kubectl() {
  [ "${GASOLINE_BUILD_KUBECTL:-0}" = 1 ] && return 0
  [ -x "${BIN_DIR}/kubectl" ] && return 0
  local k minor
  k="$(command -v kubectl 2>/dev/null || true)"
  [ -n "$k" ] || return 0
  minor="$("$k" version --client -o json 2>/dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -1)"
  [ -n "$minor" ] || return 0
  [ $((minor - K8S_MINOR)) -gt 1 ] || [ $((K8S_MINOR - minor)) -gt 1 ]
}

cmd_build() {
  command -v go >/dev/null || die "Go is not installed (Go >= 1.26 is needed)"
  go_env
  mkdir -p "$BIN_DIR" "$SRC_DIR" "$BUILD_LOG_DIR"
  BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local total_start=$SECONDS b
  log "go $(go env GOVERSION), GOMODCACHE=$(go env GOMODCACHE), go build -p ${GO_JOBS}, into ${BIN_DIR}"

  # Kubernetes control plane (and kubectl when needed) from k8s.io/kubernetes.
  local k8s_key="kubernetes v${K8S_VERSION}" k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler)
  if need_kubectl; then k8s_bins+=(kubectl); fi
  for b in "${k8s_bins[@]}"; do
    stamp_ok "$b" "$k8s_key" "$b" || { prepare_wrapper kubernetes "$k8s_key" k8s_wrapper; break; }
  done
  for b in "${k8s_bins[@]}"; do
    build_one "$b" "$k8s_key" kubernetes "$(k8s_ldflags)" "k8s.io/kubernetes/cmd/$b"
  done

  # etcd.
  local etcd_key="etcd v${ETCD_VERSION}"
  stamp_ok etcd "$etcd_key" etcd || prepare_wrapper etcd "$etcd_key" etcd_wrapper
  build_one etcd "$etcd_key" etcd "-s -w" go.etcd.io/etcd/server/v3

  # metrics-server (its version comes from client-go's version package, as in its Makefile).
  local ms_key="metrics-server v${METRICS_SERVER_VERSION}"
  stamp_ok metrics-server "$ms_key" metrics-server || prepare_wrapper metrics-server "$ms_key" metrics_server_wrapper
  build_one metrics-server "$ms_key" metrics-server \
    "-s -w -X k8s.io/client-go/pkg/version.gitVersion=v${METRICS_SERVER_VERSION} -X k8s.io/client-go/pkg/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.buildDate=${BUILD_DATE}" \
    sigs.k8s.io/metrics-server/cmd/metrics-server

  # kwok, kwokctl, helm (kwok's version is a constant in its source).
  local tools_key="kwok v${KWOK_VERSION} helm v${HELM_VERSION}"
  for b in kwok kwokctl helm; do
    stamp_ok "$b" "$tools_key" "$b" || { prepare_wrapper tools "$tools_key" tools_wrapper; break; }
  done
  build_one kwok "$tools_key" tools "-s -w" sigs.k8s.io/kwok/cmd/kwok
  build_one kwokctl "$tools_key" tools "-s -w" sigs.k8s.io/kwok/cmd/kwokctl
  build_one helm "$tools_key" tools \
    "-s -w -X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    helm.sh/helm/v3/cmd/helm
  prepare_kwok_stages

  log "all binaries in ${BIN_DIR} ($((SECONDS - total_start))s)"
}

# ---------------------------------------------------------------------------------------------
# up / down / env / status

PKI="${STATE_DIR}/pki"
PIDS="${STATE_DIR}/pids"
LOGS="${STATE_DIR}/logs"
KUBECONFIG_PATH="${STATE_DIR}/kubeconfig"
NODE_NAME="${GASOLINE_KWOK_NODE:-kwok-node-0}"
MINIMAL_COMPONENTS=(etcd kube-apiserver)
FULL_COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok metrics-server)

kubectl_bin() {
  if [ -x "${BIN_DIR}/kubectl" ]; then echo "${BIN_DIR}/kubectl"; return; fi
  command -v kubectl 2>/dev/null || die "no kubectl: run 'hack/cluster.sh build' (it builds one when the machine lacks it)"
}
kc() { "$(kubectl_bin)" --kubeconfig="${KUBECONFIG_PATH}" "$@"; }

require_built() {
  local b missing=()
  for b in "$@"; do [ -x "${BIN_DIR}/$b" ] || missing+=("$b"); done
  [ ${#missing[@]} -eq 0 ] || die "not built: ${missing[*]} (in ${BIN_DIR}). Run 'hack/cluster.sh build' first."
}

# --- certificates (openssl, EC P-256; everything valid for 127.0.0.1 only) ---
new_key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; chmod 600 "$1"; }

new_ca() { # NAME CN
  new_key "${PKI}/$1.key"
  openssl req -x509 -new -key "${PKI}/$1.key" -subj "/CN=$2" -days 3650 -out "${PKI}/$1.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

new_cert() { # NAME CA SUBJECT EXTKEYUSAGE [SAN]
  local name="$1" ca="$2" subj="$3" eku="$4" san="${5:-}" ext="${PKI}/$1.ext"
  new_key "${PKI}/${name}.key"
  openssl req -new -key "${PKI}/${name}.key" -subj "$subj" -out "${PKI}/${name}.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=${eku}"
    [ -z "$san" ] || echo "subjectAltName=${san}"
  } >"$ext"
  openssl x509 -req -in "${PKI}/${name}.csr" -CA "${PKI}/${ca}.crt" -CAkey "${PKI}/${ca}.key" \
    -set_serial "0x$(openssl rand -hex 12)" -days 3650 -extfile "$ext" -out "${PKI}/${name}.crt" 2>/dev/null
  rm -f "${PKI}/${name}.csr" "$ext"
}

make_pki() {
  mkdir -p "$PKI"
  new_ca ca gasoline-ca
  new_cert apiserver ca "/CN=kube-apiserver" serverAuth \
    "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  new_cert admin ca "/O=system:masters/CN=kubernetes-admin" clientAuth
  new_cert local-serving ca "/CN=gasoline-local-serving" serverAuth \
    "IP:127.0.0.1,DNS:localhost,DNS:metrics-server.kube-system.svc,DNS:metrics-server.kube-system.svc.cluster.local"
  new_ca front-proxy-ca gasoline-front-proxy-ca
  new_cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" clientAuth
  new_key "${PKI}/sa.key"
  openssl ec -in "${PKI}/sa.key" -pubout -out "${PKI}/sa.pub" 2>/dev/null
}

write_kubeconfig() {
  cat >"${KUBECONFIG_PATH}" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: gasoline
  cluster:
    server: https://${HOST}:${APISERVER_PORT}
    certificate-authority: ${PKI}/ca.crt
users:
- name: gasoline-admin
  user:
    client-certificate: ${PKI}/admin.crt
    client-key: ${PKI}/admin.key
contexts:
- name: gasoline
  context:
    cluster: gasoline
    user: gasoline-admin
    namespace: default
current-context: gasoline
EOF
  chmod 600 "${KUBECONFIG_PATH}"
}

# --- processes ---
pid_of() { # NAME -> pid if its pid file names a live process of ours
  local f="${PIDS}/$1.pid" pid
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && alive "$pid" || return 1
  # Guard against pid reuse: the process must be NAME and use this state dir in its arguments
  # (data dir, certs or kubeconfig), whichever cache its binary came from.
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  case "${cmd%% *}" in */"$1"|"$1") ;; *) return 1 ;; esac
  case "$cmd" in *" --"*"=${STATE_DIR}/"*) ;; *) return 1 ;; esac
  echo "$pid"
}

start_proc() { # NAME ARGS...  (binary from BIN_DIR; own session, output to logs/NAME.log)
  local name="$1"; shift
  printf '%s\0' "$@" >"${PIDS}/${name}.args"  # for 'restart'
  setsid "${BIN_DIR}/${name}" "$@" >>"${LOGS}/${name}.log" 2>&1 </dev/null &
  echo $! >"${PIDS}/${name}.pid"
}

port_free() { ! (exec 3<>"/dev/tcp/${HOST}/$1") 2>/dev/null; }

# wait_for DESCRIPTION DEADLINE_EPOCH COMMAND...: polls COMMAND until it succeeds, printing
# progress; on timeout shows the logs of the components that died or the last log lines.
wait_for() {
  local what="$1" deadline="$2" n=0 start=$SECONDS; shift 2
  printf 'cluster: waiting for %s' "$what"
  until "$@" >/dev/null 2>&1; do
    check_alive
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo " TIMEOUT"
      show_logs
      die "timed out waiting for ${what} (GASOLINE_UP_TIMEOUT=${UP_TIMEOUT}s)"
    fi
    n=$((n + 1))
    [ $((n % 10)) -eq 0 ] && printf '.'
    sleep 0.2
  done
  echo " ok ($((SECONDS - start))s)"
}

STARTED=()
check_alive() {
  local c
  for c in "${STARTED[@]}"; do
    if ! pid_of "$c" >/dev/null; then
      echo " FAILED"
      echo "----- ${c} exited; last lines of ${LOGS}/${c}.log -----" >&2
      tail -25 "${LOGS}/${c}.log" >&2 || true
      die "${c} exited during startup (logs in ${LOGS}; 'hack/cluster.sh down' cleans up)"
    fi
  done
}

show_logs() {
  local c
  for c in "${STARTED[@]}"; do
    echo "----- last lines of ${LOGS}/${c}.log -----" >&2
    tail -8 "${LOGS}/${c}.log" >&2 || true
  done
}

curl_ok() { # URL EXPECTED [curl args]
  local url="$1" want="$2" got; shift 2
  got="$(curl -sS --max-time 2 "$@" "$url" 2>/dev/null)" || return 1
  [ "$got" = "$want" ]
}
# shellcheck disable=SC2317  # the checks below are run by name through wait_for
etcd_healthy() { curl -sS --max-time 2 "http://${HOST}:${ETCD_CLIENT_PORT}/health" 2>/dev/null | grep -q '"health":"true"'; }
# shellcheck disable=SC2317
apiserver_ready() {
  curl_ok "https://${HOST}:${APISERVER_PORT}/readyz" ok --cacert "${PKI}/ca.crt" --cert "${PKI}/admin.crt" --key "${PKI}/admin.key"
}
# shellcheck disable=SC2317
component_healthy() { curl_ok "https://${HOST}:$1/healthz" ok -k; }
# shellcheck disable=SC2317
node_ready() {
  [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
# shellcheck disable=SC2317
metrics_api_available() {
  [ "$(kc get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}')" = True ] &&
    kc get --raw "/apis/metrics.k8s.io/v1beta1/nodes/${NODE_NAME}"
}

running_components() {
  local c out=()
  for c in "${FULL_COMPONENTS[@]}"; do pid_of "$c" >/dev/null && out+=("$c"); done
  echo "${out[*]:-}"
}

cmd_up() {
  local mode=minimal
  while [ $# -gt 0 ]; do
    case "$1" in
      --minimal) mode=minimal ;;
      --full) mode=full ;;
      -h|--help) usage; return 0 ;;
      *) die "up: unknown option '$1' (use --minimal or --full)" ;;
    esac
    shift
  done
  local comps=("${MINIMAL_COMPONENTS[@]}")
  [ "$mode" = full ] && comps=("${FULL_COMPONENTS[@]}")
  require_built "${comps[@]}"
  [ "$mode" = minimal ] || [ -f "${CACHE_DIR}/share/kwok-stages.yaml" ] ||
    die "kwok stages missing in ${CACHE_DIR}/share: run 'hack/cluster.sh build'"
  command -v openssl >/dev/null || die "openssl is needed (apt-get install openssl)"
  command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
  local running
  running="$(running_components)"
  [ -z "$running" ] || die "a cluster is already running from ${STATE_DIR} (${running}); run 'hack/cluster.sh down' first"

  local p
  for p in "$APISERVER_PORT" "$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT"; do
    port_free "$p" || die "port ${HOST}:${p} is in use (another cluster? 'hack/cluster.sh down', or set GASOLINE_*_PORT)"
  done
  if [ "$mode" = full ]; then
    for p in "$KCM_PORT" "$SCHEDULER_PORT" "$KWOK_PORT" "$METRICS_SERVER_PORT"; do
      port_free "$p" || die "port ${HOST}:${p} is in use (set GASOLINE_*_PORT to move it)"
    done
  fi

  local t0=$SECONDS deadline=$(( $(date +%s) + UP_TIMEOUT ))
  check_state_dir
  rm -rf "$STATE_DIR"
  mkdir -p "$PKI" "$PIDS" "$LOGS" "${STATE_DIR}/etcd"
  chmod 700 "${STATE_DIR}/etcd"
  # If anything below fails, stop what was started (logs stay for inspection).
  trap up_failed EXIT
  echo "$mode" >"${STATE_DIR}/mode"
  log "up --${mode}: kubernetes v${K8S_VERSION}, state in ${STATE_DIR}"
  make_pki
  write_kubeconfig

  start_proc etcd \
    --name=gasoline --data-dir="${STATE_DIR}/etcd" \
    --listen-client-urls="http://${HOST}:${ETCD_CLIENT_PORT}" --advertise-client-urls="http://${HOST}:${ETCD_CLIENT_PORT}" \
    --listen-peer-urls="http://${HOST}:${ETCD_PEER_PORT}" --initial-advertise-peer-urls="http://${HOST}:${ETCD_PEER_PORT}" \
    --initial-cluster="gasoline=http://${HOST}:${ETCD_PEER_PORT}" \
    --unsafe-no-fsync=true --quota-backend-bytes=2147483648 --log-level=warn
  STARTED+=(etcd)
  wait_for "etcd (${HOST}:${ETCD_CLIENT_PORT})" "$deadline" etcd_healthy

  local aggregation=(
    --requestheader-client-ca-file="${PKI}/front-proxy-ca.crt"
    --requestheader-allowed-names=front-proxy-client
    --requestheader-username-headers=X-Remote-User
    --requestheader-group-headers=X-Remote-Group
    --requestheader-extra-headers-prefix=X-Remote-Extra-
    --proxy-client-cert-file="${PKI}/front-proxy-client.crt"
    --proxy-client-key-file="${PKI}/front-proxy-client.key"
  )
  start_proc kube-apiserver \
    --etcd-servers="http://${HOST}:${ETCD_CLIENT_PORT}" \
    --bind-address="${HOST}" --advertise-address="${HOST}" --secure-port="${APISERVER_PORT}" \
    --tls-cert-file="${PKI}/apiserver.crt" --tls-private-key-file="${PKI}/apiserver.key" \
    --client-ca-file="${PKI}/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="${PKI}/sa.pub" --service-account-signing-key-file="${PKI}/sa.key" \
    --service-cluster-ip-range="${SERVICE_CIDR}" \
    --authorization-mode=RBAC --allow-privileged=true \
    --disable-admission-plugins=ServiceAccount \
    --endpoint-reconciler-type=none \
    --profiling=false \
    "${aggregation[@]}"
  STARTED+=(kube-apiserver)
  wait_for "kube-apiserver /readyz (https://${HOST}:${APISERVER_PORT})" "$deadline" apiserver_ready

  if [ "$mode" = full ]; then
    local kcfg=(--kubeconfig="${KUBECONFIG_PATH}" --authentication-kubeconfig="${KUBECONFIG_PATH}"
      --authorization-kubeconfig="${KUBECONFIG_PATH}" --bind-address="${HOST}" --leader-elect=false)
    start_proc kube-controller-manager "${kcfg[@]}" --secure-port="${KCM_PORT}" \
      --cert-dir="${STATE_DIR}/kube-controller-manager" \
      --root-ca-file="${PKI}/ca.crt" --service-account-private-key-file="${PKI}/sa.key" \
      --cluster-signing-cert-file="${PKI}/ca.crt" --cluster-signing-key-file="${PKI}/ca.key" \
      --controllers='*' \
      --horizontal-pod-autoscaler-sync-period="${HPA_SYNC_PERIOD}" \
      --horizontal-pod-autoscaler-cpu-initialization-period=30s \
      --horizontal-pod-autoscaler-initial-readiness-delay=5s
    STARTED+=(kube-controller-manager)
    start_proc kube-scheduler "${kcfg[@]}" --secure-port="${SCHEDULER_PORT}" \
      --cert-dir="${STATE_DIR}/kube-scheduler"
    STARTED+=(kube-scheduler)

    { cat "${CACHE_DIR}/share/kwok-stages.yaml"; echo "---"; cat "${MANIFEST_DIR}/kwok-metrics.yaml"
      echo "---"; cat "${MANIFEST_DIR}/kwok-usage.yaml"; } >"${STATE_DIR}/kwok.yaml"
    mkdir -p "${STATE_DIR}/kwok-home"
    # HOME points into the state dir so a developer's ~/.kwok/kwok.yaml is not merged in.
    HOME="${STATE_DIR}/kwok-home" start_proc kwok \
      --kubeconfig="${KUBECONFIG_PATH}" --config="${STATE_DIR}/kwok.yaml" \
      --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
      --node-ip="${HOST}" --node-port="${KWOK_PORT}" --server-address="${HOST}:${KWOK_PORT}" \
      --tls-cert-file="${PKI}/local-serving.crt" --tls-private-key-file="${PKI}/local-serving.key" \
      --cidr="${CLUSTER_CIDR}" --node-lease-duration-seconds=40
    STARTED+=(kwok)
    start_proc metrics-server \
      --kubeconfig="${KUBECONFIG_PATH}" --authentication-kubeconfig="${KUBECONFIG_PATH}" \
      --authorization-kubeconfig="${KUBECONFIG_PATH}" \
      --bind-address="${HOST}" --secure-port="${METRICS_SERVER_PORT}" \
      --tls-cert-file="${PKI}/local-serving.crt" --tls-private-key-file="${PKI}/local-serving.key" \
      --kubelet-preferred-address-types=InternalIP --kubelet-use-node-status-port \
      --kubelet-certificate-authority="${PKI}/ca.crt" \
      --metric-resolution=10s --kubelet-request-timeout=5s
    STARTED+=(metrics-server)

    sed "s/@NODE_NAME@/${NODE_NAME}/g" "${MANIFEST_DIR}/node.yaml" | kc apply -f - >/dev/null
    sed -e "s/@PORT@/${METRICS_SERVER_PORT}/g" -e "s/@CA_BUNDLE@/$(base64 -w0 "${PKI}/ca.crt")/" \
      "${MANIFEST_DIR}/metrics-server.yaml" | kc apply -f - >/dev/null

    wait_for "kube-controller-manager /healthz" "$deadline" component_healthy "$KCM_PORT"
    wait_for "kube-scheduler /healthz" "$deadline" component_healthy "$SCHEDULER_PORT"
    wait_for "kwok node ${NODE_NAME} Ready" "$deadline" node_ready
    wait_for "metrics API (v1beta1.metrics.k8s.io, node metrics)" "$deadline" metrics_api_available
  fi
  trap - EXIT
  log "up --${mode} ready in $((SECONDS - t0))s; use: eval \"\$(hack/cluster.sh env)\""
}

# shellcheck disable=SC2317  # runs from the EXIT trap of cmd_up
up_failed() {
  local rc=$? i
  trap - EXIT
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop "${STARTED[$i]}" || true; done
  echo "cluster: up failed; stopped ${STARTED[*]:-nothing}; logs kept in ${LOGS}" >&2
  exit "$rc"
}

# Refuses to delete a directory that is not a cluster state dir (guards rm -rf).
check_state_dir() {
  case "$STATE_DIR" in
    /|"$HOME"|"$HOME"/|"") die "refusing to use '${STATE_DIR}' as the cluster state dir" ;;
  esac
  [ -d "$STATE_DIR" ] || return 0
  [ -z "$(ls -A "$STATE_DIR")" ] || [ -d "${STATE_DIR}/pids" ] || [ -f "${STATE_DIR}/mode" ] ||
    die "${STATE_DIR} exists and is not a cluster state dir; remove it or set GASOLINE_CLUSTER_DIR"
}

# alive PID: running and not a zombie (our processes are reaped by init, which may take a while).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local st
  st="$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)"
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# stop NAMES...: SIGTERM to each running NAME at once, then waits for each to exit
# (SIGKILL after 15 s). Prints the names it stopped into STOPPED.
STOPPED=()
stop() {
  local name pid i pids=() names=()
  for name in "$@"; do
    pid="$(pid_of "$name")" || continue
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid"); names+=("$name")
  done
  for i in "${!pids[@]}"; do
    pid="${pids[$i]}"; name="${names[$i]}"
    wait_exit "$pid" 300 || {
      log "${name} (pid ${pid}) did not stop on SIGTERM in 15s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_exit "$pid" 100 || die "${name} (pid ${pid}) does not exit"
    }
    STOPPED+=("$name")
  done
}
wait_exit() { # PID TRIES (of 50 ms)
  local i
  for ((i = 0; i < $2; i++)); do alive "$1" || return 0; sleep 0.05; done
  return 1
}

cmd_down() {
  # Clients first (together), then the apiserver, etcd last.
  stop metrics-server kwok kube-scheduler kube-controller-manager
  stop kube-apiserver
  stop etcd
  if [ -d "$STATE_DIR" ]; then
    check_state_dir
    rm -rf "$STATE_DIR"
  fi
  log "down: stopped ${STOPPED[*]:-nothing}; removed ${STATE_DIR}"
}

# restart NAME: stop one component and start it again with the same arguments (tests of clients that must
# survive an API server restart). Waits for the apiserver to be ready again.
cmd_restart() {
  local name="${1:-}" args=()
  [ -n "$name" ] || die "restart: name a component (${FULL_COMPONENTS[*]})"
  [ -f "${PIDS}/${name}.args" ] || die "restart: ${name} was not started from ${STATE_DIR}"
  mapfile -d '' args <"${PIDS}/${name}.args"
  stop "$name"
  start_proc "$name" "${args[@]}"
  if [ "$name" = kube-apiserver ]; then
    wait_for "kube-apiserver /readyz after restart" "$(( $(date +%s) + UP_TIMEOUT ))" apiserver_ready
  fi
  log "restarted ${name} (pid $(cat "${PIDS}/${name}.pid"))"
}

cmd_env() {
  echo "export KUBECONFIG=${KUBECONFIG_PATH}"
  echo "export PATH=${BIN_DIR}:\$PATH"
}

cmd_status() {
  local c pid any=0
  echo "state dir: ${STATE_DIR} ($(cat "${STATE_DIR}/mode" 2>/dev/null || echo 'no cluster'))"
  for c in "${FULL_COMPONENTS[@]}"; do
    if pid="$(pid_of "$c")"; then printf '  %-24s running (pid %s)\n' "$c" "$pid"; any=1
    elif [ -f "${PIDS}/$c.pid" ]; then printf '  %-24s DEAD (see %s)\n' "$c" "${LOGS}/$c.log"
    fi
  done
  [ "$any" = 1 ] || { echo "  nothing running"; return 1; }
  if apiserver_ready; then echo "  apiserver https://${HOST}:${APISERVER_PORT} /readyz ok"
  else echo "  apiserver https://${HOST}:${APISERVER_PORT} NOT ready"; return 1; fi
}

# built: exit 0 when every binary 'up --full' and the tests need is built, else say what to run.
cmd_built() {
  local b missing=()
  for b in "${FULL_COMPONENTS[@]}" helm; do [ -x "${BIN_DIR}/$b" ] || missing+=("$b"); done
  [ -f "${CACHE_DIR}/share/kwok-stages.yaml" ] || missing+=(kwok-stages)
  if need_kubectl && [ ! -x "${BIN_DIR}/kubectl" ]; then missing+=(kubectl); fi
  if [ ${#missing[@]} -ne 0 ]; then
    echo "cluster: not built in ${BIN_DIR}: ${missing[*]}; run 'hack/cluster.sh build'" >&2
    return 1
  fi
  echo "cluster: all binaries built in ${BIN_DIR}"
}

cmd_versions() {
  cat <<EOF
kubernetes     v${K8S_VERSION} (staging modules v${K8S_STAGING_VERSION})
etcd           v${ETCD_VERSION}
kwok           v${KWOK_VERSION}
metrics-server v${METRICS_SERVER_VERSION}
helm           v${HELM_VERSION}
bin dir        ${BIN_DIR}
EOF
}

# ---------------------------------------------------------------------------------------------
# main

main() {
  local cmd="${1:-}"
  [ $# -gt 0 ] && shift
  case "$cmd" in
    build) cmd_build "$@" ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    env) cmd_env "$@" ;;
    status) cmd_status "$@" ;;
    restart) cmd_restart "$@" ;;
    versions) cmd_versions ;;
    built) cmd_built "$@" ;;
    -h|--help|help) usage ;;
    "") usage >&2; exit 2 ;;
    *) echo "cluster: unknown command '$cmd'" >&2; usage >&2; exit 2 ;;
  esac
}

main "$@"; exit $?  # exit here: bash must not read on if this file is edited while it runs
