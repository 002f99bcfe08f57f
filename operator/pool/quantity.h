#pragma once
// Kubernetes resource quantities ("500m", "1Gi", "1e3", "0.5"), compared by value.
//
// The API server stores a quantity in its canonical form: "0.5" comes back as "500m", "1000m" as "1", while
// "1024Mi" stays "1024Mi" and "1Gi" stays "1Gi". Comparing the strings would make every pool that writes "0.5"
// look changed on every reconcile, so the comparison is on the exact value: no floating point, so "0.1" and
// "100m" are equal and 1 and 1.0000000000000001 are not.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gasoline::op::pool {

// value = sign * odd_part * 2^twos * 5^fives with odd_part not divisible by 2 or 5: a unique form for every
// quantity, so two quantities are equal exactly when their forms are.
struct ExactQuantity {
  bool negative = false;
  std::string odd_part;  // decimal digits, no leading zeros; "0" for zero (then the rest is zero too)
  int64_t twos = 0;
  int64_t fives = 0;
  bool operator==(const ExactQuantity&) const = default;
};

// nullopt when the text is not a quantity (the grammar of k8s.io/apimachinery's ParseQuantity:
// sign, digits with an optional fraction, then a binary suffix Ki..Ei, a decimal suffix n u m k M G T P E,
// or an exponent e/E with an integer).
std::optional<ExactQuantity> parse_quantity(std::string_view text);

bool same_quantity(std::string_view a, std::string_view b);  // false if either is not a quantity

}  // namespace gasoline::op::pool
