// Never diverge silently (ctest label `raft`). A committed entry a replica cannot apply, because a newer
// gasoline-kv wrote it in a format this one does not know (or it is corrupt), used to be skipped with a log line, so
// the replica's state silently diverged from the others'. It must stop instead, with the index and the reason,
// without applying the entry; every start meets the same entry and stops again, and nothing after it is applied.
//
// The log is written here with libraft itself (a real single-voter Raft log on disk, in the layout gasoline-kv
// uses), because no newer gasoline-kv exists to write one: a command entry this version applies, then an entry
// tagged with a format from the future. Then the real gasoline-kv starts on that data directory.
#include "kv/raft/libraft_uv.h"
#include "kv/rpc/client.h"
#include "kv/raft/entry_framing.h"
#include "kv/raft/raft_core.h"
#include "kv/raft/transport.h"
#include "kv/store/command.h"
#include "kv/store/state_machine.h"
#include "common/msgpack.h"
#include "tests/support/kv_cluster.h"
#include "tests/support/process.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace gasoline {
namespace {

using namespace std::chrono_literals;

// Writes `payloads` (framed like gasoline-kv's entries) as the entries after the bootstrap configuration of a
// single-voter Raft log in `dir`, then closes it.
void write_raft_log(const std::string& dir, raft_id id, const std::string& address,
                    const std::vector<std::string>& payloads) {
  uv_loop_t loop;
  raft_uv_transport transport{};
  raft_io io{};
  raft_fsm fsm{};
  struct raft r {};
  std::filesystem::create_directories(dir);
  if (uv_loop_init(&loop) != 0) throw std::runtime_error("uv_loop_init");
  raft::TransportOptions transport_options;
  transport_options.bind_address = address.substr(0, address.find('/'));
  transport_options.secret = "upgrade-test-raft-secret";  // a single voter never connects; the secret is unused
  if (raft::transport_init(&transport, &loop, std::move(transport_options)) != 0)
    throw std::runtime_error("transport_init");
  if (raft_uv_init(&io, &loop, dir.c_str(), &transport) != 0) throw std::runtime_error(std::string(io.errmsg));
  fsm.version = 1;
  fsm.apply = [](raft_fsm*, const raft_buffer*, void** result) {
    *result = nullptr;
    return 0;
  };
  fsm.snapshot = [](raft_fsm*, raft_buffer**, unsigned*) { return RAFT_NOTFOUND; };
  fsm.restore = [](raft_fsm*, raft_buffer*) { return RAFT_NOTFOUND; };
  if (raft_init(&r, &io, &fsm, id, address.c_str()) != 0) throw std::runtime_error(raft_errmsg(&r));
  raft_set_election_timeout(&r, 50);
  raft_set_heartbeat_timeout(&r, 10);
  raft_set_snapshot_threshold(&r, 1u << 30);
  raft_configuration conf;
  raft_configuration_init(&conf);
  raft_configuration_add(&conf, id, address.c_str(), RAFT_VOTER);
  if (raft_bootstrap(&r, &conf) != 0) throw std::runtime_error(std::string("bootstrap: ") + raft_errmsg(&r));
  raft_configuration_close(&conf);
  if (raft_start(&r) != 0) throw std::runtime_error(std::string("start: ") + raft_errmsg(&r));

  auto run_until = [&](const std::function<bool()>& done, const char* what) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error(std::string("timed out: ") + what);
      uv_run(&loop, UV_RUN_ONCE);
    }
  };
  run_until([&] { return raft_state(&r) == RAFT_LEADER; }, "becoming leader");
  for (const auto& payload : payloads) {
    auto framed = raft::frame_entry(payload);
    raft_buffer buf;
    buf.len = framed.size();
    buf.base = raft_malloc(buf.len);
    std::memcpy(buf.base, framed.data(), buf.len);
    struct Apply {
      struct raft_apply req;
      bool done = false;
      int status = 0;
    } apply{};
    apply.req.data = &apply;
    int rv = raft_apply(&r, &apply.req, &buf, 1, [](struct raft_apply* req, int status, void*) {
      auto* a = static_cast<Apply*>(req->data);
      a->done = true;
      a->status = status;
    });
    if (rv != 0) throw std::runtime_error(std::string("apply: ") + raft_errmsg(&r));
    run_until([&] { return apply.done; }, "committing an entry");
    if (apply.status != 0) throw std::runtime_error("entry not committed: " + std::to_string(apply.status));
  }
  bool closed = false;
  r.data = &closed;
  raft_close(&r, [](struct raft* rr) { *static_cast<bool*>(rr->data) = true; });
  run_until([&] { return closed; }, "closing raft");
  raft_uv_close(&io);
  uv_run(&loop, UV_RUN_DEFAULT);
  raft::transport_close(&transport);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

// An entry of a format this version has never heard of, as a newer gasoline-kv would write it.
std::string future_entry() {
  std::string out;
  msgpack::Writer w(out);
  w.array_header(3);
  w.string("fx9");
  w.unsigned_integer(3);
  w.string("whatever a newer version puts here");
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(RaftUpgrade, AnEntryOfANewerFormatStopsTheReplicaWithoutApplyingIt) {
  testing::TempDir dir("raft-upgrade");
  const std::string data = dir.path() + "/data";
  int raft_port = testing::free_loopback_port(), client_port = testing::free_loopback_port();
  const std::string raft_address = "127.0.0.1:" + std::to_string(raft_port);
  const std::string client_address = "127.0.0.1:" + std::to_string(client_port);
  // A command entry (the format of older logs, which this version applies), then the entry from the future.
  store::DispatchSpec spec;
  spec.id = "before-the-upgrade";
  spec.pool = "p";
  spec.name = "job";
  write_raft_log(data + "/raft", 1, raft_address + "/" + client_address,
                 {store::encode_entry(store::Entry{1700000000000, {store::Dispatch{spec}}}), future_entry()});

  std::ofstream(dir.path() + "/token") << "secret\n";
  std::ofstream(dir.path() + "/raft-secret") << "upgrade-test-raft-secret\n";  // --peer requires one
  std::vector<std::string> argv{testing::binary_path("gasoline-kv"), "--data-dir", data, "--token-file",
                                dir.path() + "/token", "--listen", client_address, "--metrics-listen", "",
                                "--raft-id", "1", "--raft-secret-file", dir.path() + "/raft-secret",
                                "--peer", "1=" + raft_address + "," + client_address};
  for (int start = 1; start <= 2; ++start) {
    SCOPED_TRACE("start " + std::to_string(start));
    const std::string log = dir.path() + "/kv-" + std::to_string(start) + ".log";
    testing::Process kv(argv, log);
    int code = kv.wait(30s);
    auto text = read_file(log);
    ASSERT_EQ(code, raft::kExitUnreadableEntry) << text;
    EXPECT_NE(text.find("entry format 'fx9' was written by a newer gasoline-kv"), std::string::npos) << text;
    EXPECT_NE(text.find("\"index\":3"), std::string::npos) << "the message names the entry's index\n" << text;
    EXPECT_NE(text.find("upgrade this one"), std::string::npos) << text;
  }
  // The replica's state never took the entry: it is at most at the entry before it (the command entry, index 2),
  // whose workflow is there once the log is replayed up to it.
  auto sm = store::StateMachine::open(store::Options{data + "/state", true, {}, false});
  EXPECT_LE(sm->applied_index(), 2u);
}

// A log written by the previous release replays on this one. tests/raft/testdata/previous-release.tar.gz holds the
// Raft directory (snapshots and the log after them) of a single-voter gasoline-kv of that release after a small
// workload, and the manifest every workflow's final status and steps (make_previous_release_log.sh made both from
// that release's binaries). On an empty state directory this version rebuilds everything from them, and goes on
// taking writes.
TEST(RaftUpgrade, ALogWrittenByThePreviousReleaseReplays) {
  testing::TempDir dir("raft-previous-release");
  const std::string testdata = GASOLINE_RAFT_TESTDATA_DIR;
  std::string untar = "tar -C '" + dir.path() + "' -xzf '" + testdata + "/previous-release.tar.gz'";
  ASSERT_EQ(std::system(untar.c_str()), 0) << untar;
  auto manifest = nlohmann::json::parse(read_file(testdata + "/previous-release-manifest.json"));
  ASSERT_GT(manifest.size(), 50u);

  std::ofstream(dir.path() + "/token") << "previous-release-token\n";
  // The Raft secret is new with this release (the previous one had none); the log does not depend on it.
  std::ofstream(dir.path() + "/raft-secret") << "previous-release-raft-secret\n";
  std::string raft_address = "127.0.0.1:" + std::to_string(testing::free_loopback_port());
  std::string client_address = "127.0.0.1:" + std::to_string(testing::free_loopback_port());
  testing::Process kv({testing::binary_path("gasoline-kv"), "--data-dir", dir.path() + "/data", "--token-file",
                       dir.path() + "/token", "--listen", client_address, "--metrics-listen", "", "--raft-id", "1",
                       "--raft-secret-file", dir.path() + "/raft-secret",
                       "--peer", "1=" + raft_address + "," + client_address},
                      dir.path() + "/kv.log");
  rpc::ClientOptions o;
  o.endpoints = {client_address};
  o.token = "previous-release-token";
  o.name = "upgrade-test";
  rpc::Client client(o);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        try {
          return client.call("status", rpc::Json::object(), rpc::CallOptions{1s, false}).value("role", "") == "leader";
        } catch (const std::exception&) {
          return false;
        }
      },
      30s))
      << read_file(dir.path() + "/kv.log");
  size_t checked = 0;
  for (const auto& want : manifest) {
    auto id = want.at("id").get<std::string>();
    auto got = client.call("get", rpc::Json{{"workflow_id", id}}, rpc::CallOptions{10s, true});
    EXPECT_EQ(got.value("status", ""), want.at("status").get<std::string>()) << id;
    EXPECT_EQ(got.value("steps", uint64_t{0}), want.at("steps").get<uint64_t>()) << id;
    ++checked;
  }
  EXPECT_EQ(checked, manifest.size());
  // The replica goes on: a new write applies on top of the old state, and an old idempotency key still holds.
  auto fresh = client.call("dispatch", rpc::Json{{"pool", "old"}, {"name", "noop"}, {"id", "after-upgrade"}});
  EXPECT_EQ(fresh.value("existing", true), false);
  auto again = client.call("dispatch", rpc::Json{{"pool", "old"}, {"name", "order"}, {"idempotency_key", "order-key-1"}});
  EXPECT_EQ(again.value("id", ""), "order-1");
  EXPECT_TRUE(kv.running()) << read_file(dir.path() + "/kv.log");
}

}  // namespace
}  // namespace gasoline
