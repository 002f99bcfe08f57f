// The kv's role check (kv/rpc/authz.h) as a table, and the credentials file parser (kv/rpc/credentials.h).
#include "kv/rpc/authz.h"
#include "kv/rpc/credentials.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gasoline::rpc {
namespace {

using authz::WorkerCheck;

authz::Identity role(bool worker, bool client, std::string ns) {
  authz::Identity id;
  id.worker = worker;
  id.client = client;
  id.ns = std::move(ns);
  id.subject = "test";
  return id;
}

struct Case {
  const char* name;
  authz::Identity who;
  const char* op;
  const char* pool;
  WorkerCheck worker;
  bool allowed;
  const char* reason;  // when denied
};

TEST(Authz, Table) {
  const auto admin = authz::admin("admin token");
  const auto worker_a = role(true, false, "a");
  const auto client_a = role(false, true, "a");
  const auto both_a = role(true, true, "a");
  auto viewer_all = role(false, false, "*");
  viewer_all.viewer = true;
  auto viewer_a = role(false, false, "a");
  viewer_a.viewer = true;
  const std::vector<Case> cases = {
      {"admin does everything", admin, "cluster.add", "", WorkerCheck::kNone, true, ""},
      {"admin commits as anyone", admin, "commit", "b.p", WorkerCheck::kUnregistered, true, ""},
      {"admin reads status", admin, "status", "", WorkerCheck::kNone, true, ""},
      {"worker pings its namespace", worker_a, "ping", "a.p", WorkerCheck::kNone, true, ""},
      {"a ping registers, so needs none", worker_a, "ping", "a.p", WorkerCheck::kUnregistered, true, ""},
      {"worker pulls as its id", worker_a, "pull", "a.p", WorkerCheck::kRegistered, true, ""},
      {"worker commits as its id", worker_a, "commit", "a.p", WorkerCheck::kRegistered, true, ""},
      {"worker releases as its id", worker_a, "release", "a.p", WorkerCheck::kRegistered, true, ""},
      {"worker drains as its id", worker_a, "drain", "a.p", WorkerCheck::kRegistered, true, ""},
      {"worker leaves as its id", worker_a, "leave", "a.p", WorkerCheck::kRegistered, true, ""},
      {"worker subscribes as its id", worker_a, "subscribe", "", WorkerCheck::kRegistered, true, ""},
      {"worker commits as another id", worker_a, "commit", "a.p", WorkerCheck::kUnregistered, false, "worker"},
      {"worker drains another id", worker_a, "drain", "a.p", WorkerCheck::kUnregistered, false, "worker"},
      {"worker undrains as its id", worker_a, "undrain", "a.p", WorkerCheck::kRegistered, true, ""},
      {"worker undrains another id", worker_a, "undrain", "a.p", WorkerCheck::kUnregistered, false, "worker"},
      {"worker leaves another id", worker_a, "leave", "a.p", WorkerCheck::kUnregistered, false, "worker"},
      {"worker subscribes as another id", worker_a, "subscribe", "", WorkerCheck::kUnregistered, false, "worker"},
      {"worker pings another namespace", worker_a, "ping", "b.p", WorkerCheck::kNone, false, "namespace"},
      {"worker commits in another namespace", worker_a, "commit", "b.p", WorkerCheck::kRegistered, false,
       "namespace"},
      {"worker pool prefix is not a namespace", worker_a, "ping", "ab.p", WorkerCheck::kNone, false, "namespace"},
      {"a pool without namespace is admin's", worker_a, "ping", "a", WorkerCheck::kNone, false, "namespace"},
      {"worker may not dispatch", worker_a, "dispatch", "a.p", WorkerCheck::kNone, false, "role"},
      {"worker may not get", worker_a, "get", "a.p", WorkerCheck::kNone, false, "role"},
      {"worker may not change membership", worker_a, "cluster.add", "", WorkerCheck::kNone, false, "role"},
      {"worker may not read status", worker_a, "status", "", WorkerCheck::kNone, false, "role"},
      {"client dispatches", client_a, "dispatch", "a.p", WorkerCheck::kNone, true, ""},
      {"client gets", client_a, "get", "a.p", WorkerCheck::kNone, true, ""},
      {"client lists", client_a, "list", "a.p", WorkerCheck::kNone, true, ""},
      {"client signals", client_a, "signal", "a.p", WorkerCheck::kNone, true, ""},
      {"client cancels", client_a, "cancel", "a.p", WorkerCheck::kNone, true, ""},
      {"client lists another namespace", client_a, "list", "b.p", WorkerCheck::kNone, false, "namespace"},
      {"client cancels in another namespace", client_a, "cancel", "b.p", WorkerCheck::kNone, false, "namespace"},
      {"client may not commit", client_a, "commit", "a.p", WorkerCheck::kRegistered, false, "role"},
      {"client may not ping", client_a, "ping", "a.p", WorkerCheck::kNone, false, "role"},
      {"client may not transfer", client_a, "cluster.transfer", "", WorkerCheck::kNone, false, "role"},
      {"client may not configure a pool", client_a, "pool.configure", "a.p", WorkerCheck::kNone, false, "role"},
      {"a service account does both", both_a, "dispatch", "a.p", WorkerCheck::kNone, true, ""},
      {"a service account does both (worker)", both_a, "pull", "a.p", WorkerCheck::kRegistered, true, ""},
      {"unknown ops are admin's", both_a, "frobnicate", "a.p", WorkerCheck::kNone, false, "role"},
      {"no role, no op", role(false, false, "a"), "get", "a.p", WorkerCheck::kNone, false, "role"},
      {"viewer of all gets anywhere", viewer_all, "get", "b.p", WorkerCheck::kNone, true, ""},
      {"viewer of all lists anywhere", viewer_all, "list", "a.p", WorkerCheck::kNone, true, ""},
      {"viewer of all reads status", viewer_all, "status", "", WorkerCheck::kNone, true, ""},
      {"viewer of all reads workers", viewer_all, "workers", "", WorkerCheck::kNone, true, ""},
      {"viewer of all reads the cluster", viewer_all, "cluster.status", "", WorkerCheck::kNone, true, ""},
      {"viewer may not dispatch", viewer_all, "dispatch", "a.p", WorkerCheck::kNone, false, "role"},
      {"viewer may not cancel", viewer_all, "cancel", "a.p", WorkerCheck::kNone, false, "role"},
      {"viewer may not signal", viewer_all, "signal", "a.p", WorkerCheck::kNone, false, "role"},
      {"viewer may not ping", viewer_all, "ping", "a.p", WorkerCheck::kNone, false, "role"},
      {"viewer may not commit", viewer_all, "commit", "a.p", WorkerCheck::kRegistered, false, "role"},
      {"viewer may not configure a pool", viewer_all, "pool.configure", "a.p", WorkerCheck::kNone, false, "role"},
      {"viewer may not change membership", viewer_all, "cluster.transfer", "", WorkerCheck::kNone, false, "role"},
      {"viewer of a lists its namespace", viewer_a, "list", "a.p", WorkerCheck::kNone, true, ""},
      {"viewer of a gets in its namespace", viewer_a, "get", "a.p", WorkerCheck::kNone, true, ""},
      {"viewer of a lists another namespace", viewer_a, "list", "b.p", WorkerCheck::kNone, false, "namespace"},
      {"viewer of a prefix is not a namespace", viewer_a, "get", "ab.p", WorkerCheck::kNone, false, "namespace"},
      {"viewer of a may not read status", viewer_a, "status", "", WorkerCheck::kNone, false, "role"},
      {"viewer of a may not read workers", viewer_a, "workers", "", WorkerCheck::kNone, false, "role"},
  };
  for (const auto& c : cases) {
    auto d = authz::authorize(c.who, c.op, c.pool, c.worker, "w-1");
    EXPECT_EQ(d.allowed, c.allowed) << c.name << ": " << d.message;
    if (!c.allowed) {
      EXPECT_EQ(d.reason, c.reason) << c.name;
      EXPECT_EQ(d.message.rfind("permission denied: ", 0), 0u) << c.name << ": " << d.message;
    }
  }
}

TEST(Authz, MessagesSayWhoWhatAndWhere) {
  auto d = authz::authorize(role(true, false, "a"), "commit", "b.p", WorkerCheck::kRegistered, "w-1");
  EXPECT_EQ(d.message,
            "permission denied: role worker of namespace a may not commit on pool b.p (outside namespace a)");
  d = authz::authorize(role(true, false, "a"), "drain", "a.p", WorkerCheck::kUnregistered, "w-9");
  EXPECT_NE(d.message.find("as worker 'w-9'"), std::string::npos) << d.message;
  d = authz::authorize(role(true, true, "a"), "cluster.remove", "", WorkerCheck::kNone);
  EXPECT_EQ(d.message, "permission denied: role worker+client of namespace a may not cluster.remove (admin only)");
}

TEST(Authz, MetricOpIsBounded) {
  EXPECT_EQ(authz::metric_op("commit"), "commit");
  EXPECT_EQ(authz::metric_op("cluster.add"), "cluster.add");
  EXPECT_EQ(authz::metric_op("anything a caller invents"), "other");
}

TEST(Authz, NamespaceOfPool) {
  EXPECT_EQ(authz::namespace_of("shop.orders"), "shop");
  EXPECT_EQ(authz::namespace_of("shop.orders.v2"), "shop");
  EXPECT_EQ(authz::namespace_of("default"), "");
  EXPECT_EQ(authz::namespace_of(".x"), "");
}

const std::string kT1 = "0123456789abcdef-one";
const std::string kT2 = "0123456789abcdef-two";
const std::string kT3 = "0123456789abcdef-three";

TEST(Credentials, ParsesRolesScopesAndComments) {
  auto c = parse_credentials("# role scope token\n\nadmin * " + kT1 + "\n  worker\tshop  " + kT2 + "\r\nclient shop " +
                             kT2 + "\nclient other " + kT3);
  ASSERT_EQ(c.size(), 3u);
  auto admin = c.find(kT1);
  ASSERT_TRUE(admin);
  EXPECT_TRUE(admin->admin);
  auto shop = c.find(kT2);
  ASSERT_TRUE(shop);
  EXPECT_FALSE(shop->admin);
  EXPECT_TRUE(shop->worker && shop->client);
  EXPECT_EQ(shop->ns, "shop");
  EXPECT_EQ(shop->subject, "credentials line 4, credentials line 5");
  auto other = c.find(kT3);
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->client && !other->worker);
  EXPECT_FALSE(c.find("0123456789abcdef-none"));
  EXPECT_FALSE(c.find(""));
  EXPECT_EQ(parse_credentials("").size(), 0u);
}

TEST(Credentials, ViewersReadEverywhereOrInOneNamespaceAndShareNoToken) {
  auto c = parse_credentials("viewer * " + kT1 + "\nviewer shop " + kT2);
  auto all = c.find(kT1);
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->viewer && !all->admin && !all->worker && !all->client);
  EXPECT_EQ(all->ns, "*");
  EXPECT_EQ(all->describe(), "role viewer of every namespace");
  auto shop = c.find(kT2);
  ASSERT_TRUE(shop);
  EXPECT_EQ(shop->describe(), "role viewer of namespace shop");
  EXPECT_THROW(parse_credentials("viewer Shop! " + kT1), std::invalid_argument);
  // A viewer's token must not also be a writer's: the roles would merge into more than either line says.
  EXPECT_THROW(parse_credentials("viewer shop " + kT1 + "\nclient shop " + kT1), std::invalid_argument);
}

TEST(Credentials, ErrorsNameTheLineAndNeverTheToken) {
  struct Bad {
    std::string text;
    std::string error;  // a prefix of the message
  };
  const std::vector<Bad> bad = {
      {"admin *", "line 1: expected 'ROLE SCOPE TOKEN' (3 fields), got 2 (is the token missing?)"},
      {"\nworker shop " + kT1 + " extra", "line 2: expected 'ROLE SCOPE TOKEN' (3 fields), got 4"},
      {"root * " + kT1, "line 1: unknown role 'root'"},
      {"admin shop " + kT1, "line 1: an admin credential's scope must be '*'"},
      {"worker * " + kT1, "line 1: scope '*' is not a namespace name"},
      {"client Shop " + kT1, "line 1: scope 'Shop' is not a namespace name"},
      {"client shop short", "line 1: the token is 5 bytes; at least 16 are required"},
      {"client shop " + kT1 + "\xff", "line 1: the token has characters outside printable ASCII"},
      {"admin * " + kT1 + "\nclient shop " + kT1, "line 2: the token is already given to admin"},
      {"worker a " + kT1 + "\n#\nclient b " + kT1, "line 3: the token is already given to role worker of namespace a"},
  };
  for (const auto& b : bad) {
    try {
      parse_credentials(b.text);
      ADD_FAILURE() << "parsed: " << b.text;
    } catch (const std::invalid_argument& e) {
      std::string m = e.what();
      EXPECT_EQ(m.rfind(b.error, 0), 0u) << m;
      EXPECT_EQ(m.find(kT1), std::string::npos) << m;
    }
  }
}

TEST(Credentials, AuthenticatorOrder) {
  auto auth = make_authenticator(kT1, parse_credentials("client shop " + kT2), [](const std::string& token,
                                                                                 authz::AuthDone done) {
    if (token == kT3) return done(role(true, true, "sa"), "");
    done(std::nullopt, "token review: not authenticated");
  });
  auto run = [&](const std::string& token) {
    std::optional<authz::Identity> out;
    std::string error;
    auth(token, [&](std::optional<authz::Identity> id, std::string e) {
      out = std::move(id);
      error = std::move(e);
    });
    return std::make_pair(out, error);
  };
  EXPECT_TRUE(run(kT1).first->admin);
  EXPECT_EQ(run(kT2).first->ns, "shop");
  EXPECT_EQ(run(kT3).first->ns, "sa");
  EXPECT_EQ(run("0123456789abcdef-else").second, "token review: not authenticated");
  EXPECT_EQ(run("").second, "the hello carries no bearer token");
  auto plain = make_authenticator(kT1, Credentials{});
  std::string error;
  plain("0123456789abcdef-else", [&](std::optional<authz::Identity> id, std::string e) {
    EXPECT_FALSE(id);
    error = std::move(e);
  });
  EXPECT_EQ(error, "invalid bearer token");
}

}  // namespace
}  // namespace gasoline::rpc
