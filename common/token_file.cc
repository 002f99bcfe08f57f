#include "common/token_file.h"

#include <cctype>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace gasoline {

std::string read_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the token file '" + path + "'");
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!token.empty() && space(token.back())) token.pop_back();
  size_t start = 0;
  while (start < token.size() && space(token[start])) ++start;
  token.erase(0, start);
  if (token.empty()) throw std::runtime_error("the token file '" + path + "' is empty");
  return token;
}

}  // namespace gasoline
