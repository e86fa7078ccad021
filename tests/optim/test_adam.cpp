#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lgh/ops/elementwise.hpp"
#include "lgh/optim/adam.hpp"

using namespace lgh;
using lgh::optim::Adam;
using lgh::optim::AdamState;
using lgh::optim::ParamGroup;
using Catch::Matchers::Contains;

namespace {

// ---- the PyTorch fixture (tests/reference/adam_reference.py) ----------------

nlohmann::json load_adam_fixture() {
  const std::string path = std::string(LGH_TEST_DATA_DIR) + "/fixtures/adam_reference.json";
  std::ifstream in(path);
  REQUIRE(in.good());  // run tests/reference/adam_reference.py to regenerate
  return nlohmann::json::parse(in);
}

template <typename T>
Tensor<T> tensor_from_json(const nlohmann::json& j) {
  const std::vector<int64_t> shape = j.at("shape").get<std::vector<int64_t>>();
  const std::vector<double> data = j.at("data").get<std::vector<double>>();
  std::vector<T> values(data.begin(), data.end());  // float32 values are exact in the JSON
  return Tensor<T>::from_data(Shape(shape), values);
}

// The fixture's parameters in group order, as fresh leaves requiring grad.
template <typename T>
struct FixtureRun {
  std::vector<std::string> names;  // "group.param"
  std::vector<Tensor<T>> params;
  std::vector<ParamGroup<T>> groups;

  explicit FixtureRun(const nlohmann::json& fx) {
    for (const auto& g : fx.at("groups")) {
      ParamGroup<T> grp;
      grp.name = g.at("name").get<std::string>();
      grp.lr = g.at("lr").get<double>();
      grp.beta1 = g.at("beta1").get<double>();
      grp.beta2 = g.at("beta2").get<double>();
      grp.eps = g.at("eps").get<double>();
      grp.weight_decay = g.at("weight_decay").get<double>();
      grp.amsgrad = g.at("amsgrad").get<bool>();
      for (const auto& pn : g.at("params")) {
        const std::string name = grp.name + "." + pn.get<std::string>();
        Tensor<T> p = tensor_from_json<T>(fx.at("initial").at(name));
        p.set_requires_grad(true);
        names.push_back(name);
        params.push_back(p);
        grp.params.push_back(p);
      }
      groups.push_back(grp);
    }
  }

  // Installs the gradients of `step` and applies its learning-rate changes.
  void prepare_step(const nlohmann::json& fx, Adam<T>& opt, int step) const {
    for (const auto& c : fx.at("lr_changes"))
      if (c.at("step").get<int>() == step) opt.set_lr(c.at("group").get<size_t>(), c.at("lr").get<double>());
    const auto& gs = fx.at("grads").at(static_cast<size_t>(step));
    for (size_t k = 0; k < names.size(); ++k) {
      const auto& g = gs.at(names[k]);
      Tensor<T> p = params[k];
      p.set_grad(g.is_null() ? Tensor<T>() : tensor_from_json<T>(g));
    }
  }

  // max |param - torch| after `step`; counts the elements that differ at all.
  double max_error(const nlohmann::json& fx, const char* key, int step, int64_t* differing = nullptr) const {
    double err = 0;
    for (size_t k = 0; k < names.size(); ++k) {
      const Tensor<double> ref = tensor_from_json<double>(fx.at(key).at(static_cast<size_t>(step)).at(names[k]));
      REQUIRE(ref.shape() == params[k].shape());
      const std::vector<T> got = params[k].to_vector();
      const std::vector<double> want = ref.to_vector();
      for (size_t i = 0; i < got.size(); ++i) {
        const double d = std::fabs(static_cast<double>(got[i]) - want[i]);
        err = std::max(err, d);
        if (differing && d != 0) ++*differing;
      }
    }
    return err;
  }
};

template <typename T>
std::vector<T> values_of(const std::vector<Tensor<T>>& ts) {
  std::vector<T> out;
  for (const auto& t : ts) {
    const auto v = t.to_vector();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

template <typename T>
bool bit_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <typename T>
Tensor<T> leaf(const Shape& s, uint64_t seed) {
  PhiloxEngine rng(seed, 7);
  Tensor<T> t = Tensor<T>::uniform(s, -1.0, 1.0, rng);
  t.set_requires_grad(true);
  return t;
}

template <typename T>
Tensor<T> random(const Shape& s, uint64_t seed, double scale = 1.0) {
  PhiloxEngine rng(seed, 11);
  return Tensor<T>::uniform(s, -scale, scale, rng);
}

}  // namespace

// ---- the element update -----------------------------------------------------

TEST_CASE("adam_update: the first step moves by lr * g / (|g| + eps)", "[optim][adam]") {
  // With zero moments, m1 = (1-b1) g and v1 = (1-b2) g^2, so after bias
  // correction the step is lr * g / (|g| + eps) (Kingma & Ba 2015, Sec. 2).
  const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const auto s = optim::adam_step_scalars<double>(lr, b1, b2, eps, 0.0, 1);
  for (double g : {0.5, -3.0, 1e-3, -2e-6}) {
    double p = 1.25, m = 0, v = 0;
    optim::adam_update(p, g, m, v, static_cast<double*>(nullptr), s);
    CHECK(m == Approx((1 - b1) * g).epsilon(1e-15));
    CHECK(v == Approx((1 - b2) * g * g).epsilon(1e-15));
    CHECK(p == Approx(1.25 - lr * g / (std::fabs(g) + eps)).epsilon(1e-14));
  }
}

TEST_CASE("adam_update: weight decay adds wd * p to the gradient, AMSGrad keeps the max", "[optim][adam]") {
  const double lr = 0.1, b1 = 0.5, b2 = 0.75, eps = 0.0, wd = 0.5;
  // Step 2 by hand: g' = g + wd p; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
  // vmax = max(vmax, v); p -= lr / (1-b1^2) * m / (sqrt(vmax) / sqrt(1-b2^2) + eps).
  double p = 2.0, m = 0.25, v = 1.0, vmax = 3.0;
  const double g = -1.0;
  const double gd = g + wd * 2.0;  // 0
  const double m2 = b1 * 0.25 + (1 - b1) * gd;
  const double v2 = b2 * 1.0 + (1 - b2) * gd * gd;
  const double expect_p = 2.0 - lr / (1 - b1 * b1) * m2 / (std::sqrt(3.0) / std::sqrt(1 - b2 * b2) + eps);
  const auto s = optim::adam_step_scalars<double>(lr, b1, b2, eps, wd, 2);
  optim::adam_update(p, g, m, v, &vmax, s);
  CHECK(m == Approx(m2).epsilon(1e-15));
  CHECK(v == Approx(v2).epsilon(1e-15));
  CHECK(vmax == 3.0);  // v2 = 0.75 < 3: the running maximum is kept
  CHECK(p == Approx(expect_p).epsilon(1e-14));

  // A NaN second moment propagates into the maximum, as torch.maximum does.
  double p2 = 1.0, m3 = 0.0, v3 = std::nan(""), vmax3 = 1.0;
  optim::adam_update(p2, 1.0, m3, v3, &vmax3, s);
  CHECK(std::isnan(vmax3));
}

// ---- against PyTorch --------------------------------------------------------

TEST_CASE("Adam float32 matches torch.optim.Adam step by step", "[optim][adam][reference]") {
  const auto fx = load_adam_fixture();
  FixtureRun<float> run(fx);
  Adam<float> opt(run.groups);
  const int steps = static_cast<int>(fx.at("grads").size());
  REQUIRE(steps == 20);
  double worst = 0;
  int64_t differing = 0;
  for (int step = 0; step < steps; ++step) {
    run.prepare_step(fx, opt, step);
    opt.step();
    const double err = run.max_error(fx, "after_float32", step, &differing);
    INFO("step " << step << ": max |lgh - torch| = " << err);
    REQUIRE(err <= 1e-6);
    worst = std::max(worst, err);
  }
  WARN("Adam float32 vs torch 1.13: max abs error over 20 steps = " << worst << ", elements not bit-identical: "
                                                                   << differing << " of " << 20 * 41);
  // Skipped parameters did not advance (backbone.b at step 7, selector.theta at step 12).
  for (size_t g = 0; g < opt.num_groups(); ++g)
    for (size_t i = 0; i < opt.group(g).params.size(); ++i) {
      const std::string name = opt.group(g).name + "." + fx.at("groups")[g].at("params")[i].get<std::string>();
      CHECK(opt.step_count(g, i) == fx.at("final_step_counts").at(name).get<int64_t>());
    }
  // AMSGrad was exercised: its maximum differs from the current average somewhere.
  const auto vmax = opt.max_exp_avg_sq(2, 0).to_vector();
  const auto v = opt.exp_avg_sq(2, 0).to_vector();
  bool differs = false;
  for (size_t i = 0; i < v.size(); ++i) differs = differs || vmax[i] > v[i];
  CHECK(differs);
}

TEST_CASE("Adam float64 matches torch.optim.Adam in double", "[optim][adam][reference]") {
  const auto fx = load_adam_fixture();
  FixtureRun<double> run(fx);
  Adam<double> opt(run.groups);
  double worst = 0;
  int64_t differing = 0;
  for (int step = 0; step < 20; ++step) {
    run.prepare_step(fx, opt, step);
    opt.step();
    const double err = run.max_error(fx, "after_float64", step, &differing);
    INFO("step " << step << ": max |lgh - torch| = " << err);
    REQUIRE(err <= 1e-13);
    worst = std::max(worst, err);
  }
  WARN("Adam float64 vs torch 1.13: max abs error over 20 steps = " << worst << ", elements not bit-identical: "
                                                                   << differing << " of " << 20 * 41);
}

TEST_CASE("Adam double agrees with the textbook formula over 200 steps", "[optim][adam]") {
  // An independent long-double implementation of Adam/AMSGrad with L2 decay.
  const double lr = 3e-3, b1 = 0.85, b2 = 0.995, eps = 1e-7, wd = 0.02;
  for (bool amsgrad : {false, true}) {
    Tensor<double> p = leaf<double>(Shape{33}, 5);
    std::vector<long double> rp(33), rm(33, 0), rv(33, 0), rvmax(33, 0);
    for (int i = 0; i < 33; ++i) rp[static_cast<size_t>(i)] = p.data()[i];
    ParamGroup<double> grp;
    grp.params = {p};
    grp.lr = lr;
    grp.beta1 = b1;
    grp.beta2 = b2;
    grp.eps = eps;
    grp.weight_decay = wd;
    grp.amsgrad = amsgrad;
    Adam<double> opt({grp});
    double worst = 0;
    for (int t = 1; t <= 200; ++t) {
      Tensor<double> g = random<double>(Shape{33}, 100 + static_cast<uint64_t>(t), 0.1 + 0.05 * (t % 7));
      p.set_grad(g);
      opt.step();
      for (size_t i = 0; i < 33; ++i) {
        const long double gi = g.data()[i] + (long double)wd * rp[i];
        rm[i] = b1 * rm[i] + (1 - (long double)b1) * gi;
        rv[i] = b2 * rv[i] + (1 - (long double)b2) * gi * gi;
        rvmax[i] = std::max(rvmax[i], rv[i]);
        const long double bc1 = 1 - std::pow((long double)b1, t), bc2 = 1 - std::pow((long double)b2, t);
        const long double second = amsgrad ? rvmax[i] : rv[i];
        rp[i] -= lr / bc1 * rm[i] / (std::sqrt(second) / std::sqrt(bc2) + eps);
        worst = std::max(worst, static_cast<double>(std::fabs(rp[i] - p.data()[i])));
      }
    }
    INFO("amsgrad " << amsgrad << ": max |lgh - long double| = " << worst);
    CHECK(worst <= 1e-12);
  }
}

// ---- checkpoints ------------------------------------------------------------

TEST_CASE("Adam state save and load mid-run continues bit-exactly", "[optim][adam][state]") {
  const auto fx = load_adam_fixture();

  // Uninterrupted.
  FixtureRun<float> a(fx);
  Adam<float> opt_a(a.groups);
  for (int step = 0; step < 20; ++step) {
    a.prepare_step(fx, opt_a, step);
    opt_a.step();
  }

  // Interrupted after step 11 (after the lr change, and with backbone.b one
  // update behind): export, then restore into a fresh optimiser over fresh
  // parameter tensors holding the same values.
  FixtureRun<float> b(fx);
  AdamState<float> saved;
  std::vector<Tensor<float>> saved_params;
  {
    Adam<float> opt_b(b.groups);
    for (int step = 0; step < 12; ++step) {
      b.prepare_step(fx, opt_b, step);
      opt_b.step();
    }
    saved = opt_b.state_dict();
    for (const auto& p : b.params) saved_params.push_back(p.clone());
    // The snapshot is a copy: stepping on does not change it.
    const auto before = saved.tensors.front().second.to_vector();
    b.prepare_step(fx, opt_b, 12);
    opt_b.step();
    CHECK(bit_equal(before, saved.tensors.front().second.to_vector()));
  }
  // Entry names and kinds.
  std::map<std::string, Shape> names;
  for (const auto& e : saved.tensors) names.emplace(e.first, e.second.shape());
  CHECK(names.size() == 9);  // 4 params x (exp_avg, exp_avg_sq) + 1 AMSGrad maximum
  CHECK(names.at("backbone.0.exp_avg") == Shape{3, 4});
  CHECK(names.at("backbone.1.exp_avg_sq") == Shape{5});
  CHECK(names.at("selector.0.max_exp_avg_sq") == Shape{4, 3});
  REQUIRE(saved.steps.size() == 3);
  CHECK(saved.steps[0].first == "backbone.step");
  CHECK(saved.steps[0].second.to_vector() == std::vector<int64_t>{12, 11});
  REQUIRE(saved.learning_rates.size() == 3);
  CHECK(saved.learning_rates[1].first == "fusion.lr");
  CHECK(saved.learning_rates[1].second == 2e-2);

  FixtureRun<float> c(fx);
  for (size_t k = 0; k < c.params.size(); ++k) {
    autograd::NoGradGuard ng;
    c.params[k].copy_(saved_params[k]);
  }
  Adam<float> opt_c(c.groups);  // constructed with the fixture's initial lr for "fusion"
  opt_c.load_state_dict(saved);
  CHECK(opt_c.lr(1) == 2e-2);
  CHECK(opt_c.step_count(0, 1) == 11);
  double worst = 0;
  for (int step = 12; step < 20; ++step) {
    c.prepare_step(fx, opt_c, step);
    opt_c.step();
    worst = std::max(worst, c.max_error(fx, "after_float32", step));
  }
  CHECK(worst <= 1e-6);
  CHECK(bit_equal(values_of(a.params), values_of(c.params)));
  for (size_t g = 0; g < 3; ++g) {
    CHECK(bit_equal(opt_a.exp_avg(g, 0).to_vector(), opt_c.exp_avg(g, 0).to_vector()));
    CHECK(bit_equal(opt_a.exp_avg_sq(g, 0).to_vector(), opt_c.exp_avg_sq(g, 0).to_vector()));
    CHECK(opt_a.step_count(g, 0) == opt_c.step_count(g, 0));
  }
}

TEST_CASE("Adam load_state_dict rejects bad state and names the entry", "[optim][adam][state]") {
  auto make = [](bool amsgrad) {
    ParamGroup<float> g1;
    g1.name = "net";
    g1.params = {leaf<float>(Shape{2, 3}, 1), leaf<float>(Shape{4}, 2)};
    ParamGroup<float> g2;
    g2.name = "theta";
    g2.params = {leaf<float>(Shape{21, 3}, 3)};
    g2.amsgrad = amsgrad;
    return std::vector<ParamGroup<float>>{g1, g2};
  };
  auto groups = make(true);
  Adam<float> opt(groups);
  for (auto& g : groups)
    for (auto& p : g.params) p.set_grad(random<float>(p.shape(), 9));
  opt.step();
  const AdamState<float> good = opt.state_dict();
  const auto m_before = opt.exp_avg(0, 0).to_vector();

  auto find = [](AdamState<float>& s, const std::string& name) -> Tensor<float>& {
    for (auto& e : s.tensors)
      if (e.first == name) return e.second;
    FAIL("no entry " << name);
    return s.tensors.front().second;
  };

  SECTION("missing moment") {
    AdamState<float> s = good;
    s.tensors.erase(s.tensors.begin() + 1);  // net.0.exp_avg_sq
    REQUIRE_THROWS_WITH(opt.load_state_dict(s), Contains("missing entry 'net.0.exp_avg_sq'"));
  }
  SECTION("mis-shaped moment") {
    AdamState<float> s = good;
    find(s, "net.1.exp_avg") = Tensor<float>::zeros(Shape{5});
    REQUIRE_THROWS_WITH(opt.load_state_dict(s), Contains("'net.1.exp_avg' has shape [5], expected [4]"));
  }
  SECTION("missing AMSGrad maximum") {
    AdamState<float> s = good;
    s.tensors.pop_back();
    REQUIRE_THROWS_WITH(opt.load_state_dict(s), Contains("missing entry 'theta.0.max_exp_avg_sq'"));
  }
  SECTION("AMSGrad state for a group without AMSGrad") {
    auto plain_groups = make(false);
    Adam<float> plain(plain_groups);
    REQUIRE_THROWS_WITH(plain.load_state_dict(good), Contains("'theta.0.max_exp_avg_sq' is AMSGrad state"));
  }
  SECTION("unexpected entry") {
    AdamState<float> s = good;
    s.tensors.emplace_back("net.2.exp_avg", Tensor<float>::zeros(Shape{1}));
    REQUIRE_THROWS_WITH(opt.load_state_dict(s), Contains("unexpected entry 'net.2.exp_avg'"));
  }
  SECTION("duplicated entry") {
    AdamState<float> s = good;
    s.tensors.push_back(s.tensors.front());
    REQUIRE_THROWS_WITH(opt.load_state_dict(s), Contains("'net.0.exp_avg' appears twice"));
  }
  SECTION("step counts") {
    AdamState<float> s = good;
    s.steps[0].second = Tensor<int64_t>::from_data(Shape{3}, {1, 1, 1});
    REQUIRE_THROWS_WITH(opt.load_state_dict(s), Contains("'net.step' has shape [3], expected [2]"));
    s.steps[0].second = Tensor<int64_t>::from_data(Shape{2}, {1, -4});
    REQUIRE_THROWS_WITH(opt.load_state_dict(s), Contains("negative step count -4"));
    s.steps.erase(s.steps.begin());
    REQUIRE_THROWS_WITH(opt.load_state_dict(s), Contains("missing entry 'net.step'"));
  }
  SECTION("learning rate") {
    AdamState<float> s = good;
    s.learning_rates.pop_back();
    REQUIRE_THROWS_WITH(opt.load_state_dict(s), Contains("missing entry 'theta.lr'"));
  }
  // A failed load leaves the state untouched (everything is checked first).
  AdamState<float> bad = good;
  find(bad, "net.0.exp_avg").fill_(7.0f);
  find(bad, "theta.0.exp_avg") = Tensor<float>::zeros(Shape{3});
  REQUIRE_THROWS(opt.load_state_dict(bad));
  CHECK(bit_equal(m_before, opt.exp_avg(0, 0).to_vector()));
  CHECK(opt.step_count(0, 0) == 1);
}

// ---- layouts ----------------------------------------------------------------

TEST_CASE("Adam on views of one flat buffer: one run per group, same numbers", "[optim][adam][flat]") {
  const std::vector<Shape> shapes = {Shape{3, 4}, Shape{5}, Shape{2, 3, 2}, Shape{}};
  int64_t total = 0;
  for (const auto& s : shapes) total += s.numel();
  const Tensor<float> init = random<float>(Shape{total}, 21);

  // Flat parameters and gradients, as the nn layer lays them out.
  Tensor<float> flat_p = init.clone();
  Tensor<float> flat_g = Tensor<float>::zeros(Shape{total});
  std::vector<Tensor<float>> flat_params;
  // Separate tensors with the same values.
  std::vector<Tensor<float>> sep_params;
  int64_t off = 0;
  for (const auto& s : shapes) {
    Tensor<float> p = flat_p.narrow(0, off, off + s.numel()).view(s.vec());
    p.set_requires_grad(true);
    p.set_grad(flat_g.narrow(0, off, off + s.numel()).view(s.vec()));
    flat_params.push_back(p);
    Tensor<float> q = init.narrow(0, off, off + s.numel()).clone().view(s.vec());
    q.set_requires_grad(true);
    sep_params.push_back(q);
    off += s.numel();
  }
  auto groups_of = [](const std::vector<Tensor<float>>& ps) {
    ParamGroup<float> a;
    a.name = "a";
    a.params = {ps[0], ps[1]};
    a.weight_decay = 0.1;
    ParamGroup<float> b;
    b.name = "b";
    b.params = {ps[2], ps[3]};
    b.lr = 0.05;
    b.amsgrad = true;
    return std::vector<ParamGroup<float>>{a, b};
  };
  Adam<float> flat(groups_of(flat_params));
  Adam<float> sep(groups_of(sep_params));
  for (int t = 0; t < 6; ++t) {
    const Tensor<float> g = random<float>(Shape{total}, 300 + static_cast<uint64_t>(t));
    flat_g.copy_(g);  // the views see the new gradient
    off = 0;
    for (size_t k = 0; k < shapes.size(); ++k) {
      sep_params[k].set_grad(g.narrow(0, off, off + shapes[k].numel()).clone().view(shapes[k].vec()));
      off += shapes[k].numel();
    }
    flat.step();
    sep.step();
    CHECK(flat.last_step_runs() == 2);  // one per group
    CHECK(sep.last_step_runs() == 4);   // one per parameter
  }
  CHECK(bit_equal(values_of(flat_params), values_of(sep_params)));
  // The views still alias the flat buffer after stepping.
  CHECK(flat_params[2].data() == flat_p.data() + 17);
  CHECK(flat_p.to_vector() == values_of(flat_params));
  CHECK(!bit_equal(flat_p.to_vector(), init.to_vector()));

  // zero_grad keeps the flat gradient views attached.
  flat.zero_grad();
  CHECK(flat_params[1].grad().data() == flat_g.data() + 12);
  for (float v : flat_g.to_vector()) REQUIRE(v == 0.0f);
  flat.zero_grad(/*set_to_none=*/true);
  CHECK(!flat_params[0].grad().defined());
}

TEST_CASE("Adam updates strided parameters and splits large tensors across threads", "[optim][adam]") {
  // A transposed (non-contiguous) parameter gives the same numbers as a contiguous one.
  Tensor<double> base = leaf<double>(Shape{4, 6}, 8);
  Tensor<double> store = base.detach().clone();
  Tensor<double> strided = store.permute({1, 0});  // [6, 4] view, not contiguous
  strided.set_requires_grad(true);
  Tensor<double> dense = strided.detach().clone();
  dense.set_requires_grad(true);
  REQUIRE(!strided.is_contiguous());
  ParamGroup<double> gs, gd;
  gs.params = {strided};
  gd.params = {dense};
  Adam<double> os({gs}), od({gd});
  for (int t = 0; t < 3; ++t) {
    const Tensor<double> g = random<double>(Shape{6, 4}, 40 + static_cast<uint64_t>(t));
    strided.set_grad(g.clone());
    dense.set_grad(g.clone());
    os.step();
    od.step();
  }
  CHECK(bit_equal(strided.to_vector(), dense.to_vector()));
  CHECK(bit_equal(store.permute({1, 0}).to_vector(), dense.to_vector()));

  // Threads split one large tensor without changing a bit.
  const Shape big{300001};
  const Tensor<float> init = random<float>(big, 50);
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    Tensor<float> p = init.clone();
    p.set_requires_grad(true);
    ParamGroup<float> g;
    g.params = {p};
    g.weight_decay = 1e-2;
    Adam<float> opt({g});
    for (int t = 0; t < 3; ++t) {
      p.set_grad(random<float>(big, 60 + static_cast<uint64_t>(t)));
      opt.step();
    }
    results.push_back(p.to_vector());
  }
  set_num_threads(2);
  CHECK(bit_equal(results[0], results[1]));
  CHECK(!bit_equal(results[0], init.to_vector()));
}

TEST_CASE("Adam skips parameters without a gradient", "[optim][adam]") {
  Tensor<float> a = leaf<float>(Shape{3}, 1), b = leaf<float>(Shape{3}, 2);
  const auto b0 = b.to_vector();
  ParamGroup<float> g;
  g.params = {a, b};
  Adam<float> opt({g});
  a.set_grad(Tensor<float>::ones(Shape{3}));
  opt.step();
  opt.step();
  CHECK(opt.step_count(0, 0) == 2);
  CHECK(opt.step_count(0, 1) == 0);
  CHECK(bit_equal(b.to_vector(), b0));
  for (float v : opt.exp_avg(0, 1).to_vector()) CHECK(v == 0.0f);
  // Gradients are read, never written.
  for (float v : a.grad().to_vector()) CHECK(v == 1.0f);
}

// ---- validation -------------------------------------------------------------

TEST_CASE("Adam validates groups with messages naming the group", "[optim][adam][errors]") {
  auto group = [](const std::string& name, std::vector<Tensor<float>> ps) {
    ParamGroup<float> g;
    g.name = name;
    g.params = std::move(ps);
    return g;
  };
  Tensor<float> p = leaf<float>(Shape{2}, 1), q = leaf<float>(Shape{3}, 2);

  auto bad = group("fusion", {p});
  bad.lr = -1e-3;
  REQUIRE_THROWS_WITH(Adam<float>({bad}), Contains("group 'fusion': lr must be finite and >= 0, got -0.001"));
  bad = group("fusion", {p});
  bad.beta1 = 1.0;
  REQUIRE_THROWS_WITH(Adam<float>({bad}), Contains("group 'fusion': beta1 must be in [0, 1), got 1"));
  bad = group("fusion", {p});
  bad.beta2 = -0.1;
  REQUIRE_THROWS_WITH(Adam<float>({bad}), Contains("beta2 must be in [0, 1)"));
  bad = group("fusion", {p});
  bad.eps = -1.0;
  REQUIRE_THROWS_WITH(Adam<float>({bad}), Contains("eps must be finite and >= 0"));
  bad = group("fusion", {p});
  bad.weight_decay = std::nan("");
  REQUIRE_THROWS_WITH(Adam<float>({bad}), Contains("weight_decay must be finite and >= 0"));

  REQUIRE_THROWS_WITH(Adam<float>({group("net", {p, Tensor<float>()})}),
                      Contains("group 'net': parameter 1 is an undefined tensor"));
  REQUIRE_THROWS_WITH(Adam<float>({group("net", {Tensor<float>::zeros(Shape{2})})}),
                      Contains("group 'net': parameter 0 (shape [2]) does not require grad"));
  const Tensor<float> derived = ops::add(p, p);
  REQUIRE_THROWS_WITH(Adam<float>({group("net", {derived})}), Contains("group 'net': parameter 0 (shape [2]) is not a leaf"));

  REQUIRE_THROWS_WITH(Adam<float>({group("net", {p, q}), group("theta", {p})}),
                      Contains("listed twice: parameter 0 of group 'net' and parameter 0 of group 'theta'"));
  REQUIRE_THROWS_WITH(Adam<float>({group("net", {q, q})}), Contains("listed twice"));
  {
    // Two views whose elements overlap would be updated twice.
    Tensor<float> flat = Tensor<float>::zeros(Shape{10});
    Tensor<float> v1 = flat.narrow(0, 0, 6), v2 = flat.narrow(0, 4, 10);
    v1.set_requires_grad(true);
    v2.set_requires_grad(true);
    REQUIRE_THROWS_WITH(Adam<float>({group("a", {v1}), group("b", {v2})}), Contains("share memory"));
    Tensor<float> v3 = flat.narrow(0, 6, 10);
    v3.set_requires_grad(true);
    CHECK_NOTHROW(Adam<float>({group("a", {v1}), group("b", {v3})}));
  }
  REQUIRE_THROWS_WITH(Adam<float>({group("x", {p}), group("x", {q})}), Contains("two parameter groups are named 'x'"));
  REQUIRE_THROWS_WITH(Adam<float>(std::vector<ParamGroup<float>>{}), Contains("no parameter groups"));

  Adam<float> opt({group("net", {p}), group("", {q})});
  CHECK(opt.group_index("net") == 0);
  REQUIRE_THROWS_WITH(opt.group_index("fusion"), Contains("no parameter group named 'fusion' (groups: 'net', '1')"));
  REQUIRE_THROWS_WITH(opt.set_lr(0, -1.0), Contains("learning rate of group 'net' must be finite and >= 0"));
  REQUIRE_THROWS_WITH(opt.set_lr(2, 1e-3), Contains("group index 2 out of range (2 groups)"));
  REQUIRE_THROWS_WITH(opt.lr(5), Contains("group index 5 out of range"));
  opt.set_lr(1, 0.25);
  CHECK(opt.lr(1) == 0.25);
  CHECK(opt.group(1).lr == 0.25);
  // Unnamed groups are named by their index in checkpoints.
  CHECK(opt.state_dict().steps[1].first == "1.step");
}
