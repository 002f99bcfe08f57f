// Kubeconfig and in-cluster configuration from fixture files, and the REST paths the client builds.
#include "operator/kube/client.h"
#include "operator/kube/config.h"
#include "tests/support/process.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

using namespace gasoline;

namespace {

void write(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// "-----BEGIN X-----" base64: what the kubeconfig's *-data fields hold (here just bytes to round-trip).
constexpr const char* kCaB64 = "Q0EtUEVN";      // "CA-PEM"
constexpr const char* kCertB64 = "Q0VSVA==";    // "CERT"
constexpr const char* kKeyB64 = "S0VZ";         // "KEY"

}  // namespace

TEST(Kubeconfig, InlineDataAndTheCurrentContext) {
  gasoline::testing::TempDir dir;
  write(dir.path() + "/config", std::string(R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c1
  cluster: {server: "https://127.0.0.1:16443", certificate-authority-data: )") + kCaB64 + R"(}
users:
- name: admin
  user: {client-certificate-data: )" + kCertB64 + ", client-key-data: " + kKeyB64 + R"(}
contexts:
- name: dev
  context: {cluster: c1, user: admin, namespace: team-a}
)");
  auto c = kube::load_kubeconfig(dir.path() + "/config");
  EXPECT_EQ(c.server, "https://127.0.0.1:16443");
  EXPECT_EQ(c.ca_pem, "CA-PEM");
  EXPECT_EQ(c.client_cert_pem, "CERT");
  EXPECT_EQ(c.client_key_pem, "KEY");
  EXPECT_EQ(c.ns, "team-a");
  EXPECT_FALSE(c.insecure_skip_verify);
}

TEST(Kubeconfig, FilePathsResolveAgainstTheKubeconfigsDirectory) {
  gasoline::testing::TempDir dir;
  write(dir.path() + "/ca.crt", "FROM-FILE");
  write(dir.path() + "/token", "t0k3n\n");
  write(dir.path() + "/config", R"(current-context: other
clusters:
- {name: c1, cluster: {server: "https://a:1", certificate-authority: ca.crt}}
users:
- {name: u, user: {tokenFile: token}}
contexts:
- {name: dev, context: {cluster: nope, user: u}}
- {name: other, context: {cluster: c1, user: u}}
)");
  auto c = kube::load_kubeconfig(dir.path() + "/config");
  EXPECT_EQ(c.ca_pem, "FROM-FILE");
  EXPECT_EQ(c.token_file, dir.path() + "/token");
  EXPECT_EQ(c.ns, "default");
}

TEST(Kubeconfig, ErrorsNameTheFileAndTheProblem) {
  gasoline::testing::TempDir dir;
  struct Case {
    const char* yaml;
    const char* expect;
  } cases[] = {
      {"clusters: []\n", "no current-context"},
      {"current-context: x\ncontexts: []\n", "no context named 'x'"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: []\n", "no cluster named 'c'"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
       "clusters: [{name: c, cluster: {server: 'https://a:1'}}]\nusers: [{name: u, user: {exec: {command: aws}}}]\n",
       "exec and auth-provider credentials are not supported"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
       "clusters: [{name: c, cluster: {server: 'https://a:1'}}]\nusers: [{name: u, user: {client-certificate-data: "
       "Q0VSVA==}}]\n",
       "needs its key"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: "
       "{server: 'https://a:1', certificate-authority-data: '***'}}]\n",
       "not valid base64"},
      {"{{{ not yaml", "kubeconfig"},
  };
  for (const auto& c : cases) {
    write(dir.path() + "/config", c.yaml);
    try {
      kube::load_kubeconfig(dir.path() + "/config");
      ADD_FAILURE() << "accepted: " << c.yaml;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(kube::load_kubeconfig(dir.path() + "/missing"), std::runtime_error);
  // A path naming a directory is an error, not an empty CA (which would mean "trust the system's roots").
  write(dir.path() + "/config", "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, "
                                "cluster: {server: 'https://a:1', certificate-authority: '" + dir.path() + "'}}]\n");
  try {
    kube::load_kubeconfig(dir.path() + "/config");
    ADD_FAILURE() << "a directory was accepted as the CA file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
}

TEST(InCluster, ReadsTheServiceAccountAndTheServiceEnvironment) {
  gasoline::testing::TempDir dir;
  write(dir.path() + "/ca.crt", "CLUSTER-CA");
  write(dir.path() + "/token", "sa-token");
  write(dir.path() + "/namespace", "gasoline\n");
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto c = kube::in_cluster(dir.path());
  EXPECT_EQ(c.server, "https://10.96.0.1:443");
  EXPECT_EQ(c.ca_pem, "CLUSTER-CA");
  EXPECT_EQ(c.token_file, dir.path() + "/token");  // a file, re-read every minute, never a copied token
  EXPECT_TRUE(c.token.empty());
  EXPECT_EQ(c.ns, "gasoline");
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  EXPECT_EQ(kube::in_cluster(dir.path()).server, "https://[fd00::1]:443");
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_THROW(kube::in_cluster(dir.path()), std::runtime_error);
  unsetenv("KUBERNETES_SERVICE_PORT");
}

TEST(Resource, PathsForCoreGroupsNamespacesAndSubresources) {
  using namespace kube::resources;
  EXPECT_EQ(kServices.path("ns", "web"), "/api/v1/namespaces/ns/services/web");
  EXPECT_EQ(kPools.path(), "/apis/gasoline.dev/v1alpha1/gasolineworkerpools");
  EXPECT_EQ(kPools.path("ns", "p", "status"), "/apis/gasoline.dev/v1alpha1/namespaces/ns/gasolineworkerpools/p/status");
  EXPECT_EQ(kNamespaces.path("ignored", "x"), "/api/v1/namespaces/x");
  EXPECT_EQ(kHpas.api_version(), "autoscaling/v2");
  EXPECT_EQ(kube::url_encode("app.kubernetes.io/managed-by=gasoline-operator"),
            "app.kubernetes.io%2Fmanaged-by%3Dgasoline-operator");
}

TEST(ApiError, KeepsTheStatusReasonAndMessage) {
  auto e = kube::api_error("apply deployments ns/x",
                           kube::HttpResponse{422, R"({"kind":"Status","reason":"Invalid","message":"bad field"})", ""});
  EXPECT_EQ(e.status(), 422);
  EXPECT_EQ(e.reason(), "Invalid");
  EXPECT_NE(std::string(e.what()).find("apply deployments ns/x: 422 Invalid: bad field"), std::string::npos);
  auto raw = kube::api_error("get", kube::HttpResponse{502, "<html>bad gateway</html>", ""});
  EXPECT_EQ(raw.reason(), "HTTP502");
  EXPECT_NE(std::string(raw.what()).find("bad gateway"), std::string::npos);
}
