// backward(): walks the tape from one or more roots and accumulates the
// gradients of every leaf that requires grad into its .grad().
//
// Order: every node reachable from the roots runs once, after all of its
// consumers (decreasing creation order, which is a topological order since a
// node's inputs exist before it). Gradients reaching the same tensor along
// several paths are summed before its producer runs. Leaf gradients
// accumulate across calls (zero them between steps). Unless retain_graph is
// set, each node frees its saved tensors once it has run, and a second
// backward through it throws.
#pragma once

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "lgh/autograd/node.hpp"

namespace lgh {
namespace autograd {

namespace detail {

template <typename T>
struct GradSlot {
  Tensor<T> grad;
  bool owned = false;  // true once the engine allocated it (then safe to add into)
};

// a + b into a new buffer (one pass, on their device), for the first sum of
// a gradient the engine does not own yet.
template <typename T>
Tensor<T> sum_into_new(const Tensor<T>& a, const Tensor<T>& b) {
  LGH_CHECK(a.device() == b.device(), "backward(): gradients on " << a.device().str() << " and " << b.device().str()
                                                                  << " reach the same tensor");
  Tensor<T> out = Tensor<T>::empty(a.shape(), a.device());
  if (out.numel() > 0) dispatch::call<tensor_kernels::Sum, T>(a.device(), out, a, b);
  return out;
}

template <typename T>
void accumulate(GradSlot<T>& slot, const Tensor<T>& g) {
  NoGradGuard no_grad;
  if (!slot.grad.defined()) {
    slot.grad = g;
  } else if (!slot.owned) {
    LGH_CHECK(slot.grad.shape() == g.shape(), "backward(): gradients of shapes " << slot.grad.shape().str()
                                                                                 << " and " << g.shape().str()
                                                                                 << " reach the same tensor");
    slot.grad = sum_into_new(slot.grad, g);
    slot.owned = true;
  } else {
    slot.grad.add_(g);
  }
}

template <typename T>
void accumulate_leaf(lgh::detail::TensorImpl<T>& leaf, const Tensor<T>& g) {
  NoGradGuard no_grad;
  if (!leaf.grad) {
    leaf.grad = g.clone().impl_ptr();
  } else {
    Tensor<T>(leaf.grad).add_(g);
  }
}

}  // namespace detail

template <typename T>
void backward(const std::vector<Tensor<T>>& roots, const std::vector<Tensor<T>>& root_grads,
              bool retain_graph = false) {
  LGH_CHECK(roots.size() == root_grads.size(),
            "backward(): " << roots.size() << " roots but " << root_grads.size() << " gradients");
  NoGradGuard no_grad;  // backward itself is never recorded

  std::unordered_map<Node<T>*, std::vector<detail::GradSlot<T>>> slots;
  std::vector<std::shared_ptr<Node<T>>> order;
  std::unordered_set<Node<T>*> seen;
  std::vector<std::shared_ptr<Node<T>>> stack;

  auto seed = [&](const Tensor<T>& root, const Tensor<T>& g) {
    LGH_CHECK(root.requires_grad(), "backward(): tensor of shape "
                                        << root.shape().str()
                                        << " does not require grad (no input of its computation does)");
    Tensor<T> grad = g;
    if (!grad.defined()) {
      LGH_CHECK(root.numel() == 1, "backward(): implicit gradient only for a single-element tensor, got shape "
                                       << root.shape().str() << " (pass the gradient explicitly)");
      grad = Tensor<T>::ones(root.shape(), root.device());
    }
    LGH_CHECK(grad.shape() == root.shape(), "backward(): gradient of shape " << grad.shape().str()
                                                                             << " for tensor of shape "
                                                                             << root.shape().str());
    LGH_CHECK(grad.device() == root.device(), "backward(): gradient on " << grad.device().str()
                                                                         << " for a tensor on " << root.device().str());
    if (!root.grad_fn()) {
      detail::accumulate_leaf(*root.impl(), grad);
      return;
    }
    auto& node = root.grad_fn();
    auto& s = slots[node.get()];
    if (s.empty()) s.resize(node->output_shapes.size());
    detail::accumulate(s[static_cast<size_t>(root.output_nr())], grad);
    if (seen.insert(node.get()).second) stack.push_back(node);
  };
  for (size_t i = 0; i < roots.size(); ++i) seed(roots[i], root_grads[i]);

  // Collect every node reachable from the roots.
  while (!stack.empty()) {
    auto node = std::move(stack.back());
    stack.pop_back();
    for (const Edge<T>& e : node->edges)
      if (e.node && seen.insert(e.node.get()).second) stack.push_back(e.node);
    order.push_back(std::move(node));
  }
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a->sequence_nr > b->sequence_nr; });

  for (auto& node : order) {
    auto it = slots.find(node.get());
    if (it == slots.end()) continue;  // no gradient reached it
    LGH_CHECK(!node->released, "backward(): " << node->name()
                                              << " was already run and its saved tensors freed "
                                                 "(pass retain_graph=true to backward twice)");
    std::vector<Tensor<T>> grad_outputs(node->output_shapes.size());
    for (size_t i = 0; i < grad_outputs.size(); ++i) {
      Tensor<T>& g = it->second[i].grad;
      grad_outputs[i] = g.defined() ? g : Tensor<T>::zeros(node->output_shapes[i], node->output_devices[i]);
    }
    slots.erase(it);

    std::vector<Tensor<T>> grad_inputs = node->backward(grad_outputs);
    grad_outputs.clear();
    if (!retain_graph) {
      node->release_saved();
      node->released = true;
    }
    LGH_CHECK(grad_inputs.size() == node->edges.size(),
              "backward(): " << node->name() << " returned " << grad_inputs.size() << " gradients for "
                             << node->edges.size() << " inputs");
    for (size_t i = 0; i < grad_inputs.size(); ++i) {
      const Edge<T>& e = node->edges[i];
      const Tensor<T>& g = grad_inputs[i];
      if (!e.valid() || !g.defined()) continue;
      LGH_CHECK(g.shape() == e.shape, "backward(): " << node->name() << " returned a gradient of shape "
                                                     << g.shape().str() << " for input " << i
                                                     << " of shape " << e.shape.str());
      LGH_CHECK(g.device() == e.device, "backward(): " << node->name() << " returned a gradient on "
                                                       << g.device().str() << " for input " << i << " on "
                                                       << e.device.str());
      if (e.node) {
        auto& s = slots[e.node.get()];
        if (s.empty()) s.resize(e.node->output_shapes.size());
        detail::accumulate(s[static_cast<size_t>(e.output_nr)], g);
      } else {
        detail::accumulate_leaf(*e.leaf, g);
      }
    }
  }
}

template <typename T>
void backward(const Tensor<T>& root, const Tensor<T>& grad = Tensor<T>(), bool retain_graph = false) {
  backward(std::vector<Tensor<T>>{root}, std::vector<Tensor<T>>{grad}, retain_graph);
}

}  // namespace autograd

template <typename T>
void Tensor<T>::backward(const Tensor<T>& grad, bool retain_graph) const {
  autograd::backward(*this, grad, retain_graph);
}

}  // namespace lgh
