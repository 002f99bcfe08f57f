#!/usr/bin/env bash
# Installs every Debian package the project needs. Idempotent: when everything is present it
# only runs one dpkg query and exits.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git curl ca-certificates openssl procps psmisc
  librocksdb-dev                       # storage
  libraft-dev libuv1-dev               # consensus (libraft 0.15 needs libuv1-dev explicitly)
  libboost-dev libboost-system-dev     # Asio / Beast
  libcpprest-dev libssl-dev            # HTTP: Kubernetes API client and the sidecar's app API
  nlohmann-json3-dev libyaml-cpp-dev   # JSON, MessagePack, YAML
  libxxhash-dev                        # pinned hashes (part of the protocol)
  liblz4-dev                           # Raft effects entries (RocksDB links it too)
  libjemalloc-dev                      # the kv's allocator
  libspdlog-dev libfmt-dev prometheus-cpp-dev libcli11-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  faketime                             # tests: a sidecar and app with a skewed clock
  clang-14 libclang-rt-14-dev          # libFuzzer targets (tests/fuzz)
  shellcheck                           # lint.shellcheck (tests/lint): every script of hack/ and tests/
  python3 python3-yaml python3-jsonschema  # chart checks; worker.openapi validates the app API against its OpenAPI document
  prometheus tmux                      # tests/observe: promtool and a real Prometheus scrape the fleet; gasctl watch in tmux
  jq skopeo                            # images (hack/images.sh) and their check (label real)
  libseccomp-dev iptables iproute2 util-linux  # the real node: runc (seccomp), kube-proxy, netns (label real)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "deps: installing ${#missing[@]} package(s): ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: done"
