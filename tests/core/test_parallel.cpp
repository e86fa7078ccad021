#include <catch2/catch.hpp>

#include <atomic>
#include <vector>

#include "lgh/core/parallel.hpp"

using namespace lgh;

TEST_CASE("parallel_for covers the range exactly once", "[core][parallel]") {
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    CHECK(num_threads() == threads);
    for (int64_t n : {0, 1, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (auto& h : hits) h = 0;
      parallel_for(0, n, 3, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) ++hits[static_cast<size_t>(i)];
      });
      for (auto& h : hits) REQUIRE(h == 1);
    }
  }
  set_num_threads(2);
}

TEST_CASE("nested parallel_for runs inline", "[core][parallel]") {
  set_num_threads(2);
  std::atomic<int> total{0};
  parallel_for(0, 4, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      parallel_for(0, 10, 1, [&](int64_t a, int64_t b) { total += static_cast<int>(b - a); });
  });
  CHECK(total == 40);
}

TEST_CASE("exceptions in tasks reach the caller", "[core][parallel]") {
  set_num_threads(2);
  CHECK_THROWS_WITH(parallel_tasks(4, [](int i) {
                      if (i == 2) throw Error("task 2 failed");
                    }),
                    "task 2 failed");
  // The pool still works afterwards.
  std::atomic<int> n{0};
  parallel_tasks(8, [&](int) { ++n; });
  CHECK(n == 8);
  CHECK_THROWS(set_num_threads(0));
}
