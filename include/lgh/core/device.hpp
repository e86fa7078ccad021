// Device: where a tensor's storage lives. The layout of Device (and of every
// class that holds one) is the same whether or not CUDA support is compiled
// in, so CPU-only and CUDA translation units may be mixed in one program.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "lgh/core/error.hpp"

namespace lgh {

enum class DeviceType : int8_t { CPU = 0, CUDA = 1 };
constexpr int kNumDeviceTypes = 2;

inline const char* device_type_name(DeviceType t) { return t == DeviceType::CPU ? "cpu" : "cuda"; }

struct Device {
  DeviceType type = DeviceType::CPU;
  int8_t index = 0;  // CUDA ordinal; 0 for the CPU

  static constexpr Device cpu() { return Device{DeviceType::CPU, 0}; }
  static constexpr Device cuda(int i = 0) { return Device{DeviceType::CUDA, static_cast<int8_t>(i)}; }

  constexpr bool is_cpu() const { return type == DeviceType::CPU; }
  constexpr bool is_cuda() const { return type == DeviceType::CUDA; }

  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

  // Parses "cpu", "cuda" or "cuda:N".
  static Device parse(const std::string& s) {
    if (s == "cpu") return cpu();
    if (s == "cuda") return cuda(0);
    if (s.rfind("cuda:", 0) == 0) {
      const std::string n = s.substr(5);
      LGH_CHECK(!n.empty() && n.find_first_not_of("0123456789") == std::string::npos && n.size() < 3,
                "invalid device '" << s << "' (expected cpu, cuda or cuda:N)");
      return cuda(std::stoi(n));
    }
    LGH_FAIL("invalid device '" << s << "' (expected cpu, cuda or cuda:N)");
  }

  friend constexpr bool operator==(Device a, Device b) { return a.type == b.type && a.index == b.index; }
  friend constexpr bool operator!=(Device a, Device b) { return !(a == b); }
};

inline std::ostream& operator<<(std::ostream& os, Device d) { return os << d.str(); }

}  // namespace lgh
