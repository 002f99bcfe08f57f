// common/token_file: how every binary reads its bearer token from a mounted Secret.
#include <gtest/gtest.h>

#include "common/token_file.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace gasoline {
namespace {

class TokenFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("token-file-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& content) {
    auto path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(TokenFile, TrimsSurroundingWhitespaceOnly) {
  const std::pair<std::string, std::string> cases[] = {
      {"s3cret", "s3cret"},
      {"s3cret\n", "s3cret"},             // echo s3cret > file
      {"s3cret\r\n", "s3cret"},           // written on Windows
      {"  s3cret \t\n\n", "s3cret"},      // hand-edited
      {"two words\n", "two words"},       // inner spaces are part of the token
      {"line1\nline2\n", "line1\nline2"}, // the whole file, not its first line
  };
  int i = 0;
  for (const auto& [content, want] : cases) EXPECT_EQ(read_token_file(write("t" + std::to_string(i++), content)), want);
}

TEST_F(TokenFile, MissingOrEmptyFilesAreErrorsNamingThePath) {
  auto missing = (dir_ / "absent").string();
  auto empty = write("empty", " \n\t\n");
  for (const auto& path : {missing, empty}) {
    try {
      read_token_file(path);
      ADD_FAILURE() << "accepted " << path;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace gasoline
