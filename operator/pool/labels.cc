#include "operator/pool/labels.h"

#include <cctype>

namespace gasoline::op::pool {
namespace {

constexpr size_t kMaxLabelName = 63;
constexpr size_t kMaxPrefix = 253;

bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// The "name" part of a qualified name and a non-empty label value share one grammar.
bool qualified_name_part(std::string_view s) {
  if (s.empty() || s.size() > kMaxLabelName) return false;
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s)
    if (!alnum(c) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

bool dns1123_subdomain(std::string_view s) {
  if (s.empty() || s.size() > kMaxPrefix) return false;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t dot = s.find('.', start);
    const std::string_view part = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (part.empty() || part.size() > kMaxLabelName || !lower_alnum(part.front()) || !lower_alnum(part.back()))
      return false;
    for (char c : part)
      if (!lower_alnum(c) && c != '-') return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

}  // namespace

Labels standard_labels(const std::string& pool_name) {
  return {
      {std::string(kNameLabel), "gasoline-worker"},
      {std::string(kInstanceLabel), pool_name},
      {"app.kubernetes.io/component", "worker"},
      {"app.kubernetes.io/part-of", "gasoline"},
      {"app.kubernetes.io/managed-by", "gasoline-operator"},
      {std::string(kPoolLabel), pool_name},
  };
}

Labels selector_labels(const std::string& pool_name, const Labels& extra) {
  Labels out = extra;
  out[std::string(kNameLabel)] = "gasoline-worker";
  out[std::string(kInstanceLabel)] = pool_name;
  return out;
}

std::string to_selector_string(const Labels& labels) {
  std::string out;
  for (const auto& [key, value] : labels) {
    if (!out.empty()) out += ',';
    out += key + "=" + value;
  }
  return out;
}

std::string label_key_problem(std::string_view key) {
  const size_t slash = key.find('/');
  std::string_view name = key;
  if (slash != std::string_view::npos) {
    if (!dns1123_subdomain(key.substr(0, slash)))
      return "the prefix of label key \"" + std::string(key) +
             "\" must be a DNS subdomain (lowercase alphanumerics, '-' and '.', at most 253 characters)";
    name = key.substr(slash + 1);
  }
  if (!qualified_name_part(name))
    return "label key \"" + std::string(key) +
           "\" must be at most 63 alphanumerics, '-', '_' or '.' (after an optional prefix/), starting and ending "
           "with an alphanumeric";
  return {};
}

std::string label_value_problem(std::string_view value) {
  if (value.empty() || qualified_name_part(value)) return {};
  return "label value \"" + std::string(value) +
         "\" must be at most 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric";
}

std::string dns1035_label_problem(std::string_view name) {
  bool ok = !name.empty() && name.size() <= kMaxLabelName && name.front() >= 'a' && name.front() <= 'z' &&
            lower_alnum(name.back());
  for (char c : name)
    if (!lower_alnum(c) && c != '-') ok = false;
  if (ok) return {};
  return "\"" + std::string(name) +
         "\" must be a DNS-1035 label (at most 63 lowercase alphanumerics or '-', starting with a letter and ending "
         "with an alphanumeric): it names the Service and is the value of the app.kubernetes.io/instance label";
}

}  // namespace gasoline::op::pool
