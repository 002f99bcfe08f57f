// store::Speculation: the leader's view of the state its next proposal meets (pure; a MapReader as the committed
// state). Its equivalence with applying entries one by one, at any lag, is in tests/integration/state_machine_test.cc.
#include "kv/store/keys.h"
#include "kv/store/speculation.h"

#include <gtest/gtest.h>

namespace gasoline::store {
namespace {

using State = std::map<std::string, std::string, std::less<>>;

std::vector<std::pair<std::string, std::string>> scan_all(const Reader& r, std::string_view prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  r.scan(prefix, [&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string(k), std::string(v));
    return true;
  });
  return out;
}

TEST(Speculation, ViewLayersNewestWinsOverTheCommittedState) {
  State committed{{"a1", "c"}, {"a2", "c"}, {"a3", "c"}, {"b1", "c"}};
  MapReader base(committed);
  Speculation s(base);
  s.push(5, Mutations{{"a1", "l5"}, {"a2", std::nullopt}, {"a4", "l5"}});
  s.push(6, Mutations{{"a2", "l6"}, {"a4", std::nullopt}, {"a5", "l6"}});
  const Reader& v = s.view();
  EXPECT_EQ(v.get("a1"), "l5");
  EXPECT_EQ(v.get("a2"), "l6");  // deleted by 5, written again by 6
  EXPECT_EQ(v.get("a3"), "c");
  EXPECT_EQ(v.get("a4"), std::nullopt);  // written by 5, deleted by 6
  EXPECT_EQ(v.get("zz"), std::nullopt);
  std::vector<std::pair<std::string, std::string>> want{{"a1", "l5"}, {"a2", "l6"}, {"a3", "c"}, {"a5", "l6"}};
  EXPECT_EQ(scan_all(v, "a"), want);
  // Stopping early is honoured.
  size_t seen = 0;
  v.scan("a", [&](std::string_view, std::string_view) { return ++seen < 2; });
  EXPECT_EQ(seen, 2u);

  // Entry 5 is applied to the committed state: its layer goes, the view is unchanged.
  committed["a1"] = "l5";
  committed.erase("a2");
  committed["a4"] = "l5";
  s.applied(5);
  EXPECT_EQ(s.layers(), 1u);
  EXPECT_EQ(scan_all(v, "a"), want);
  s.applied(6);
  EXPECT_EQ(s.layers(), 0u);
}

TEST(Speculation, LayersMustFollowEachOther) {
  State committed;
  MapReader base(committed);
  Speculation s(base);
  s.push(3, {});
  EXPECT_THROW(s.push(3, {}), std::logic_error);
  EXPECT_THROW(s.push(2, {}), std::logic_error);
  s.push(4, {});
  EXPECT_EQ(s.layers(), 2u);
}

// When a leader may speculate: (term, last_applied, last_index) calls in order, and the answer each gives.
TEST(Speculation, ReadyOnlyOnceATermHasAppliedWhatItInherited) {
  struct Step {
    const char* what;
    uint64_t term, applied, last;
    bool push = false;  // propose an entry at last + 1 when ready
    bool clear = false;
    bool want;
  };
  std::vector<Step> steps{
      {"fresh cluster, nothing inherited", 1, 0, 0, true, false, true},
      {"own entries in flight keep it ready", 1, 0, 1, true, false, true},
      {"term 2 inherits index 2 unapplied", 2, 0, 2, false, false, false},
      {"a read barrier appended later does not hold it back", 2, 2, 3, false, false, true},
      {"proposes in term 2", 2, 2, 3, true, false, true},
      {"leadership lost: everything dropped", 2, 2, 4, false, true, true},
      {"term 3 with nothing unapplied", 3, 4, 4, false, false, true},
      {"term 5 (skipped 4) inherits 6", 5, 4, 6, false, false, false},
      {"still behind", 5, 5, 7, false, false, false},
      {"caught up", 5, 6, 7, false, false, true},
  };
  State committed;
  MapReader base(committed);
  Speculation s(base);
  for (const auto& st : steps) {
    if (st.clear) {
      s.clear();
      EXPECT_EQ(s.layers(), 0u) << st.what;
      continue;
    }
    EXPECT_EQ(s.ready(st.term, st.applied, st.last), st.want) << st.what;
    if (st.push && st.want) s.push(st.last + 1, Mutations{{"k", std::to_string(st.last + 1)}});
  }
  // A new term drops the layers of the old one.
  s.push(8, Mutations{{"k", "8"}});
  EXPECT_EQ(s.view().get("k"), "8");
  EXPECT_FALSE(s.ready(6, 7, 8));
  EXPECT_EQ(s.layers(), 0u);
  EXPECT_EQ(s.view().get("k"), std::nullopt);
}

}  // namespace
}  // namespace gasoline::store
