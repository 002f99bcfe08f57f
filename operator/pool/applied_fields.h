#pragma once
// Fields our last server-side apply set that the desired object no longer has.
//
// semantic_subset(desired, live) cannot see a removal: when the user deletes an env var or a nodeSelector from the
// pool, desired is still a subset of live, yet an apply would delete the field (server-side apply removes fields the
// manager set before and leaves out now). The API server records exactly which fields each manager's last apply
// contained, in metadata.managedFields[].fieldsV1, and that set names list items by their keys
// (`k:{"name":"app"}`), so it can be checked against desired without knowing the schema.
#include <nlohmann/json.hpp>

#include <initializer_list>
#include <string_view>

namespace gasoline::op::pool {

// True when live's managedFields entry for `field_manager` (operation Apply, no subresource) lists a field that
// desired lacks, or when that entry cannot be read with certainty (other apiVersion, unknown key format): both
// mean the apply must be sent. False when there is no such entry: we never applied, so we can drop nothing.
bool drops_applied_field(const nlohmann::json& desired, const nlohmann::json& live, std::string_view field_manager);

// Whether our last apply (live's managedFields entry for `field_manager`, operation Apply) set the field at `path`,
// e.g. {"spec", "replicas"}.
bool applied_field(const nlohmann::json& live, std::string_view field_manager,
                   std::initializer_list<std::string_view> path);

// The reconciler's question: would applying desired change live? (!semantic_subset || drops_applied_field)
bool needs_apply(const nlohmann::json& desired, const nlohmann::json& live, std::string_view field_manager);

}  // namespace gasoline::op::pool
