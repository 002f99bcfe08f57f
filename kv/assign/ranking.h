#pragma once
// The member list of one pool, in the one order every caller agrees on.
//
// Assignment is computed independently by each caller, so all of them must index the same sorted list.
// A caller that does not find itself (its ping is not yet visible, or the list is empty) inserts itself
// where it will sit once its ping lands, so its view matches what peers will see next. The original
// fell back to index 0 instead, which doubled up on buckets 0/1 and divided by zero when N was 0.
#include <string>
#include <string_view>
#include <vector>

namespace gasoline::assign {

struct Ranking {
  // Sorted by byte order (std::string's comparison is memcmp-like), no duplicates, no empty ids.
  std::vector<std::string> members;
  // Index of self in members; -1 only when self was empty (an observer such as the leader's bump logic).
  int self = -1;
};

// Empty ids are dropped: an empty id means "no self" and is never a valid worker id.
// Never returns an empty list when self is non-empty.
Ranking make_ranking(std::vector<std::string> worker_ids, std::string_view self);

}  // namespace gasoline::assign
