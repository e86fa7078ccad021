// Fuzz harness: safetensors files as weights arrive from outside: the
// reader, every tensor loaded, the model config (metadata or inferred from
// the shapes), and, for configs small enough to build quickly, the model
// built, its weights loaded and one forward pass.
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "lgh/io/safetensors.hpp"
#include "lgh/io/weights.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lgh_fuzz::scratch() / "input.safetensors";
  lgh_fuzz::write_file(path, data, size);
  lgh_fuzz::refusing_only_with_lgh_error([&] {
    const lgh::io::SafetensorsReader file(path);
    for (const std::string& name : file.names()) {
      lgh_fuzz::refusing_only_with_lgh_error([&] { file.load<float>(name); });
      lgh_fuzz::refusing_only_with_lgh_error([&] { file.load<int64_t>(name); });
    }
    const lgh::nn::ModelConfig c = lgh::io::read_config(file);
    // A valid config may still describe a large model; building one per
    // input would only measure the allocator.
    if (c.input_size > 64 || c.features > 8 || c.p0 > 8 || c.p1 > 8 || c.num_joints > 4 || c.hourglass_modules > 2)
      return;
    lgh::nn::LearnableGroupsModel<float> model(c);
    lgh::io::load_weights(model, file);
    model.eval();
    lgh::autograd::NoGradGuard no_grad;
    const auto out = model.forward(lgh::TensorF::zeros({1, 3, c.input_size, c.input_size}));
    if (out.uvd.shape() != lgh::Shape{1, c.num_joints, 3}) __builtin_trap();
  });
  return 0;
}
