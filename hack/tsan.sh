#!/usr/bin/env bash
# Builds the kv, the sidecar, the example app and the process tests with ThreadSanitizer into build-tsan/, then runs
# the ctest labels kv, worker and raft there. Every TSan report, from a test binary or from a gasoline-kv,
# gasoline-worker or example app a test started, lands in build-tsan/tsan-logs/ (TSAN_OPTIONS log_path, which the
# children inherit); the script prints them and fails if there is any, or if a test failed.
# Not part of hack/test.sh or .ci/run (it takes a long time on a small machine): docs/benchmarks.md, "CI".
# Arguments are passed to ctest (e.g. -R fleet). JOBS sets the build's parallelism (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
jobs="${JOBS:-$(nproc)}"
dir=build-tsan

if [ ! -f "${dir}/build.ninja" ]; then
  echo "tsan: configuring ${dir}/"
  cmake -S . -B "${dir}" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGASOLINE_SANITIZE=thread >/dev/null
fi

targets=(gasoline-kv gasoline-worker gasoline-example-app
         state_machine_test kv_server_test kv_authz_test kv_tls_test
         worker_cpu_test worker_api_parse_test worker_fleet_test worker_drain_test worker_misconfig_test
         worker_app_cpu_test worker_clock_skew_test worker_tls_test
         raft_unit_test raft_fixture_test raft_process_test raft_stranded_test raft_log_test raft_upgrade_test
         raft_peer_auth_test raft_tls_failover_test)
build_args=()
for t in "${targets[@]}"; do build_args+=(--target "$t"); done
echo "tsan: compiling with -j${jobs}"
cmake --build "${dir}" -j"${jobs}" "${build_args[@]}"
built=$(date +%s)

logs="$(pwd)/${dir}/tsan-logs"
rm -rf "${logs}"
mkdir -p "${logs}"
# halt_on_error: the first report ends the process (exit code 66), so a race fails the test that found it.
# report_signal_unsafe=0: the kv and the sidecar stop on SIGTERM through handlers that only set a flag or write to
# a pipe; libuv's and Asio's signal plumbing otherwise draw reports about malloc in a handler that are not ours.
# history_size=7: keep the longest access history, so the earlier access of a race in RocksDB's memtable can be
# restored (MemTable::Add) and hack/tsan.supp's rocksdb entry matches it.
suppressions="$(pwd)/hack/tsan.supp"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 report_signal_unsafe=0 history_size=7 log_path=${logs}/tsan suppressions=${suppressions}"

status=0
ctest --test-dir "${dir}" -L "kv|worker|raft" --output-on-failure --timeout 900 "$@" || status=$?

# Any file there is a report (a race, a lock-order inversion, or TSan failing outright).
reports=$(find "${logs}" -type f -name "tsan.*" -size +0 | sort)
if [ -n "${reports}" ]; then
  for f in ${reports}; do
    echo "===== ${f}"
    cat "${f}"
  done
  echo "tsan: $(echo "${reports}" | wc -l) process(es) reported a race, lock-order inversion or other TSan finding"
  status=1
fi
end=$(date +%s)
echo "tsan: build $(( built - start ))s, tests $(( end - built ))s, status ${status}"
exit "${status}"
