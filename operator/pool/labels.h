#pragma once
// The labels the operator puts on the pool's children and pods, and the Kubernetes name and label syntax checks
// that keep an invalid pool from turning into a Deployment the API server rejects with a less helpful message.
#include <map>
#include <string>
#include <string_view>

namespace gasoline::op::pool {

using Labels = std::map<std::string, std::string>;  // sorted by key, which the selector string relies on

inline constexpr std::string_view kNameLabel = "app.kubernetes.io/name";
inline constexpr std::string_view kInstanceLabel = "app.kubernetes.io/instance";
inline constexpr std::string_view kPoolLabel = "gasoline.dev/pool";

// On every child and on the pod template: name, instance, component, part-of, managed-by, gasoline.dev/pool.
Labels standard_labels(const std::string& pool_name);

// The Deployment, Service and PDB selector: name and instance plus the pool's selectorLabels.
Labels selector_labels(const std::string& pool_name, const Labels& extra);

// "k=v,k=v" in key order: the form of status.selector that the scale subresource hands to an HPA.
std::string to_selector_string(const Labels& labels);

// Syntax checks; each returns the problem or an empty string.
std::string label_key_problem(std::string_view key);
std::string label_value_problem(std::string_view value);
// A DNS-1035 label (lowercase alphanumerics and '-', starting with a letter, at most 63 characters): the pool name
// names the Service, which needs exactly that, and is a label value, which allows at most 63 characters.
std::string dns1035_label_problem(std::string_view name);

}  // namespace gasoline::op::pool
