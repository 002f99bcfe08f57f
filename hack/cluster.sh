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
# The real node (build --real, up --real).
RUNC_VERSION="${GASOLINE_RUNC_VERSION:-1.5.3}"
CONTAINERD_VERSION="${GASOLINE_CONTAINERD_VERSION:-2.4.2}"
CNI_PLUGINS_VERSION="${GASOLINE_CNI_PLUGINS_VERSION:-1.10.0}"
COREDNS_VERSION="${GASOLINE_COREDNS_VERSION:-1.14.7}"

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
# The pod sandbox image, written from hack/cluster/pause.c; "localhost/" so it is never pulled.
PAUSE_IMAGE="localhost/gasoline/pause:1"

log() { echo "cluster: $*"; }
die() { echo "cluster: error: $*" >&2; exit 1; }

usage() {
  cat <<EOF
Usage: hack/cluster.sh <command> [options]

A local Kubernetes control plane for tests, built from the Go module proxy (no prebuilt
binaries). --minimal and --full listen on ${HOST} only; --real runs in its own network namespace.

Commands:
  build [--real]   Build the pinned binaries into ${BIN_DIR}
                   (skips what is already built; needs the Go module proxy on a cold cache).
                   --real also builds the real node: runc, containerd, CNI plugins, kubelet,
                   kube-proxy, CoreDNS and the pause image (needs gcc and libseccomp-dev).
  up --minimal     Start etcd + kube-apiserver (the envtest shape). Default.
  up --full        Also start kube-controller-manager, kube-scheduler, kwok (fake nodes, simulated
                   pod CPU) and metrics-server behind the aggregation layer, so a real HPA scales.
  up --real        A real node (root only): the --full control plane without kwok, plus containerd,
                   runc, kubelet, kube-proxy and CoreDNS, all in a network namespace of their own
                   with no route off the machine; imports the pause image and build/images/*.tar
                   (hack/images.sh). Clients run inside the namespace: 'exec'.
  exec CMD...      Run CMD inside the real node's network namespace (KUBECONFIG and PATH set).
  ctr ARGS...      Run the node's ctr (containerd client, namespace k8s.io).
  can-real         Exit 0 when this machine can run 'up --real'; else print why and exit 3.
  env              Print 'export KUBECONFIG=...' (and PATH with the built binaries).
  status           Show which components run and whether the apiserver is ready.
  restart NAME     Stop one component (e.g. kube-apiserver) and start it again with the same flags.
  down             Stop what 'up' started (by pid) and remove the state dir. After 'up --real' also
                   removes containers, mounts, cgroups, the namespace, the host routes and restores
                   the sysctls kubelet changed: the host is left as 'up' found it.
  versions         Print the pinned versions.
  built [--real]   Exit 0 when everything is built, else say so (used by the tests).
  -h, --help       This help.

Versions: kubernetes v${K8S_VERSION} (staging v${K8S_STAGING_VERSION}), etcd v${ETCD_VERSION},
kwok v${KWOK_VERSION}, metrics-server v${METRICS_SERVER_VERSION}, helm v${HELM_VERSION};
real node: runc v${RUNC_VERSION}, containerd v${CONTAINERD_VERSION}, CNI plugins v${CNI_PLUGINS_VERSION}, CoreDNS v${COREDNS_VERSION}.

Environment:
  GASOLINE_CACHE          build cache root (default \$HOME/.cache/gasoline)
  GASOLINE_CLUSTER_DIR    state dir: certs, kubeconfig, pids, logs, etcd data (default /tmp/gasoline-cluster)
  GASOLINE_GO_JOBS        go build -p (default 2)
  GASOLINE_BUILD_KUBECTL  1 = build kubectl even if one is on PATH
  GASOLINE_UP_TIMEOUT     seconds 'up' waits for readiness (default 180)
  GASOLINE_APISERVER_PORT (16443)  GASOLINE_ETCD_CLIENT_PORT (12379)  GASOLINE_ETCD_PEER_PORT (12380)
  GASOLINE_KCM_PORT (16257)  GASOLINE_SCHEDULER_PORT (16259)  GASOLINE_KWOK_PORT (16280)
  GASOLINE_METRICS_SERVER_PORT (16281)
  GASOLINE_IMAGES_DIR     images 'up --real' imports (default: build/images)
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
# CGO_ENABLED and BUILD_TAGS in the environment of the call apply to this build only.
build_one() {
  local name="$1" key="$2" wrapper="$3" ldflags="$4" pkg="$5" start
  if stamp_ok "$name" "$key" "$name"; then
    log "${name} (${key}) already built"
    return 0
  fi
  printf 'cluster: building %s... ' "$name"
  start=$SECONDS
  : >"${BUILD_LOG_DIR}/${name}.log"
  run_logged "$name" bash -c "cd '${SRC_DIR}/${wrapper}' && CGO_ENABLED=${CGO_ENABLED:-0} go build -p ${GO_JOBS} -trimpath -tags '${BUILD_TAGS:-}' -ldflags '${ldflags}' -o '${BIN_DIR}/${name}.tmp' '${pkg}'"
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

# --- the real node's parts (build --real) ---

# runc needs cgo and libseccomp (seccomp profiles); the other parts are static Go.
# shellcheck disable=SC2317  # run by name through prepare_wrapper
runc_wrapper() {
  run_logged runc-wrapper bash -c "cd '$1' && go get github.com/opencontainers/runc@v${RUNC_VERSION}"
}

# shellcheck disable=SC2317  # run by name through prepare_wrapper
containerd_wrapper() {
  local m=github.com/containerd/containerd/v2
  run_logged containerd-wrapper bash -c "cd '$1' && go get ${m}/cmd/containerd@v${CONTAINERD_VERSION} \
    ${m}/cmd/containerd-shim-runc-v2@v${CONTAINERD_VERSION} ${m}/cmd/ctr@v${CONTAINERD_VERSION}"
}

CNI_PLUGINS=(main/bridge main/loopback ipam/host-local)
# shellcheck disable=SC2317  # run by name through prepare_wrapper
cni_wrapper() {
  local p pkgs=()
  for p in "${CNI_PLUGINS[@]}"; do pkgs+=("github.com/containernetworking/plugins/plugins/${p}@v${CNI_PLUGINS_VERSION}"); done
  run_logged cni-wrapper bash -c "cd '$1' && go get ${pkgs[*]}"
}

# CoreDNS with only the plugins the node's Corefile uses, the way CoreDNS documents a custom build
# (a main that imports coremain and the chosen plugins): the full plugin set pulls in every cloud
# SDK and takes minutes longer to download and compile. No forward plugin: nothing upstream.
# In plugin-chain order (CoreDNS's plugin.cfg order): the Corefile's order does not matter.
COREDNS_PLUGINS=(bind ready health errors loadbalance cache kubernetes)
# shellcheck disable=SC2317  # run by name through prepare_wrapper
coredns_wrapper() {
  local dir="$1" p
  {
    echo "// Generated by hack/cluster.sh: CoreDNS with the plugins the local node needs."
    echo "package main"
    echo "import ("
    echo '  "github.com/coredns/coredns/core/dnsserver"'
    echo '  "github.com/coredns/coredns/coremain"'
    for p in "${COREDNS_PLUGINS[@]}"; do echo "  _ \"github.com/coredns/coredns/plugin/${p}\""; done
    echo ")"
    printf 'var directives = []string{'
    for p in "${COREDNS_PLUGINS[@]}"; do printf '"%s", ' "$p"; done
    echo '}'
    echo "func init() { dnsserver.Directives = directives }"
    echo "func main() { coremain.Run() }"
  } >"$dir/main.go"
  run_logged coredns-wrapper bash -c "cd '$dir' && go get github.com/coredns/coredns@v${COREDNS_VERSION} && go mod tidy"
}

# kubelet and kube-proxy come from the kubernetes wrapper; their extra dependencies are added to it
# once (own marker), so an existing control-plane wrapper is extended instead of regenerated.
k8s_node_deps() {
  local dir="${SRC_DIR}/kubernetes" key="$1"
  [ -f "$dir/.ready-node" ] && [ "$(cat "$dir/.ready-node")" = "$key" ] && return 0
  check_proxy
  printf 'cluster: adding kubelet and kube-proxy to the kubernetes wrapper module (go get)... '
  local start=$SECONDS
  : >"${BUILD_LOG_DIR}/kubernetes-node-wrapper.log"
  run_logged kubernetes-node-wrapper bash -c "cd '$dir' && go get k8s.io/kubernetes/cmd/kubelet@v${K8S_VERSION} k8s.io/kubernetes/cmd/kube-proxy@v${K8S_VERSION}"
  echo "$key" >"$dir/.ready-node"
  echo "done in $((SECONDS - start))s"
}

# The sandbox ("pause") image: a static C program from the repo, packaged by hack/images.sh.
build_pause() {
  local src="${MANIFEST_DIR}/pause.c" key out="${CACHE_DIR}/images/pause.tar"
  key="pause $(sha256sum "$src" | cut -c1-16) $(sha256sum "${HACK_DIR}/images.sh" | cut -c1-16)"
  if stamp_ok pause "$key" pause && [ -f "$out" ]; then log "pause (${key}) already built"; return 0; fi
  command -v gcc >/dev/null || die "gcc is needed for the pause binary (apt-get install build-essential)"
  gcc -static -O2 -Wall -Werror -o "${BIN_DIR}/pause.tmp" "$src" || die "compiling ${src} failed"
  strip "${BIN_DIR}/pause.tmp"
  mv -f "${BIN_DIR}/pause.tmp" "${BIN_DIR}/pause"
  "${HACK_DIR}/images.sh" --single "${PAUSE_IMAGE}" --binary "${BIN_DIR}/pause" --static --out "$out" >/dev/null
  echo "$key" >"${BIN_DIR}/.pause.stamp"
  log "pause image: ${PAUSE_IMAGE} in ${out}"
}

cmd_build_real() {
  { command -v pkg-config >/dev/null && pkg-config --exists libseccomp; } ||
    die "runc needs libseccomp-dev (hack/deps.sh installs it)"

  # Runtime parts first: they do not depend on the control plane's module.
  local runc_key="runc v${RUNC_VERSION} seccomp"
  stamp_ok runc "$runc_key" runc || prepare_wrapper runc "$runc_key" runc_wrapper
  CGO_ENABLED=1 BUILD_TAGS=seccomp build_one runc "$runc_key" runc \
    "-s -w -X main.version=${RUNC_VERSION}" github.com/opencontainers/runc

  local ctd_key="containerd v${CONTAINERD_VERSION}" b
  local ctd_ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=v${CONTAINERD_VERSION}"
  for b in containerd containerd-shim-runc-v2 ctr; do
    stamp_ok "$b" "$ctd_key" "$b" || { prepare_wrapper containerd "$ctd_key" containerd_wrapper; break; }
  done
  for b in containerd containerd-shim-runc-v2 ctr; do
    build_one "$b" "$ctd_key" containerd "$ctd_ldflags" "github.com/containerd/containerd/v2/cmd/$b"
  done

  local cni_key="cni-plugins v${CNI_PLUGINS_VERSION}" p
  for p in "${CNI_PLUGINS[@]}"; do
    stamp_ok "${p#*/}" "$cni_key" "${p#*/}" || { prepare_wrapper cni "$cni_key" cni_wrapper; break; }
  done
  mkdir -p "${BIN_DIR}/cni"
  for p in "${CNI_PLUGINS[@]}"; do
    build_one "${p#*/}" "$cni_key" cni "-s -w" "github.com/containernetworking/plugins/plugins/$p"
    ln -sf "../${p#*/}" "${BIN_DIR}/cni/${p#*/}"
  done

  local dns_key="coredns v${COREDNS_VERSION} ${COREDNS_PLUGINS[*]}"
  stamp_ok coredns "$dns_key" coredns || prepare_wrapper coredns "$dns_key" coredns_wrapper
  build_one coredns "$dns_key" coredns "-s -w" .

  local k8s_key="kubernetes v${K8S_VERSION}"
  if ! stamp_ok kubelet "$k8s_key" kubelet || ! stamp_ok kube-proxy "$k8s_key" kube-proxy; then
    k8s_node_deps "$k8s_key"
  fi
  for b in kubelet kube-proxy; do
    build_one "$b" "$k8s_key" kubernetes "$(k8s_ldflags)" "k8s.io/kubernetes/cmd/$b"
  done

  build_pause
}

cmd_build() {
  local real=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --real) real=1 ;;
      *) die "build: unknown option '$1' (only --real)" ;;
    esac
    shift
  done
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

  [ "$real" = 0 ] || cmd_build_real

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
# Clients of a real node run inside its network namespace (NS_EXEC, set by use_real_mode).
REAL=0
NS_EXEC=()
kc() { "${NS_EXEC[@]}" "$(kubectl_bin)" --kubeconfig="${KUBECONFIG_PATH}" "$@"; }

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

make_pki() { # [EXTRA_APISERVER_SANS,]
  mkdir -p "$PKI"
  new_ca ca gasoline-ca
  new_cert apiserver ca "/CN=kube-apiserver" serverAuth \
    "${1:-}IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
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
  # nsenter joins only the network namespace and execs, so the pid is the component's.
  setsid "${NS_EXEC[@]}" "${BIN_DIR}/${name}" "$@" >>"${LOGS}/${name}.log" 2>&1 </dev/null &
  local pid=$! want deadline=$((SECONDS + 10))
  echo "$pid" >"${PIDS}/${name}.pid"
  # Until setsid (and nsenter) have exec'd the component, /proc shows the launcher and pid_of
  # would report the component dead; on a loaded machine that window is long enough to hit.
  want="$(readlink -f "${BIN_DIR}/${name}")"
  while alive "$pid" && [ "$(readlink "/proc/${pid}/exe" 2>/dev/null)" != "$want" ] && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.05
  done
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
  got="$("${NS_EXEC[@]}" curl -sS --max-time 2 "$@" "$url" 2>/dev/null)" || return 1
  [ "$got" = "$want" ]
}
# shellcheck disable=SC2317  # the checks below are run by name through wait_for
etcd_healthy() { "${NS_EXEC[@]}" curl -sS --max-time 2 "http://${HOST}:${ETCD_CLIENT_PORT}/health" 2>/dev/null | grep -q '"health":"true"'; }
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
  local c out=() all=("${FULL_COMPONENTS[@]}")
  [ "$REAL" = 0 ] || all=("${REAL_COMPONENTS[@]}")
  for c in "${all[@]}"; do pid_of "$c" >/dev/null && out+=("$c"); done
  echo "${out[*]:-}"
}

# --- components both 'up --full' and 'up --real' start ---
start_etcd() {
  start_proc etcd \
    --name=gasoline --data-dir="${STATE_DIR}/etcd" \
    --listen-client-urls="http://${HOST}:${ETCD_CLIENT_PORT}" --advertise-client-urls="http://${HOST}:${ETCD_CLIENT_PORT}" \
    --listen-peer-urls="http://${HOST}:${ETCD_PEER_PORT}" --initial-advertise-peer-urls="http://${HOST}:${ETCD_PEER_PORT}" \
    --initial-cluster="gasoline=http://${HOST}:${ETCD_PEER_PORT}" \
    --unsafe-no-fsync=true --quota-backend-bytes=2147483648 --log-level=warn
  STARTED+=(etcd)
}

# start_apiserver ARGS...: kube-apiserver with the flags every mode shares (etcd, TLS, ServiceAccount
# token keys, the Service range, the aggregation layer) and the mode's own ARGS.
start_apiserver() {
  start_proc kube-apiserver \
    --etcd-servers="http://${HOST}:${ETCD_CLIENT_PORT}" --secure-port="${APISERVER_PORT}" \
    --tls-cert-file="${PKI}/apiserver.crt" --tls-private-key-file="${PKI}/apiserver.key" \
    --client-ca-file="${PKI}/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="${PKI}/sa.pub" --service-account-signing-key-file="${PKI}/sa.key" \
    --service-cluster-ip-range="${SERVICE_CIDR}" --allow-privileged=true --profiling=false \
    --requestheader-client-ca-file="${PKI}/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User \
    --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="${PKI}/front-proxy-client.crt" \
    --proxy-client-key-file="${PKI}/front-proxy-client.key" \
    "$@"
  STARTED+=(kube-apiserver)
}

# start_controllers [KCM_ARGS...]: kube-controller-manager (every controller, a fast HPA) and kube-scheduler.
start_controllers() {
  local kcfg=(--kubeconfig="${KUBECONFIG_PATH}" --authentication-kubeconfig="${KUBECONFIG_PATH}"
    --authorization-kubeconfig="${KUBECONFIG_PATH}" --bind-address="${HOST}" --leader-elect=false)
  # --flex-volume-plugin-dir: its default under /usr/libexec/kubernetes is created on the host otherwise.
  start_proc kube-controller-manager "${kcfg[@]}" --secure-port="${KCM_PORT}" \
    --cert-dir="${STATE_DIR}/kube-controller-manager" \
    --flex-volume-plugin-dir="${STATE_DIR}/kube-controller-manager/volume-plugins" \
    --root-ca-file="${PKI}/ca.crt" --service-account-private-key-file="${PKI}/sa.key" \
    --cluster-signing-cert-file="${PKI}/ca.crt" --cluster-signing-key-file="${PKI}/ca.key" \
    --controllers='*' \
    --horizontal-pod-autoscaler-sync-period="${HPA_SYNC_PERIOD}" \
    --horizontal-pod-autoscaler-cpu-initialization-period=30s \
    --horizontal-pod-autoscaler-initial-readiness-delay=5s "$@"
  STARTED+=(kube-controller-manager)
  start_proc kube-scheduler "${kcfg[@]}" --secure-port="${SCHEDULER_PORT}" \
    --cert-dir="${STATE_DIR}/kube-scheduler"
  STARTED+=(kube-scheduler)
}

# metrics-server scrapes the node's kubelet (kwok's or a real one) and registers with the aggregator.
start_metrics_server() {
  start_proc metrics-server \
    --kubeconfig="${KUBECONFIG_PATH}" --authentication-kubeconfig="${KUBECONFIG_PATH}" \
    --authorization-kubeconfig="${KUBECONFIG_PATH}" \
    --bind-address="${HOST}" --secure-port="${METRICS_SERVER_PORT}" \
    --tls-cert-file="${PKI}/local-serving.crt" --tls-private-key-file="${PKI}/local-serving.key" \
    --kubelet-preferred-address-types=InternalIP --kubelet-use-node-status-port \
    --kubelet-certificate-authority="${PKI}/ca.crt" \
    --metric-resolution=10s --kubelet-request-timeout=5s
  STARTED+=(metrics-server)
  sed -e "s/@PORT@/${METRICS_SERVER_PORT}/g" -e "s/@CA_BUNDLE@/$(base64 -w0 "${PKI}/ca.crt")/" \
    "${MANIFEST_DIR}/metrics-server.yaml" | kc apply -f - >/dev/null
}

cmd_up() {
  local mode=minimal
  while [ $# -gt 0 ]; do
    case "$1" in
      --minimal) mode=minimal ;;
      --full) mode=full ;;
      --real) cmd_up_real; return ;;
      -h|--help) usage; return 0 ;;
      *) die "up: unknown option '$1' (use --minimal, --full or --real)" ;;
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

  start_etcd
  wait_for "etcd (${HOST}:${ETCD_CLIENT_PORT})" "$deadline" etcd_healthy

  start_apiserver --bind-address="${HOST}" --advertise-address="${HOST}" \
    --authorization-mode=RBAC --disable-admission-plugins=ServiceAccount --endpoint-reconciler-type=none
  wait_for "kube-apiserver /readyz (https://${HOST}:${APISERVER_PORT})" "$deadline" apiserver_ready

  if [ "$mode" = full ]; then
    start_controllers

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
    sed "s/@NODE_NAME@/${NODE_NAME}/g" "${MANIFEST_DIR}/node.yaml" | kc apply -f - >/dev/null
    start_metrics_server

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
  [ "$REAL" = 0 ] || real_down || true
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
  if [ "$REAL" = 1 ]; then
    real_down
  else
    # Clients first (together), then the apiserver, etcd last.
    stop metrics-server kwok kube-scheduler kube-controller-manager
    stop kube-apiserver
    stop etcd
  fi
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
  [ "$REAL" = 0 ] || echo "# the real node's addresses exist only in network namespace ${NETNS}: run clients with 'hack/cluster.sh exec CMD'"
  echo "export KUBECONFIG=${KUBECONFIG_PATH}"
  echo "export PATH=${BIN_DIR}:\$PATH"
}

cmd_status() {
  local c pid any=0
  echo "state dir: ${STATE_DIR} ($(cat "${STATE_DIR}/mode" 2>/dev/null || echo 'no cluster'))"
  local all=("${FULL_COMPONENTS[@]}")
  [ "$REAL" = 0 ] || all=("${REAL_COMPONENTS[@]}")
  for c in "${all[@]}"; do
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
  local b missing=() want=("${FULL_COMPONENTS[@]}" helm)
  if [ "${1:-}" = --real ]; then
    want+=("${REAL_BINARIES[@]}")
    [ -f "${CACHE_DIR}/images/pause.tar" ] || missing+=(pause-image)
  fi
  for b in "${want[@]}"; do [ -x "${BIN_DIR}/$b" ] || missing+=("$b"); done
  [ -f "${CACHE_DIR}/share/kwok-stages.yaml" ] || missing+=(kwok-stages)
  if need_kubectl && [ ! -x "${BIN_DIR}/kubectl" ]; then missing+=(kubectl); fi
  if [ ${#missing[@]} -ne 0 ]; then
    echo "cluster: not built in ${BIN_DIR}: ${missing[*]}; run 'hack/cluster.sh build ${1:-}'" >&2
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
runc           v${RUNC_VERSION} (real node)
containerd     v${CONTAINERD_VERSION} (real node)
cni plugins    v${CNI_PLUGINS_VERSION} (real node)
coredns        v${COREDNS_VERSION} (real node)
bin dir        ${BIN_DIR}
EOF
}

# ---------------------------------------------------------------------------------------------
# up --real: one real node (containerd, runc, kubelet, kube-proxy, CoreDNS) and the control plane,
# all inside a network namespace this script creates. docs/cluster.md ("A real node") explains it.

REAL_NODE_IP=10.88.0.1
REAL_POD_CIDR=10.88.0.0/24
REAL_BRIDGE=gasbr0
REAL_NODE_NAME=gasoline-node
REAL_DNS_DOMAIN=cluster.local
REAL_COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy coredns metrics-server)
# Global (not per network namespace) sysctls kubelet sets at start (protectKernelDefaults: false);
# saved before and written back by down.
REAL_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# Host paths kubelet, containerd, the CNI plugins or `ip netns` use whatever their configured roots
# are. The ones that did not exist before up are removed by down.
REAL_HOST_PATHS=(/var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni /run/containerd /run/netns
  /opt/containerd /var/run/nri /usr/libexec/kubernetes /etc/cni /opt/cni)
REAL_BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler metrics-server containerd
  containerd-shim-runc-v2 ctr runc kubelet kube-proxy coredns bridge host-local loopback)
IMAGES_DIR="${GASOLINE_IMAGES_DIR:-$(cd "${HACK_DIR}/.." && pwd)/build/images}"

# The network namespace is named after the state dir, so a second state dir never reuses it.
real_netns_name() { echo "gasoline-$(printf '%s' "$STATE_DIR" | sha256sum | cut -c1-8)"; }

# Switches the script's endpoints to the ones inside the node's network namespace: every port is the
# standard one there (the namespace has its own port space) and every client runs through nsenter.
use_real_mode() {
  REAL=1
  NETNS="$(real_netns_name)"
  NS_EXEC=(nsenter "--net=/run/netns/${NETNS}")
  APISERVER_PORT=6443 ETCD_CLIENT_PORT=2379 ETCD_PEER_PORT=2380 KCM_PORT=10257 SCHEDULER_PORT=10259
  METRICS_SERVER_PORT=4443
  NODE_NAME="$REAL_NODE_NAME"
}

# real_unavailable: prints why this machine cannot run the real node (empty output: it can).
real_unavailable() {
  if [ "$(id -u)" != 0 ]; then echo "the real node needs root (containerd, runc, kubelet, network namespaces)"; return; fi
  local t
  for t in ip nsenter unshare iptables mountpoint; do
    command -v "$t" >/dev/null || { echo "'$t' is missing (hack/deps.sh installs it)"; return; }
  done
  unshare --net true 2>/dev/null || { echo "cannot create a network namespace here (unshare --net failed: no CAP_SYS_ADMIN or namespaces disabled)"; return; }
  grep -q ' cgroup2\? ' /proc/self/mounts 2>/dev/null || grep -q ' cgroup ' /proc/self/mounts ||
    { echo "no cgroup filesystem is mounted"; return; }
  { ip link add gasoline-probe type bridge 2>/dev/null && ip link del gasoline-probe 2>/dev/null; } ||
    { echo "cannot create a bridge interface (no CAP_NET_ADMIN or no bridge support)"; return; }
}

cmd_can_real() {
  local why
  why="$(real_unavailable)"
  if [ -n "$why" ]; then echo "cluster: no real node on this machine: ${why}"; return 3; fi
  echo "cluster: this machine can run the real node"
}

# ns_pids: pids of the processes inside the node's network namespace (none once everything stopped).
ns_pids() {
  local want p
  want="$(stat -L -c %i "/run/netns/${NETNS}" 2>/dev/null)" || return 0
  for p in /proc/[0-9]*; do
    [ "$(stat -L -c %i "$p/ns/net" 2>/dev/null)" = "$want" ] && echo "${p#/proc/}"
  done
  return 0
}

cgroup_roots() { awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts | sort -u; }

real_kubeconfig() { # FILE CERT_NAME SERVER
  cat >"$1" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: gasoline
  cluster:
    server: $3
    certificate-authority: ${PKI}/ca.crt
users:
- name: $2
  user:
    client-certificate: ${PKI}/$2.crt
    client-key: ${PKI}/$2.key
contexts:
- name: gasoline
  context: {cluster: gasoline, user: $2}
current-context: gasoline
KCFG
  chmod 600 "$1"
}

# Records what the host looks like in the places the node changes, so down restores exactly that.
real_record_host() {
  local h="${STATE_DIR}/host" s p c
  mkdir -p "$h"
  for s in "${REAL_SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$h/sysctls"
  : >"$h/created-paths"
  for p in "${REAL_HOST_PATHS[@]}"; do [ -e "$p" ] || echo "$p" >>"$h/created-paths"; done
  : >"$h/created-cgroups"
  for c in $(cgroup_roots); do
    for p in kubepods k8s.io; do [ -e "$c/$p" ] || echo "$c/$p" >>"$h/created-cgroups"; done
  done
}

real_preflight() {
  local why c
  why="$(real_unavailable)"
  [ -z "$why" ] || { echo "cluster: up --real is not possible on this machine: ${why}" >&2; exit 3; }
  require_built "${REAL_BINARIES[@]}"
  [ -f "${CACHE_DIR}/images/pause.tar" ] || die "the pause image is missing: run 'hack/cluster.sh build --real'"
  command -v openssl >/dev/null || die "openssl is needed (apt-get install openssl)"
  command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
  local nets=(/run/netns/gasoline-*)
  [ ! -e "${nets[0]}" ] ||
    die "a real node already runs here (${nets[*]#/run/netns/}): 'hack/cluster.sh down' with its GASOLINE_CLUSTER_DIR first"
  for c in $(cgroup_roots); do
    [ ! -e "$c/kubepods" ] || die "$c/kubepods exists: another kubelet runs on this machine (one node per machine: kubelet uses fixed host paths)"
  done
  [ ! -S /var/lib/kubelet/device-plugins/kubelet.sock ] || ! pgrep -x kubelet >/dev/null ||
    die "a kubelet already runs on this machine"
  local cidr
  for cidr in "$REAL_POD_CIDR" "$SERVICE_CIDR"; do
    [ -z "$(ip route show "$cidr")" ] || die "the host already has a route for ${cidr}: $(ip route show "$cidr")"
  done
}

real_network() {
  local h="${STATE_DIR}/host" cidr
  # Host side first: the pod and Service CIDRs exist only inside the namespace; without these routes a
  # host-side packet to them would follow the default route off the machine.
  for cidr in "$REAL_POD_CIDR" "$SERVICE_CIDR"; do
    ip route add blackhole "$cidr"
    echo "$cidr" >>"$h/routes"
  done
  ip netns add "$NETNS"
  echo "$NETNS" >"${STATE_DIR}/netns"
  ip -n "$NETNS" link set lo up
  ip -n "$NETNS" link add "$REAL_BRIDGE" type bridge
  ip -n "$NETNS" addr add "${REAL_NODE_IP}/${REAL_POD_CIDR#*/}" dev "$REAL_BRIDGE"
  ip -n "$NETNS" link set "$REAL_BRIDGE" up
  # ClusterIPs are only DNAT targets; they need a route to reach iptables' OUTPUT/PREROUTING at all.
  # No default route: nothing from the node or a pod can leave the namespace.
  ip -n "$NETNS" route add "$SERVICE_CIDR" dev "$REAL_BRIDGE"
}

# The real node's certificates: the apiserver also serves pods (node IP, first Service IP), plus the
# node's client and serving certificates, kube-proxy's, and the apiserver's client for kubelets.
real_pki() {
  make_pki "IP:${REAL_NODE_IP},IP:${SERVICE_CIDR%.*/*}.1,"
  new_cert apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  new_cert node ca "/O=system:nodes/CN=system:node:${REAL_NODE_NAME}" clientAuth
  new_cert kubelet-serving ca "/CN=${REAL_NODE_NAME}" serverAuth "IP:${REAL_NODE_IP},DNS:${REAL_NODE_NAME}"
  new_cert kube-proxy ca "/CN=system:kube-proxy" clientAuth
}

real_containerd_config() {
  local d="${STATE_DIR}/containerd"
  mkdir -p "$d/certs.d/_default" "${STATE_DIR}/cni/net.d"
  # Every pull fails locally: the only registry host is a closed port on loopback.
  cat >"$d/certs.d/_default/hosts.toml" <<'TOML'
server = "http://127.0.0.1:9"
[host."http://127.0.0.1:9"]
  capabilities = ["pull", "resolve"]
TOML
  cat >"$d/config.toml" <<TOML
version = 3
root = "$d/root"
state = "$d/state"
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = "$d/opt"
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '${PAUSE_IMAGE}'
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = '$d/certs.d'
  [plugins.'io.containerd.cri.v1.runtime']
    # root here may lack CAP_SYS_RESOURCE: never ask runc for an oom_score_adj below containerd's own.
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '${BIN_DIR}/runc'
        Root = '$d/runc'
        SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['${BIN_DIR}/cni']
      conf_dir = '${STATE_DIR}/cni/net.d'
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
TOML
  # One bridge network; host-local hands out pod IPs and routes everything to the bridge (the node),
  # which has no route further.
  cat >"${STATE_DIR}/cni/net.d/10-gasoline.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "gasoline", "plugins": [{
  "type": "bridge", "bridge": "${REAL_BRIDGE}", "isGateway": true, "ipMasq": false, "hairpinMode": true,
  "ipam": {"type": "host-local", "dataDir": "${STATE_DIR}/cni/ipam",
    "ranges": [[{"subnet": "${REAL_POD_CIDR}", "gateway": "${REAL_NODE_IP}"}]],
    "routes": [{"dst": "0.0.0.0/0"}]}}]}
JSON
}

real_kubelet_config() {
  cat >"${STATE_DIR}/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The machines this runs on may have cgroup v1 (kubelet 1.36 refuses it unless told) and no systemd.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://${STATE_DIR}/containerd/containerd.sock
address: ${REAL_NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: ${PKI}/kubelet-serving.crt
tlsPrivateKeyFile: ${PKI}/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${PKI}/ca.crt}
authorization: {mode: Webhook}
clusterDNS: [${REAL_NODE_IP}]
clusterDomain: ${REAL_DNS_DOMAIN}
# Pods get only the cluster's DNS, never the host's resolvers.
resolvConf: ""
podLogsDir: ${STATE_DIR}/pod-logs
volumePluginDir: ${STATE_DIR}/kubelet-plugins
# Our images are imported, never pulled: no image garbage collection, no eviction on a full-ish disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
# kubelet's default -999 needs CAP_SYS_RESOURCE, which root may lack here.
oomScoreAdj: 0
staticPodPath: ""
YAML
}

real_kube_proxy_config() {
  cat >"${STATE_DIR}/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: ${STATE_DIR}/kube-proxy.kubeconfig}
hostnameOverride: ${REAL_NODE_NAME}
clusterCIDR: ${REAL_POD_CIDR}
nodePortAddresses: ["${REAL_NODE_IP}/32"]
iptables: {localhostNodePorts: false}
# Zero = leave the (global) conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
YAML
}

real_corefile() {
  cat >"${STATE_DIR}/Corefile" <<COREFILE
# No forward plugin: names outside the cluster fail here instead of going upstream.
.:53 {
    bind ${REAL_NODE_IP}
    errors
    health 127.0.0.1:8080
    ready 127.0.0.1:8181
    kubernetes ${REAL_DNS_DOMAIN} in-addr.arpa ip6.arpa {
        kubeconfig ${KUBECONFIG_PATH}
        pods insecure
    }
    cache 5
    loadbalance
}
COREFILE
}

# shellcheck disable=SC2317  # run by name through wait_for
containerd_ready() { "${BIN_DIR}/ctr" --address "${STATE_DIR}/containerd/containerd.sock" version; }
ctr_k8s() { "${BIN_DIR}/ctr" --address "${STATE_DIR}/containerd/containerd.sock" -n k8s.io "$@"; }
# shellcheck disable=SC2317  # run by name through wait_for
local_ok() { grep -q "${2:-.}" <<<"$("${NS_EXEC[@]}" curl -sS --max-time 2 "$1" 2>/dev/null)"; }

real_import_images() {
  local f n=0
  ctr_k8s images import --local "${CACHE_DIR}/images/pause.tar" >/dev/null 2>&1 ||
    ctr_k8s images import "${CACHE_DIR}/images/pause.tar" >/dev/null
  for f in "${IMAGES_DIR}"/*.tar; do
    [ -f "$f" ] || continue
    ctr_k8s images import "$f" >/dev/null || die "importing $f failed"
    n=$((n + 1))
  done
  if [ "$n" = 0 ]; then
    log "no images in ${IMAGES_DIR} (run hack/images.sh first to use gasoline images in pods)"
  else
    log "imported ${n} image(s) from ${IMAGES_DIR}: $(ctr_k8s images ls -q | grep -v '^sha256:' | grep -c .) names in containerd"
  fi
}

cmd_up_real() {
  use_real_mode
  real_preflight
  local running
  running="$(running_components)"
  [ -z "$running" ] || die "a cluster is already running from ${STATE_DIR} (${running}); run 'hack/cluster.sh down' first"
  local t0=$SECONDS deadline=$(( $(date +%s) + UP_TIMEOUT ))
  check_state_dir
  rm -rf "$STATE_DIR"
  mkdir -p "$PKI" "$PIDS" "$LOGS" "${STATE_DIR}/etcd"
  chmod 700 "${STATE_DIR}/etcd"
  echo real >"${STATE_DIR}/mode"
  trap up_failed EXIT
  log "up --real: kubernetes v${K8S_VERSION}, containerd v${CONTAINERD_VERSION}, runc v${RUNC_VERSION}; state in ${STATE_DIR}, network namespace ${NETNS}"
  real_record_host
  real_network
  real_pki
  write_kubeconfig
  real_kubeconfig "${STATE_DIR}/node.kubeconfig" node "https://${REAL_NODE_IP}:${APISERVER_PORT}"
  real_kubeconfig "${STATE_DIR}/kube-proxy.kubeconfig" kube-proxy "https://${REAL_NODE_IP}:${APISERVER_PORT}"

  start_etcd
  wait_for "etcd" "$deadline" etcd_healthy

  # Inside the namespace 0.0.0.0 is only loopback and the bridge: pods reach the apiserver through
  # the kubernetes Service (10.96.0.1:443 -> ${REAL_NODE_IP}:6443, kept by the endpoint reconciler),
  # with ServiceAccount tokens (ServiceAccount admission on); kubelet is authorized by the Node authorizer.
  start_apiserver --bind-address=0.0.0.0 --advertise-address="${REAL_NODE_IP}" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --kubelet-client-certificate="${PKI}/apiserver-kubelet-client.crt" --kubelet-client-key="${PKI}/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="${PKI}/ca.crt" --kubelet-preferred-address-types=InternalIP
  wait_for "kube-apiserver /readyz" "$deadline" apiserver_ready

  # Each controller with its own ServiceAccount token, as in a real cluster.
  start_controllers --use-service-account-credentials=true

  real_containerd_config
  # PATH: containerd starts containerd-shim-runc-v2 by name.
  PATH="${BIN_DIR}:${PATH}" start_proc containerd --config="${STATE_DIR}/containerd/config.toml"
  STARTED+=(containerd)
  wait_for "containerd" "$deadline" containerd_ready
  real_import_images

  real_kubelet_config
  start_proc kubelet --config="${STATE_DIR}/kubelet.yaml" --kubeconfig="${STATE_DIR}/node.kubeconfig" \
    --root-dir="${STATE_DIR}/kubelet" --node-ip="${REAL_NODE_IP}" --hostname-override="${REAL_NODE_NAME}"
  STARTED+=(kubelet)
  real_kube_proxy_config
  start_proc kube-proxy --config="${STATE_DIR}/kube-proxy.yaml"
  STARTED+=(kube-proxy)
  real_corefile
  start_proc coredns --conf="${STATE_DIR}/Corefile"
  STARTED+=(coredns)
  start_metrics_server

  wait_for "kube-controller-manager /healthz" "$deadline" component_healthy "$KCM_PORT"
  wait_for "kube-scheduler /healthz" "$deadline" component_healthy "$SCHEDULER_PORT"
  wait_for "node ${NODE_NAME} Ready" "$deadline" node_ready
  wait_for "kube-proxy /healthz" "$deadline" local_ok http://127.0.0.1:10256/healthz
  wait_for "CoreDNS /ready" "$deadline" local_ok http://127.0.0.1:8181/ready OK
  wait_for "default ServiceAccount" "$deadline" kc get serviceaccount default
  wait_for "metrics API (node metrics from the kubelet)" "$deadline" metrics_api_available
  trap - EXIT
  log "up --real ready in $((SECONDS - t0))s; clients run inside the namespace: hack/cluster.sh exec kubectl get nodes"
}

# --- down of the real node: every step is safe to repeat and to run after a partial up ---

# umount_under DIR: unmounts every mount point at or below DIR, deepest first.
umount_under() {
  local m
  # Several passes: mounts can be stacked on one point (kubelet bind-mounts its root dir onto itself).
  for _ in 1 2 3 4 5; do
    [ -n "$(mounts_under "$1")" ] || return 0
    mounts_under "$1" | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  done
}
mounts_under() { awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r -u; }

# rmdir_cgroup DIR: kills what is left in the cgroup tree DIR (by pid), then removes it depth-first.
rmdir_cgroup() {
  local dir="$1" d p i
  [ -d "$dir" ] || return 0
  for i in 1 2 3 4 5 6 7 8 9 10; do
    local left=0
    while read -r d; do
      while read -r p; do kill -KILL "$p" 2>/dev/null || true; left=1; done < <(cat "$d/cgroup.procs" 2>/dev/null)
    done < <(find "$dir" -type d)
    [ "$left" = 0 ] && break
    sleep 0.2
  done
  find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  [ ! -d "$dir" ] || log "warning: could not remove cgroup ${dir}"
}

real_down() {
  local h="${STATE_DIR}/host" id
  NETNS="$(cat "${STATE_DIR}/netns" 2>/dev/null || real_netns_name)"
  stop metrics-server kube-proxy coredns kube-scheduler kube-controller-manager kubelet
  # Containers outlive kubelet: kill and delete them through containerd while it still runs.
  if pid_of containerd >/dev/null; then
    for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks rm -f "$id" >/dev/null 2>&1 || true; done
    for id in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers rm "$id" >/dev/null 2>&1 || true; done
  fi
  stop containerd
  stop kube-apiserver
  stop etcd
  # What is left in the namespace (container shims) and in the pod cgroups belongs to this node.
  local p
  for p in $(ns_pids); do kill -KILL "$p" 2>/dev/null || true; done
  local c
  if [ -f "$h/created-cgroups" ]; then
    while read -r c; do [ -z "$c" ] || rmdir_cgroup "$c"; done <"$h/created-cgroups"
  fi
  for p in $(ns_pids); do wait_exit "$p" 100 || true; done
  umount_under "$STATE_DIR"
  if [ -f "$h/created-paths" ]; then
    while read -r p; do
      if [ -z "$p" ] || [ "$p" = /run/netns ]; then continue; fi
      umount_under "$p"
      rm -rf "$p" || log "warning: could not remove ${p}"
    done <"$h/created-paths"
  fi
  # The namespace (bridge, veths, routes, iptables rules, its ip_forward) goes with its last process.
  if [ -e "/run/netns/${NETNS}" ]; then
    [ -z "$(ns_pids)" ] || log "warning: processes still in ${NETNS}: $(ns_pids | tr '\n' ' ')"
    ip netns del "$NETNS" || true
  fi
  if grep -qx /run/netns "$h/created-paths" 2>/dev/null && [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then
    umount_under /run/netns
    rmdir /run/netns || log "warning: could not remove /run/netns"
  fi
  if [ -f "$h/sysctls" ]; then
    local kv
    # Every step of down runs even if one fails (set -e would stop at the first).
    while read -r kv; do [ -z "$kv" ] || sysctl -q -w "$kv" >/dev/null || log "warning: could not restore ${kv}"; done <"$h/sysctls"
  fi
  if [ -f "$h/routes" ]; then
    while read -r c; do [ -z "$c" ] || ip route del blackhole "$c" 2>/dev/null || true; done <"$h/routes"
  fi
  # The state dir is removed next with rm -rf: never through a mount that is still there.
  [ -z "$(mounts_under "$STATE_DIR")" ] ||
    die "mounts are left below ${STATE_DIR} (not removing it): $(mounts_under "$STATE_DIR" | tr '\n' ' ')"
}

# exec CMD...: runs CMD inside the real node's network namespace with KUBECONFIG and PATH set.
cmd_exec() {
  [ $# -gt 0 ] || die "exec: name a command"
  [ "${REAL:-0}" = 1 ] || die "exec: no real node runs from ${STATE_DIR} (hack/cluster.sh up --real)"
  [ -e "/run/netns/${NETNS}" ] || die "exec: the node's network namespace ${NETNS} is gone"
  KUBECONFIG="${KUBECONFIG_PATH}" PATH="${BIN_DIR}:${PATH}" exec "${NS_EXEC[@]}" "$@"
}

# ---------------------------------------------------------------------------------------------
# main

main() {
  local cmd="${1:-}"
  [ $# -gt 0 ] && shift
  # Commands after 'up --real' address the node inside its namespace.
  if [ "$(cat "${STATE_DIR}/mode" 2>/dev/null)" = real ]; then use_real_mode; fi
  case "$cmd" in
    build) cmd_build "$@" ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    env) cmd_env "$@" ;;
    status) cmd_status "$@" ;;
    restart) cmd_restart "$@" ;;
    versions) cmd_versions ;;
    built) cmd_built "$@" ;;
    exec) cmd_exec "$@" ;;
    ctr) [ "$REAL" = 1 ] || die "ctr: no real node runs from ${STATE_DIR}"; ctr_k8s "$@" ;;
    can-real) cmd_can_real ;;
    -h|--help|help) usage ;;
    "") usage >&2; exit 2 ;;
    *) echo "cluster: unknown command '$cmd'" >&2; usage >&2; exit 2 ;;
  esac
}

main "$@"; exit $?  # exit here: bash must not read on if this file is edited while it runs
