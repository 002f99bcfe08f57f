#include "kv/assign/ranking.h"

#include <algorithm>

namespace gasoline::assign {

Ranking make_ranking(std::vector<std::string> worker_ids, std::string_view self) {
  Ranking r;
  r.members = std::move(worker_ids);
  std::erase_if(r.members, [](const std::string& id) { return id.empty(); });
  std::sort(r.members.begin(), r.members.end());
  r.members.erase(std::unique(r.members.begin(), r.members.end()), r.members.end());
  if (self.empty()) return r;

  auto it = std::lower_bound(r.members.begin(), r.members.end(), self);
  if (it == r.members.end() || *it != self) it = r.members.insert(it, std::string(self));
  r.self = static_cast<int>(it - r.members.begin());
  return r;
}

}  // namespace gasoline::assign
