// common/random_id.h: the prefix, then 26 base32 characters from an alphabet without i, l, o and u; no repeats.
#include "common/random_id.h"

#include <gtest/gtest.h>

#include <set>

namespace gasoline {
namespace {

TEST(RandomId, PrefixThenTwentySixBase32Characters) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    auto id = random_id("wf_");
    ASSERT_EQ(id.size(), 3u + 26u) << id;
    ASSERT_EQ(id.rfind("wf_", 0), 0u) << id;
    ASSERT_EQ(id.find_first_not_of("0123456789abcdefghjkmnpqrstvwxyz", 3), std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 10000u);
  EXPECT_EQ(random_id("").size(), 26u);
}

}  // namespace
}  // namespace gasoline
