// The launch-shape arithmetic of the fused CUDA kernels (kernels/fused_launch.hpp),
// checked on the CPU: every element is covered exactly once, grid and shared
// memory limits hold, and the index maps the kernels call are right.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "fused_launch.hpp"

using namespace lgh::cuda::launch;

TEST_CASE("one thread per item covers the items with whole warps", "[cuda][launch]") {
  for (int64_t items : {1, 21, 31, 32, 33, 63, 64, 127, 128, 129, 1344, 100003}) {
    for (unsigned max_threads : {128u, 256u}) {
      const Launch1D l = one_thread_per_item(items, max_threads);
      INFO("items " << items << ", max threads " << max_threads);
      CHECK(l.threads % 32 == 0);
      CHECK(l.threads >= 32);
      CHECK(l.threads <= max_threads);
      CHECK(l.blocks * l.threads >= items);
      CHECK((l.blocks - 1) * l.threads < items);  // no block without work
    }
  }
  // The model's selector (21 x 3) is one block of one warp.
  const Launch1D g = gumbel_softmax_launch(21);
  CHECK(g.blocks == 1);
  CHECK(g.threads == 32);
}

TEST_CASE("group selection backward splits its blocks between dx and dS", "[cuda][launch]") {
  for (int64_t B : {1, 7, 64}) {
    for (int64_t K : {1, 3, 5}) {
      const int64_t J = 21;
      const GroupSelectBackwardLaunch both = group_select_backward_launch(B, K, J, true, true);
      CHECK(both.dx_blocks * both.threads >= B * K * J);
      CHECK((both.dx_blocks - 1) * both.threads < B * K * J);
      CHECK(both.ds_blocks == J * K);
      CHECK(both.blocks() == both.dx_blocks + both.ds_blocks);
      CHECK(both.threads % 32 == 0);
      const GroupSelectBackwardLaunch ds_only = group_select_backward_launch(B, K, J, true, false);
      CHECK(ds_only.dx_blocks == 0);
      CHECK(ds_only.ds_blocks == J * K);
      const GroupSelectBackwardLaunch none = group_select_backward_launch(B, K, J, false, false);
      CHECK(none.blocks() == 0);
    }
  }
}

TEST_CASE("fusion GEMM tiles cover every output once and fit in shared memory", "[cuda][launch]") {
  CHECK(kFusionThreads == (kFusionBM / kFusionTM) * (kFusionBN / kFusionTN));
  CHECK(kFusionBN % kFusionTN == 0);
  CHECK(kFusionBM % kFusionTM == 0);
  // Tiles and row tables within the default 48 KB, at the largest concatenation.
  for (size_t elem : {sizeof(float), sizeof(double)}) {
    CHECK(fusion_gemm_static_shared_bytes(elem) + fusion_row_table_bytes(kMaxFusionRows) <= kMaxStaticSharedBytes);
    CHECK(fusion_wgrad_static_shared_bytes(elem) + fusion_row_table_bytes(kMaxFusionRows) <= kMaxStaticSharedBytes);
    // Rows of the padded tiles stay 16-byte aligned (vector reads).
    CHECK(((kFusionBM + kFusionPad) * elem) % 16 == 0);
    CHECK(((kFusionBW + kFusionPad) * elem) % 16 == 0);
    CHECK((kFusionTN * elem) % 16 == 0);
    CHECK(kFusionTW % 2 == 0);  // the weight-gradient accumulators are read in pairs
  }
  struct Case {
    int64_t B, M, HW;
  };
  for (const Case c : {Case{1, 96, 4096}, Case{64, 96, 4096}, Case{3, 7, 13 * 11}, Case{2, 33, 129}, Case{5, 1024, 1}}) {
    const Dim3 g = fusion_gemm_grid(c.B, c.M, c.HW);
    INFO("B " << c.B << ", M " << c.M << ", HW " << c.HW);
    CHECK(g.z == c.B);
    CHECK(g.y * kFusionBM >= c.M);
    CHECK((g.y - 1) * kFusionBM < c.M);
    CHECK(g.x * kFusionBN >= c.HW);
    CHECK((g.x - 1) * kFusionBN < c.HW);
  }
}

TEST_CASE("fusion weight-gradient splits cover every pixel of every image exactly once", "[cuda][launch]") {
  struct Case {
    int64_t B, M, HW;
  };
  for (const Case c : {Case{1, 96, 4096}, Case{32, 96, 4096}, Case{64, 96, 4096}, Case{1000, 96, 4096},
                       Case{3, 7, 13 * 11}, Case{1, 33, 5}, Case{2, 160, 1}, Case{300, 1024, 9}, Case{1, 96, 1}}) {
    const FusionWgradPlan p = fusion_wgrad_plan(c.B, c.M, c.HW);
    INFO("B " << c.B << ", M " << c.M << ", HW " << c.HW << ": " << p.splits << " splits of " << p.chunk
              << " columns, " << p.images_per_split << " images per split");
    CHECK(p.tiles * kFusionBW >= c.M);
    CHECK((p.tiles - 1) * kFusionBW < c.M);
    CHECK(p.splits >= 1);
    CHECK(p.splits <= kMaxGridYZ);
    CHECK(p.chunk % kFusionBKW == 0);  // vector loads never straddle a split
    CHECK(p.splits <= std::max<int64_t>(kFusionWgradMaxSplits, c.B));
    CHECK(fusion_wgrad_workspace_elems(p, c.M) == p.splits * (c.M * c.M + c.M));
    std::vector<int> seen(static_cast<size_t>(c.B * c.HW), 0);
    for (int64_t s = 0; s < p.splits; ++s) {
      const FusionWgradRange r = fusion_wgrad_range(p, s, c.B, c.HW);
      REQUIRE((r.b0 >= 0 && r.b0 < r.b1 && r.b1 <= c.B));
      REQUIRE((r.n0 >= 0 && r.n0 < r.n1 && r.n1 <= c.HW && r.n0 % kFusionBKW == 0));
      for (int64_t b = r.b0; b < r.b1; ++b)
        for (int64_t n = r.n0; n < r.n1; ++n) ++seen[static_cast<size_t>(b * c.HW + n)];
    }
    int64_t wrong = 0, first_wrong = -1;
    for (size_t i = 0; i < seen.size(); ++i)
      if (seen[i] != 1 && wrong++ == 0) first_wrong = static_cast<int64_t>(i);
    INFO("first pixel not covered exactly once: " << first_wrong % c.HW << " of image " << first_wrong / c.HW);
    CHECK(wrong == 0);
  }
  // The plan depends on the shapes only: the paper's batch of 64 (M = 96) is
  // one tile of dWall and 256 splits, 4 per image.
  const FusionWgradPlan paper = fusion_wgrad_plan(64, 96, 4096);
  CHECK(paper.tiles == 1);
  CHECK(paper.chunks_per_image == 4);
  CHECK(paper.splits * paper.tiles * paper.tiles == kFusionWgradTargetBlocks);
}

TEST_CASE("soft-argmax block size and vector path follow the map", "[cuda][launch]") {
  CHECK(soft_argmax_threads(1) == 32);
  CHECK(soft_argmax_threads(16 * 16) == 32);
  CHECK(soft_argmax_threads(64 * 64) == 128);  // paper: 32 pixels per thread
  CHECK(soft_argmax_threads(128 * 128) == 256);
  CHECK(soft_argmax_threads(1 << 24) == 256);
  for (int64_t hw = 1; hw < 100000; hw = hw * 3 + 1) {
    const unsigned t = soft_argmax_threads(hw);
    CHECK(t % 32 == 0);
    CHECK((t & (t - 1)) == 0);
    CHECK(t <= 256);
  }
  CHECK(soft_argmax_vector_width(sizeof(float)) == 4);
  CHECK(soft_argmax_vector_width(sizeof(double)) == 2);
  CHECK(soft_argmax_can_vectorize(64, sizeof(float), true));
  CHECK_FALSE(soft_argmax_can_vectorize(64, sizeof(float), false));
  CHECK_FALSE(soft_argmax_can_vectorize(30, sizeof(float), true));  // a vector would cross a row
  CHECK(soft_argmax_can_vectorize(30, sizeof(double), true));
  CHECK_FALSE(soft_argmax_can_vectorize(7, sizeof(double), true));
}

TEST_CASE("Adam chunks cover every element of every run exactly once", "[cuda][launch][optim]") {
  const std::vector<std::vector<int64_t>> cases = {
      {7502833},                                   // the paper model as one flat run
      {63, 1024, 7501746},                         // three groups: theta, fusion, the rest
      {0, 5, 0, 0, 4096, 4097, 1, 0},              // empty runs anywhere, chunk boundaries
      std::vector<int64_t>(kAdamMaxRuns, 3),       // a full table
      {1},
  };
  for (const auto& sizes : cases) {
    AdamTable<float> table{};
    table.num_runs = static_cast<int>(sizes.size());
    REQUIRE(table.num_runs <= kAdamMaxRuns);
    for (size_t r = 0; r < sizes.size(); ++r) table.runs[r].n = sizes[r];
    const int64_t chunks = adam_plan_chunks(table);
    CHECK(table.chunk_start[0] == 0);
    CHECK(table.chunk_start[table.num_runs] == chunks);
    std::vector<int64_t> covered(sizes.size(), 0);
    int64_t last_end = 0;
    int last_run = -1;
    for (int64_t c = 0; c < chunks; ++c) {
      const int r = adam_chunk_run(table, c);
      REQUIRE((r >= 0 && r < table.num_runs));
      REQUIRE(sizes[static_cast<size_t>(r)] > 0);  // an empty run never owns a chunk
      const int64_t begin = (c - table.chunk_start[r]) * kAdamChunk;
      const int64_t end = std::min(begin + kAdamChunk, sizes[static_cast<size_t>(r)]);
      REQUIRE(begin < end);
      if (r == last_run) {
        CHECK(begin == last_end);  // contiguous within a run
      } else {
        CHECK(begin == 0);
        CHECK(r > last_run);
      }
      covered[static_cast<size_t>(r)] += end - begin;
      last_end = end;
      last_run = r;
    }
    for (size_t r = 0; r < sizes.size(); ++r) CHECK(covered[r] == sizes[r]);
  }
  CHECK(sizeof(AdamTable<double>) <= 4096);
  CHECK(kAdamChunk % kAdamThreads == 0);
}
