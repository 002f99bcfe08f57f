#pragma once
// The leader's view of the state its next proposal will meet: the committed state plus the effects of every
// entry it proposed in this term that is not applied yet, newest last. The leader computes an entry's effects
// (apply_entry) against this view when it proposes, and followers only write them (kv/store/effects.h).
//
// The view is only sound while every entry in the log after the last applied one is one of these layers, so:
//   - layers belong to one term: a new term (or losing leadership) drops them all, because entries of a leader
//     that lost its term may be replaced;
//   - a new leader may not speculate until everything it inherited is applied (`ready`); RaftLog commits a
//     barrier of its own term to get there.
// Pure bookkeeping over a Reader: no I/O of its own, no clock.
#include "kv/store/apply.h"

#include <deque>

namespace gasoline::store {

class Speculation {
 public:
  explicit Speculation(const Reader& committed) : committed_(committed), view_(*this) {}

  // Whether the leader of `term` may compute on top of its layers now. A term other than the layers' drops them;
  // a new term becomes ready once the log is applied up to the last index it had when the term was first seen.
  bool ready(uint64_t term, uint64_t last_applied, uint64_t last_index);

  // The effects of `entry` at `index` (the next log index), over the committed state and every layer.
  Applied compute(const Entry& entry, uint64_t index, const Config& config) const;
  // Records the proposal of the entry at `index` (strictly after the last layer) so later ones see its effects.
  void push(uint64_t index, Mutations mutations);
  // The entry at `index` is applied to the committed state: its layer (and any older) is no longer needed.
  void applied(uint64_t index);
  // Leadership lost: nothing proposed can be relied on any more.
  void clear();

  size_t layers() const { return layers_.size(); }
  const Reader& view() const { return view_; }

 private:
  class View : public Reader {
   public:
    explicit View(const Speculation& s) : s_(s) {}
    std::optional<std::string> get(std::string_view key) const override;
    void scan(std::string_view prefix, const ScanFn& fn) const override;

   private:
    const Speculation& s_;
  };

  const Reader& committed_;
  View view_;
  std::deque<std::pair<uint64_t, Mutations>> layers_;
  uint64_t term_ = 0;
  uint64_t inherited_end_ = 0;  // the last log index when this term's leader first asked
  bool ready_ = false;
};

}  // namespace gasoline::store
