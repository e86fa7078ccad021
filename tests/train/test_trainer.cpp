#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "lgh/data/synthetic.hpp"
#include "lgh/train/trainer.hpp"
#include "scratch_dir.hpp"

using namespace lgh;

namespace {

nn::ModelConfig tiny(int K = 3, bool fusion = true) {
  nn::ModelConfig c;
  c.input_size = 64;
  c.features = 8;
  c.p0 = 4;
  c.p1 = 4;
  c.hourglass_depth = 2;
  c.hourglass_modules = 1;
  c.num_groups = K;
  c.fusion = fusion;
  return c;
}

std::shared_ptr<const data::Dataset> hands(uint64_t seed) {
  data::SyntheticConfig c;
  c.image_size = 80;
  c.seed = seed;
  c.count = 1 << 12;
  return std::make_shared<data::SyntheticHands>(c);
}

train::TrainOptions options(const std::string& dir, int64_t steps) {
  train::TrainOptions o;
  o.out_dir = dir;
  o.steps = steps;
  o.batch = 2;
  o.plan = train::StagePlan::Both;
  o.stage1_steps = 3;
  o.lr.rest = 1e-3;
  o.tau = optim::TemperatureSchedule(5.0, 0.5, 2, 0.1);  // τ moves within a few steps
  o.seed = 11;
  o.checkpoint_every = 2;
  o.log_every = 1;
  o.eval_every = 3;
  o.eval_samples = 2;
  return o;
}

// Every tensor of two safetensors files, bit for bit (names from `a`).
void require_same_tensors(const std::string& a, const std::string& b, const std::string& prefix = "") {
  io::SafetensorsReader fa(a), fb(b);
  REQUIRE(fa.names() == fb.names());
  int compared = 0;
  for (const std::string& name : fa.names()) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    INFO(name);
    if (fa.record(name).dtype == DType::I64)
      REQUIRE(fa.load<int64_t>(name).to_vector() == fb.load<int64_t>(name).to_vector());
    else
      REQUIRE(fa.load<float>(name).to_vector() == fb.load<float>(name).to_vector());
    ++compared;
  }
  REQUIRE(compared > 0);
}

}  // namespace

TEST_CASE("parameter groups: one place, the paper's rates", "[train]") {
  nn::LearnableGroupsModel<float> model(tiny());
  const train::LearningRates lr;
  const auto s1 = train::parameter_groups(model, train::Stage::Backbone2D, lr);
  REQUIRE(s1.size() == 1);
  CHECK(s1[0].lr == 1e-3);
  CHECK(s1[0].params.size() == model.backbone->trainable_parameters().size());
  const auto s2 = train::parameter_groups(model, train::Stage::Full, lr);
  REQUIRE(s2.size() == 3);
  CHECK((s2[0].name == "rest" && s2[0].lr == 1e-4));
  CHECK((s2[1].name == "selector" && s2[1].lr == 1e-1 && s2[1].params.size() == 1));
  CHECK((s2[2].name == "fusion" && s2[2].lr == 1e-2));
  size_t n = 0;
  for (const auto& g : s2) n += g.params.size();
  CHECK(n == model.trainable_parameters().size());
  // Fixed groups: θ is not trained; K = 1 has no fusion.
  CHECK(train::parameter_groups(model, train::Stage::Full, lr, train::GroupMode::Fixed).size() == 2);
  nn::LearnableGroupsModel<float> k1(tiny(1));
  CHECK(train::parameter_groups(k1, train::Stage::Full, lr).size() == 2);
}

TEST_CASE("manual groups: thumb, index, other fingers; fixed through training", "[train]") {
  const auto g = train::manual_groups();
  REQUIRE(g.size() == 21);
  for (int j = 1; j <= 4; ++j) CHECK(g[j] == 0);
  for (int j = 5; j <= 8; ++j) CHECK(g[j] == 1);
  CHECK(g[0] == 2);
  for (int j = 9; j <= 20; ++j) CHECK(g[j] == 2);

  lgh_test::ScratchDir dir("train_manual");
  auto o = options(dir.str(), 5);
  o.groups = train::GroupMode::Fixed;
  o.fixed_groups = g;
  train::Trainer t(tiny(), hands(1), nullptr, o);
  const auto theta0 = t.model().selector->theta.detach().clone().to_vector();
  t.run();
  CHECK(t.model().selector->assignment() == g);
  CHECK(t.model().selector->theta.detach().contiguous().to_vector() == theta0);
}

TEST_CASE("resume is exact: N steps + N resumed == 2N straight", "[train][resume]") {
  lgh_test::ScratchDir dir("train_resume");
  const std::string straight = dir.str() + "/straight", split = dir.str() + "/split";
  // Stage 1 takes 3 steps: the first half ends in stage 2 at N = 4; with
  // N = 2 it ends in stage 1 (the other side of the transition).
  for (const int64_t N : {int64_t(4), int64_t(2)}) {
    DYNAMIC_SECTION("N = " << N) {
      train::Trainer a(tiny(), hands(1), hands(99), options(straight, 2 * N));
      a.run();
      {
        train::Trainer b(tiny(), hands(1), hands(99), options(split, N));
        b.run();
        CHECK(b.state().step == N);
      }
      auto o = options(split, 2 * N);
      o.resume = true;
      train::Trainer c(tiny(), hands(1), hands(99), o);
      c.run();
      CHECK(c.state().step == 2 * N);
      require_same_tensors(straight + "/last.safetensors", split + "/last.safetensors");
      // The optimizer state too (moments and step counts), and the loader position.
      require_same_tensors(straight + "/last.state.safetensors", split + "/last.state.safetensors", "optim.");
      CHECK(c.state().loader_batch == a.state().loader_batch);
      CHECK(c.state().tau == a.state().tau);
      CHECK(c.state().stage == train::Stage::Full);
      // And the run really moved: the weights differ from the initial ones.
      nn::LearnableGroupsModel<float> init(tiny(), 11);
      auto trained = io::load_model<float>(straight + "/last.safetensors");
      CHECK(trained->backbone->trainable_parameters()[0].detach().contiguous().to_vector() !=
            init.backbone->trainable_parameters()[0].detach().contiguous().to_vector());
      std::filesystem::remove_all(straight);
      std::filesystem::remove_all(split);
    }
  }
}

TEST_CASE("a different run's settings or a finished run are refused on resume", "[train][resume]") {
  lgh_test::ScratchDir dir("train_resume_bad");
  const std::string run = dir.str() + "/run";
  train::Trainer(tiny(), hands(1), nullptr, options(run, 4)).run();
  // Not resuming into a directory with a run.
  CHECK_THROWS_WITH(train::Trainer(tiny(), hands(1), nullptr, options(run, 6)).run(), Catch::Contains("already holds a training run"));
  auto o = options(run, 6);
  o.resume = true;
  o.batch = 3;
  CHECK_THROWS_WITH(train::Trainer(tiny(), hands(1), nullptr, o).run(), Catch::Contains("batch"));
  o = options(run, 6);
  o.resume = true;
  CHECK_THROWS_WITH(train::Trainer(tiny(2), hands(1), nullptr, o).run(), Catch::Contains("config"));
  CHECK_THROWS_WITH(train::Trainer(tiny(), hands(2), nullptr, o).run(), Catch::Contains("data"));
  o.stage1_steps = 2;  // stage 2 began after 3 steps of stage 1
  CHECK_THROWS_WITH(train::Trainer(tiny(), hands(1), nullptr, o).run(), Catch::Contains("stage 2 began after 3"));
  o = options(run, 3);
  o.resume = true;
  CHECK_THROWS_WITH(train::Trainer(tiny(), hands(1), nullptr, o).run(), Catch::Contains("beyond the 3 steps"));
  o = options(dir.str() + "/none", 3);
  o.resume = true;
  CHECK_THROWS_WITH(train::Trainer(tiny(), hands(1), nullptr, o).run(), Catch::Contains("nothing to resume"));
}

TEST_CASE("a run writes weights, state, log and groups", "[train]") {
  lgh_test::ScratchDir dir("train_files");
  std::vector<train::LogRow> rows;
  std::vector<train::HeldOutRecord> evals;
  auto o = options(dir.str(), 6);
  o.on_log = [&](const train::LogRow& r) { rows.push_back(r); };
  o.on_eval = [&](const train::HeldOutRecord& r) { evals.push_back(r); };
  train::Trainer t(tiny(), hands(1), hands(99), o);
  t.run();
  for (const char* f : {"last.safetensors", "best.safetensors", "last.state.safetensors", "log.csv", "groups.png", "groups.txt"})
    CHECK(std::filesystem::exists(dir.path() / f));
  REQUIRE(rows.size() == 6);
  CHECK(rows[0].stage == train::Stage::Backbone2D);
  CHECK(rows[0].lr == 1e-3);
  CHECK(rows[5].stage == train::Stage::Full);
  CHECK(rows[5].lr == 1e-3);  // o.lr.rest
  CHECK(rows[3].tau == 5.0);   // stage 2, step 0 of it
  CHECK(rows[5].tau == 4.5);   // two steps on: one drop of 0.5
  for (const auto& r : rows) CHECK(std::isfinite(r.loss));
  REQUIRE(evals.size() == 3);  // steps 0 (untrained), 3 (stage 1) and 6 (stage 2)
  CHECK(evals[0].step == 0);
  CHECK(evals[1].stage == train::Stage::Backbone2D);
  CHECK(evals[1].backbone_2d_px > 0);
  CHECK(evals[1].epe_mm > 0);
  CHECK(evals[2].stage == train::Stage::Full);
  CHECK(evals[2].epe_mm > 0);
  CHECK(evals[2].best);  // the first stage 2 evaluation is the best of its stage
  // log.csv: the header and one row per step, evaluations on their step's row.
  std::ifstream in((dir.path() / "log.csv").string());
  std::string line;
  std::getline(in, line);
  CHECK(line == train::Trainer::kLogHeader);
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    CHECK(std::count(line.begin(), line.end(), ',') == 11);
  }
  CHECK(n == 7);  // the evaluation of step 0 has a row of its own
  io::SafetensorsReader last((dir.path() / "last.safetensors").string());
  CHECK(last.metadata().at(train::kStepMetadataKey) == "6");
  CHECK(io::read_temperature(last, 0) == Approx(4.5));
  std::ifstream groups((dir.path() / "groups.txt").string());
  std::getline(groups, line);
  CHECK(line.rfind("group 1:", 0) == 0);
}

TEST_CASE("a NaN loss or gradient stops training and keeps the last good checkpoint", "[train]") {
  lgh_test::ScratchDir dir("train_nan");
  // After the checkpoint of step 4, one weight becomes NaN: in the depth head
  // (no ReLU follows: the loss is NaN) or in the neck (a ReLU may hide it
  // from the loss, not from the gradient).
  for (const bool in_head : {true, false}) {
    const std::string run = dir.str() + (in_head ? "/head" : "/neck");
    train::Trainer* trainer = nullptr;
    auto o = options(run, 8);
    o.on_log = [&](const train::LogRow& r) {
      if (r.step != 5) return;
      autograd::NoGradGuard ng;
      auto& m = trainer->model();
      Tensor<float> w = (in_head ? m.heads[0]->depth_b->weight : m.neck_a->trainable_parameters()[0]).detach();
      w.data()[0] = std::nanf("");
    };
    train::Trainer t(tiny(), hands(1), nullptr, o);
    trainer = &t;
    try {
      t.run();
      FAIL("no error");
    } catch (const train::NonFiniteLoss& e) {
      const std::string m = e.what();
      CHECK_THAT(m, Catch::Contains("step 5") && Catch::Contains("training stopped before the update"));
      CHECK_THAT(m, Catch::Contains("last good checkpoint, step 4"));
      if (in_head) CHECK_THAT(m, Catch::Contains("the loss is nan"));
    }
    // The checkpoint of step 4 is intact, finite and resumable.
    io::SafetensorsReader f(run + "/last.state.safetensors");
    CHECK(train::read_train_state(f).step == 4);
    int64_t non_finite = 0;
    for (const std::string& name : f.names())
      if (f.record(name).dtype == DType::F32)
        for (float v : f.load<float>(name).to_vector()) non_finite += !std::isfinite(v);
    CHECK(non_finite == 0);
    auto r = options(run, 6);
    r.resume = true;
    train::Trainer resumed(tiny(), hands(1), nullptr, r);
    resumed.run();
    CHECK(resumed.state().step == 6);
  }
}

TEST_CASE("a checkpoint is never written with non-finite weights", "[train]") {
  lgh_test::ScratchDir dir("train_nonfinite_save");
  nn::LearnableGroupsModel<float> model(tiny());
  nn::flatten(model);
  train::TrainStep step(model, train::Stage::Full);
  {
    autograd::NoGradGuard ng;
    model.backbone->trainable_parameters()[0].detach().data()[0] = INFINITY;
  }
  const std::string path = dir.str() + "/c.safetensors";
  CHECK_THROWS_WITH(train::save_checkpoint(path, model, step.optimizer(), train::TrainState{}),
                    Catch::Contains("non-finite") && Catch::Contains("not written"));
  CHECK_FALSE(std::filesystem::exists(path));
}

// A child writes checkpoints of the `small` model in a loop (each some tens of
// megabytes with the optimizer state) and is killed with SIGKILL at a random
// moment; the checkpoint on disk must then be one of those written, whole.
TEST_CASE("a process killed while writing checkpoints leaves the previous one loadable", "[train][kill]") {
  lgh_test::ScratchDir dir("train_kill");
  const std::string path = dir.str() + "/last.state.safetensors";
  PhiloxEngine rng(2024);
  for (int trial = 0; trial < 6; ++trial) {
    std::filesystem::remove(path);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Child: checkpoint k holds every parameter equal to k and step k.
      // (Its parallel loops run on this thread alone: the pool's workers
      // were not forked, and the caller claims every task itself.)
      try {
        nn::LearnableGroupsModel<float> model(nn::ModelConfig::small());
        nn::flatten(model);
        train::TrainStep step(model, train::Stage::Full);
        for (int64_t k = 1;; ++k) {
          {
            autograd::NoGradGuard ng;
            for (auto& p : model.trainable_parameters()) p.detach().fill_(static_cast<float>(k));
          }
          train::TrainState s;
          s.step = k;
          train::save_checkpoint(path, model, step.optimizer(), s);
        }
      } catch (...) {
      }
      ::_exit(3);
    }
    while (!std::filesystem::exists(path)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::microseconds(rng.below(400000)));
    REQUIRE(::kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status));

    nn::LearnableGroupsModel<float> model(nn::ModelConfig::small());
    nn::flatten(model);
    train::TrainStep step(model, train::Stage::Full);
    const io::SafetensorsReader f(path);
    const train::TrainState s = train::load_checkpoint(f, model, step.optimizer());
    INFO("trial " << trial << ": checkpoint of step " << s.step);
    CHECK(s.step >= 1);
    int64_t other = 0;  // values of another checkpoint than the one named by its step
    for (const auto& p : model.trainable_parameters())
      for (float v : p.detach().contiguous().to_vector()) other += v != static_cast<float>(s.step);
    CHECK(other == 0);
    // A temporary file of the interrupted write may remain; it is never the checkpoint.
  }
}

TEST_CASE("a step that reads nothing back trains exactly as one that does", "[train]") {
  // The form a device's training loop uses between logged steps: no loss
  // read back, no host-side checks, the loss kept where the step ran.
  data::LoaderOptions lo;
  lo.batch_size = 2;
  lo.seed = 3;
  lo.num_workers = 0;
  lo.crop.size = tiny().input_size;
  data::Loader loader(hands(2), lo);
  data::Batch b0, b1;
  REQUIRE(loader.next(b0));
  REQUIRE(loader.next(b1));
  nn::LearnableGroupsModel<float> a(tiny()), b(tiny());
  {
    autograd::NoGradGuard no_grad;
    const auto pa = a.named_parameters(), pb = b.named_parameters();
    REQUIRE(pa.size() == pb.size());
    for (size_t i = 0; i < pa.size(); ++i) pb[i].tensor.detach().copy_(pa[i].tensor.detach());
  }
  nn::flatten(a);
  nn::flatten(b);
  const train::LearningRates lr;
  train::TrainStep sa(a, train::Stage::Full, lr, train::GroupMode::Learned, {}, 5);
  train::TrainStep sb(b, train::Stage::Full, lr, train::GroupMode::Learned, {}, 5);
  for (int i = 0; i < 2; ++i) {
    const data::Batch& batch = i == 0 ? b0 : b1;
    const train::StepLoss read = sa.run(batch, i, i);
    const train::StepLoss unread = sb.run(batch, i, i, /*read_loss=*/false);
    CHECK(read.total > 0);
    CHECK(unread.total == 0);
    REQUIRE(sb.last_loss().numel() == 1);
    CHECK(static_cast<double>(sb.last_loss().item()) == Approx(read.total).epsilon(1e-6));
  }
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].name);
    REQUIRE(pa[i].tensor.contiguous().to_vector() == pb[i].tensor.contiguous().to_vector());
  }
}
