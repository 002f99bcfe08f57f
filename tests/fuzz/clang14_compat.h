// Pre-included (clang++ -include) into kv/store/command.cc for the fuzz build only, and only while that file has
// no deduction guide for its `overloaded` visitor helper (tests/fuzz/CMakeLists.txt checks). g++ 12 deduces
// aggregate template arguments (C++20 P1816); clang 14 does not, so it needs the classic C++17 guide. The guide
// is declared here, in the same unnamed namespace, ahead of command.cc's own definition of the template.
#pragma once

namespace gasoline::store {
namespace {
template <class... Ts>
struct overloaded;
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;
}  // namespace
}  // namespace gasoline::store
