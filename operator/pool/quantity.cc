#include "operator/pool/quantity.h"

#include <array>
#include <utility>

namespace gasoline::op::pool {
namespace {

// Real quantities are a handful of characters; the cap keeps the digit arithmetic below trivially cheap and
// anything longer is compared as a plain string.
constexpr size_t kMaxQuantityLength = 128;
constexpr int64_t kMaxExponent = 1'000'000'000;

struct Suffix {
  std::string_view text;
  int64_t exp10;
  int64_t exp2;
};

constexpr std::array<Suffix, 15> kSuffixes{{
    {"Ki", 0, 10}, {"Mi", 0, 20}, {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50}, {"Ei", 0, 60},
    {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},  {"", 0, 0},    {"k", 3, 0},   {"M", 6, 0},
    {"G", 9, 0},   {"T", 12, 0},  {"P", 15, 0},
}};
constexpr Suffix kExa{"E", 18, 0};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Divides the decimal number in `digits` by `divisor` if that leaves no remainder.
bool divide_exactly(std::string& digits, int divisor) {
  std::string quotient;
  int remainder = 0;
  for (char c : digits) {
    const int current = remainder * 10 + (c - '0');
    if (!quotient.empty() || current / divisor != 0) quotient.push_back(static_cast<char>('0' + current / divisor));
    remainder = current % divisor;
  }
  if (remainder != 0) return false;
  digits = quotient.empty() ? "0" : quotient;
  return true;
}

std::optional<std::pair<int64_t, int64_t>> parse_suffix(std::string_view s) {
  for (const auto& suffix : kSuffixes)
    if (s == suffix.text) return std::pair{suffix.exp10, suffix.exp2};
  if (s == kExa.text) return std::pair{kExa.exp10, kExa.exp2};
  if (s.size() < 2 || (s[0] != 'e' && s[0] != 'E')) return std::nullopt;
  size_t i = 1;
  bool negative = false;
  if (s[i] == '+' || s[i] == '-') negative = s[i++] == '-';
  if (i == s.size()) return std::nullopt;
  int64_t exponent = 0;
  for (; i < s.size(); ++i) {
    if (!is_digit(s[i])) return std::nullopt;
    exponent = exponent * 10 + (s[i] - '0');
    if (exponent > kMaxExponent) return std::nullopt;
  }
  return std::pair{negative ? -exponent : exponent, int64_t{0}};
}

}  // namespace

std::optional<ExactQuantity> parse_quantity(std::string_view text) {
  if (text.empty() || text.size() > kMaxQuantityLength) return std::nullopt;
  size_t i = 0;
  bool negative = false;
  if (text[i] == '+' || text[i] == '-') negative = text[i++] == '-';
  std::string digits;
  int64_t fraction_digits = 0;
  size_t mantissa_digits = 0;
  for (; i < text.size() && is_digit(text[i]); ++i, ++mantissa_digits) digits.push_back(text[i]);
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && is_digit(text[i]); ++i, ++mantissa_digits, ++fraction_digits)
      digits.push_back(text[i]);
  }
  if (mantissa_digits == 0) return std::nullopt;
  const auto suffix = parse_suffix(text.substr(i));
  if (!suffix) return std::nullopt;

  ExactQuantity q;
  const size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) {
    q.odd_part = "0";
    return q;
  }
  digits.erase(0, first);
  int64_t exp10 = suffix->first - fraction_digits;
  while (digits.back() == '0') {
    digits.pop_back();
    ++exp10;
  }
  while (divide_exactly(digits, 2)) ++q.twos;
  while (divide_exactly(digits, 5)) ++q.fives;
  q.negative = negative;
  q.odd_part = std::move(digits);
  q.twos += exp10 + suffix->second;
  q.fives += exp10;
  return q;
}

bool same_quantity(std::string_view a, std::string_view b) {
  const auto qa = parse_quantity(a);
  const auto qb = parse_quantity(b);
  return qa && qb && *qa == *qb;
}

}  // namespace gasoline::op::pool
