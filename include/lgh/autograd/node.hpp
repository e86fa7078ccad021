// The autograd tape: nodes of coarse ops (a convolution, a batch norm, a fused
// soft-argmax), each recording how to map the gradients of its outputs to the
// gradients of its inputs.
//
// Contract of Node::backward: it returns one tensor per input, freshly
// computed (never aliasing a grad_output unless documented), and never
// accumulates; the engine (engine.hpp) sums the contributions of an input used
// more than once. Inputs that need no gradient get an undefined tensor.
//
// Nothing is recorded while grad mode is off (NoGradGuard) or when no input
// requires grad: no node is allocated and no tensor is saved.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "lgh/core/tensor.hpp"

namespace lgh {
namespace autograd {

// Turns grad mode off for its lifetime (this thread only).
class NoGradGuard {
 public:
  NoGradGuard() : previous_(grad_mode_flag()) { grad_mode_flag() = false; }
  ~NoGradGuard() { grad_mode_flag() = previous_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Turns grad mode on for its lifetime (e.g. inside a NoGradGuard).
class EnableGradGuard {
 public:
  EnableGradGuard() : previous_(grad_mode_flag()) { grad_mode_flag() = true; }
  ~EnableGradGuard() { grad_mode_flag() = previous_; }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

namespace detail {
inline std::atomic<uint64_t>& sequence_counter() {
  static std::atomic<uint64_t> counter{0};
  return counter;
}
inline std::atomic<int64_t>& live_nodes() {
  static std::atomic<int64_t> count{0};
  return count;
}
}  // namespace detail

// Number of tape nodes alive in the program (for tests and leak checks).
inline int64_t live_node_count() { return detail::live_nodes().load(); }

// Where a gradient goes: the producer of an input (node + output index), or
// the input itself when it is a leaf that requires grad.
template <typename T>
struct Edge {
  std::shared_ptr<Node<T>> node;
  int output_nr = 0;
  std::shared_ptr<lgh::detail::TensorImpl<T>> leaf;
  Shape shape;  // the input's shape and device, to validate what backward returns
  Device device;

  bool valid() const { return node != nullptr || leaf != nullptr; }
};

template <typename T>
struct Node {
  Node() : sequence_nr(detail::sequence_counter().fetch_add(1)) { ++detail::live_nodes(); }
  virtual ~Node() { --detail::live_nodes(); }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Gradients of the inputs from the gradients of the outputs (every entry of
  // grad_outputs is defined and shaped like its output).
  virtual std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& grad_outputs) = 0;
  virtual const char* name() const = 0;
  // Frees what forward saved; called after backward unless the graph is retained.
  virtual void release_saved() {}

  // Whether the gradient of input i is wanted.
  bool needs_input_grad(size_t i) const { return i < edges.size() && edges[i].valid(); }

  std::vector<Edge<T>> edges;          // one per input
  std::vector<Shape> output_shapes;    // one per output
  std::vector<Device> output_devices;  // one per output
  uint64_t sequence_nr;                // creation order: inputs come before their consumers
  bool released = false;
};

// Whether an op on these inputs must be recorded.
template <typename T>
bool needs_grad(std::initializer_list<const Tensor<T>*> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor<T>* t : inputs)
    if (t && t->requires_grad()) return true;
  return false;
}
template <typename T, typename... Rest>
bool needs_grad(const Tensor<T>& first, const Rest&... rest) {
  return needs_grad<T>({&first, &rest...});
}

template <typename T>
Edge<T> edge_to(const Tensor<T>& t) {
  Edge<T> e;
  if (!t.defined() || !t.requires_grad()) return e;
  e.shape = t.shape();
  e.device = t.device();
  if (t.grad_fn()) {
    e.node = t.grad_fn();
    e.output_nr = t.output_nr();
  } else {
    e.leaf = t.impl_ptr();
  }
  return e;
}

// Wires `node` into the graph: its edges point at the inputs' producers (or
// leaves) and the outputs become its results. Call only when needs_grad().
template <typename T, typename N>
void record(const std::shared_ptr<N>& node, std::initializer_list<const Tensor<T>*> inputs,
            std::initializer_list<Tensor<T>*> outputs) {
  node->edges.reserve(inputs.size());
  for (const Tensor<T>* t : inputs) node->edges.push_back(t ? edge_to(*t) : Edge<T>{});
  int nr = 0;
  for (Tensor<T>* out : outputs) {
    auto* impl = out->impl();
    impl->grad_fn = node;
    impl->output_nr = nr++;
    impl->requires_grad = true;
    node->output_shapes.push_back(out->shape());
    node->output_devices.push_back(out->device());
  }
}

// Same, for a variable number of inputs and outputs.
template <typename T, typename N>
void record(const std::shared_ptr<N>& node, const std::vector<Tensor<T>>& inputs,
            std::vector<Tensor<T>>& outputs) {
  node->edges.reserve(inputs.size());
  for (const Tensor<T>& t : inputs) node->edges.push_back(edge_to(t));
  int nr = 0;
  for (Tensor<T>& out : outputs) {
    auto* impl = out.impl();
    impl->grad_fn = node;
    impl->output_nr = nr++;
    impl->requires_grad = true;
    node->output_shapes.push_back(out.shape());
    node->output_devices.push_back(out.device());
  }
}

}  // namespace autograd
}  // namespace lgh
