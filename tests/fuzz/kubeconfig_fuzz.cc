// libFuzzer target for the kubeconfig loader: operator/kube/config.cc load_kubeconfig(path) on arbitrary bytes
// written to a file.
//
// Contract (operator/kube/config.h): a bad file throws std::runtime_error naming the file. YAML::Exception derives
// from std::runtime_error too, but yaml-cpp's messages do not name the file, so config.cc must wrap them: a
// YAML::Exception escaping is a finding, as is any other exception type, a crash or a sanitizer report.
//
// yaml-cpp itself is the system's libyaml-cpp, not instrumented (no coverage feedback or sanitizer checks inside
// it); the harness fuzzes our use of it, and crashes inside yaml-cpp still show up as crashes.
//
// The file lives alone in a fresh temporary directory, so relative certificate/key paths in the input resolve to
// nothing there (or to the input itself).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <yaml-cpp/yaml.h>

#include "operator/kube/config.h"

namespace {

// Never destroyed: the exit handler that removes the directory runs after static objects are gone.
const std::string& config_path() {
  static const std::string* const path = [] {
    std::string dir = (std::filesystem::temp_directory_path() / "fuzz_kubeconfig.XXXXXX").string();
    if (!mkdtemp(dir.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    auto* p = new std::string(dir + "/config");
    return p;
  }();
  static const bool cleanup_registered = std::atexit([] {
    std::error_code ignored;
    std::filesystem::remove_all(std::filesystem::path(*path).parent_path(), ignored);
  }) == 0;
  (void)cleanup_registered;
  return *path;
}

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "FINDING in load_kubeconfig: %s\n", what.c_str());
  std::abort();
}

void load(const std::string& path, const std::string& context) {
  try {
    const gasoline::kube::Config c = gasoline::kube::load_kubeconfig(path, context);
    (void)c;
  } catch (const YAML::Exception& e) {
    finding(std::string("a yaml-cpp exception escaped unwrapped: ") + e.what());
  } catch (const std::runtime_error&) {
    // The documented failure.
  } catch (const std::exception& e) {
    finding(std::string("unexpected exception: ") + e.what());
  } catch (...) {
    finding("unexpected non-std exception");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = config_path();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) finding("cannot write " + path);
  }
  load(path, "");       // current-context
  load(path, "dev");    // an explicit --context, as the seeds name theirs
  return 0;
}
