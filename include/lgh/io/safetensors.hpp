// Safetensors files: named tensors with a JSON header, read and written.
//
// Layout: an 8-byte little-endian u64 N, then N bytes of JSON (an object:
// tensor name -> {"dtype", "shape", "data_offsets": [begin, end]}, plus an
// optional "__metadata__" object of strings; trailing spaces allowed), then
// the data buffer. Offsets are relative to the buffer; data is little-endian
// and row-major. Weights, checkpoints and the CLI's inputs and outputs all
// use it (DESIGN §3), so the reader trusts nothing: SafetensorsReader checks
// the whole header against the file before any tensor is handed out, and
// every error names the file (and the tensor) and says what is wrong.
//
//   SafetensorsReader r("weights.safetensors");
//   TensorF w = r.load<float>("conv.weight", Shape{64, 3, 7, 7});
//
//   SafetensorsWriter w;
//   w.add("image", image);                  // stored as F32
//   w.add("half", t, DType::F16);           // rounded to nearest even
//   w.set_metadata("config", config_json);
//   w.write("out.safetensors");             // atomic: temp file + rename
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "lgh/core/dtype.hpp"
#include "lgh/core/error.hpp"
#include "lgh/core/shape.hpp"
#include "lgh/core/tensor.hpp"
#include "lgh/io/atomic_file.hpp"

// Tensor bytes are copied between the file and memory as they are.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lgh/io/safetensors.hpp assumes a little-endian host"
#endif

namespace lgh {
namespace io {

// One tensor of a safetensors file, as its header describes it.
struct TensorRecord {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte range within the data buffer
  uint64_t nbytes() const { return end - begin; }
};

namespace detail {

// The reference implementation's cap: a larger header is a corrupt length
// field, not a real file, and must not turn into a huge allocation.
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull * 1024 * 1024;

inline uint64_t load_u64_le(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

inline std::string u64_le_bytes(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xffu);
  return s;
}

// a * b, or false when it does not fit in 64 bits.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return false;
  *out = a * b;
  return true;
}

// double -> float rounded to odd (truncate, then set the last bit if anything
// was dropped). Rounding that float again to half or bfloat16 gives the
// correctly rounded result; going through a nearest-even float instead can
// manufacture a false tie (1 + 2^-11 + 2^-40 would become 1, not 1 + 2^-10).
inline float float_round_to_odd(double d) {
  if (std::isnan(d) || std::isinf(d)) return static_cast<float>(d);
  float f = static_cast<float>(d);
  if (static_cast<double>(f) == d) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(d)) f = std::nextafter(f, 0.0f);
  return bits_float(float_bits(f) | 1u);
}

inline const char* json_type(const nlohmann::json& j) { return j.type_name(); }

inline std::string supported_dtype_list() { return "F16, BF16, F32, F64, I64, I32, U8, BOOL"; }

template <typename T>
constexpr bool is_float_type() {
  return std::is_same<T, float>::value || std::is_same<T, double>::value;
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------

// Reads a whole safetensors file into memory and validates it: header size,
// JSON syntax, duplicate keys, every entry's dtype, shape and offsets, the
// metadata, and that the tensors tile the data buffer exactly (no overlaps,
// no unindexed bytes), as the format requires. Throws lgh::Error otherwise.
class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::string& path) : path_(path) { read_and_validate(); }

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Tensor names in file order (by data offset).
  std::vector<std::string> names() const { return order_; }
  size_t size() const { return order_.size(); }
  bool contains(const std::string& name) const { return records_.count(name) != 0; }

  const TensorRecord& record(const std::string& name) const {
    auto it = records_.find(name);
    LGH_CHECK(it != records_.end(), ctx() << "no tensor named '" << name << "' (the file holds "
                                          << order_.size() << " tensors)");
    return it->second;
  }

  // The tensor as a new contiguous CPU Tensor<T>. float and double accept
  // F16, BF16, F32 and F64 (converted; F64 -> float rounds to nearest even);
  // int64_t accepts I64, I32, U8 and BOOL. Any other pairing is an error.
  template <typename T>
  Tensor<T> load(const std::string& name) const {
    static_assert(detail::is_float_type<T>() || std::is_same<T, int64_t>::value,
                  "SafetensorsReader::load<T>: T must be float, double or int64_t");
    const TensorRecord& r = record(name);
    Tensor<T> out = Tensor<T>::empty(r.shape);
    const unsigned char* src = data_.data() + r.begin;
    T* dst = out.data();
    const size_t n = static_cast<size_t>(r.shape.numel());
    if constexpr (detail::is_float_type<T>()) {
      switch (r.dtype) {
        case DType::F32: convert<float>(src, n, dst, [](float v) { return static_cast<T>(v); }); break;
        case DType::F64: convert<double>(src, n, dst, [](double v) { return static_cast<T>(v); }); break;
        case DType::F16: convert<uint16_t>(src, n, dst, [](uint16_t v) { return static_cast<T>(half_to_float(v)); }); break;
        case DType::BF16: convert<uint16_t>(src, n, dst, [](uint16_t v) { return static_cast<T>(bf16_to_float(v)); }); break;
        default: wrong_type(r, std::is_same<T, float>::value ? "float" : "double", "F16, BF16, F32 or F64");
      }
    } else {
      switch (r.dtype) {
        case DType::I64: convert<int64_t>(src, n, dst, [](int64_t v) { return v; }); break;
        case DType::I32: convert<int32_t>(src, n, dst, [](int32_t v) { return int64_t(v); }); break;
        case DType::U8: convert<uint8_t>(src, n, dst, [](uint8_t v) { return int64_t(v); }); break;
        case DType::Bool:
          for (size_t i = 0; i < n; ++i) {
            LGH_CHECK(src[i] <= 1, ctx() << "tensor '" << r.name << "': BOOL element " << i << " is byte "
                                         << int(src[i]) << ", expected 0 or 1");
            dst[i] = src[i];
          }
          break;
        default: wrong_type(r, "int64_t", "I64, I32, U8 or BOOL");
      }
    }
    return out;
  }

  // load<T>(name), checking that the tensor has the shape the caller needs.
  template <typename T>
  Tensor<T> load(const std::string& name, const Shape& expected) const {
    const TensorRecord& r = record(name);
    LGH_CHECK(r.shape == expected, ctx() << "tensor '" << name << "' has shape " << r.shape.str()
                                         << ", expected " << expected.str());
    return load<T>(name);
  }

 private:
  std::string ctx() const { return "safetensors file '" + path_ + "': "; }

  template <typename S, typename T, typename F>
  static void convert(const unsigned char* src, size_t n, T* dst, F f) {
    for (size_t i = 0; i < n; ++i) {
      S v;
      std::memcpy(&v, src + i * sizeof(S), sizeof(S));
      dst[i] = f(v);
    }
  }

  [[noreturn]] void wrong_type(const TensorRecord& r, const char* wanted, const char* accepted) const {
    LGH_FAIL(ctx() << "tensor '" << r.name << "' is stored as " << dtype_name(r.dtype) << "; load<" << wanted
                   << "> needs " << accepted);
  }

  void read_and_validate() {
    namespace fs = std::filesystem;
    std::error_code ec;
    LGH_CHECK(!fs::is_directory(path_, ec), ctx() << "is a directory, expected a file");
    std::ifstream in(path_, std::ios::binary);
    LGH_CHECK(in.good(), ctx() << "cannot open the file (missing or not readable?)");
    in.seekg(0, std::ios::end);
    const std::streamoff file_size = in.tellg();
    LGH_CHECK(file_size >= 0, ctx() << "cannot determine the file size");
    in.seekg(0, std::ios::beg);
    const uint64_t size = static_cast<uint64_t>(file_size);
    LGH_CHECK(size >= 8, ctx() << "truncated: the file is " << size
                               << " bytes long, shorter than the 8-byte header length");

    unsigned char len_bytes[8];
    in.read(reinterpret_cast<char*>(len_bytes), 8);
    LGH_CHECK(in.good(), ctx() << "read error in the header length");
    const uint64_t header_len = detail::load_u64_le(len_bytes);
    LGH_CHECK(header_len <= detail::kMaxSafetensorsHeaderBytes,
              ctx() << "header length " << header_len << " bytes is too large (limit "
                    << detail::kMaxSafetensorsHeaderBytes << "); the file is corrupt or not safetensors");
    LGH_CHECK(header_len <= size - 8, ctx() << "truncated: header length " << header_len
                                            << " bytes runs past the end of the file (" << size - 8
                                            << " bytes after the length field)");

    std::string header(static_cast<size_t>(header_len), '\0');
    in.read(&header[0], static_cast<std::streamsize>(header_len));
    LGH_CHECK(in.good() || header_len == 0, ctx() << "read error in the header");
    const uint64_t buffer_len = size - 8 - header_len;
    data_.resize(static_cast<size_t>(buffer_len));
    if (buffer_len > 0) {
      in.read(reinterpret_cast<char*>(data_.data()), static_cast<std::streamsize>(buffer_len));
      LGH_CHECK(in.good(), ctx() << "read error in the data buffer");
    }

    parse_header(header, buffer_len);
  }

  void parse_header(const std::string& text, uint64_t buffer_len) {
    using json = nlohmann::json;
    // nlohmann keeps the last of repeated keys; the parser callback sees
    // every key, so a repeated tensor name cannot silently shadow another.
    std::vector<std::set<std::string>> open_objects;
    std::string duplicate;
    size_t duplicate_depth = 0;
    json::parser_callback_t watch = [&](int, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::object_start) {
        open_objects.emplace_back();
      } else if (event == json::parse_event_t::object_end) {
        if (!open_objects.empty()) open_objects.pop_back();
      } else if (event == json::parse_event_t::key && !open_objects.empty() && duplicate_depth == 0) {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!open_objects.back().insert(key).second) {
          duplicate = key;
          duplicate_depth = open_objects.size();
        }
      }
      return true;
    };
    json header;
    try {
      header = json::parse(text.begin(), text.end(), watch);
    } catch (const json::exception& e) {
      LGH_FAIL(ctx() << "header is not valid JSON: " << e.what());
    }
    LGH_CHECK(header.is_object(), ctx() << "header is a JSON " << detail::json_type(header)
                                        << ", expected an object");
    LGH_CHECK(duplicate_depth != 1, ctx() << "header lists the key '" << duplicate << "' twice"
                                          << (duplicate == "__metadata__" ? "" : " (duplicate tensor name)"));
    LGH_CHECK(duplicate_depth == 0, ctx() << "header repeats the key '" << duplicate
                                          << "' within one object (a tensor entry or __metadata__)");

    std::vector<const TensorRecord*> by_offset;
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        parse_metadata(it.value());
        continue;
      }
      TensorRecord r = parse_entry(it.key(), it.value(), buffer_len);
      records_.emplace(r.name, std::move(r));
    }
    for (const auto& kv : records_) by_offset.push_back(&kv.second);
    std::sort(by_offset.begin(), by_offset.end(), [](const TensorRecord* a, const TensorRecord* b) {
      if (a->begin != b->begin) return a->begin < b->begin;
      if (a->end != b->end) return a->end < b->end;
      return a->name < b->name;
    });

    // The tensors must tile [0, buffer_len) exactly.
    uint64_t covered = 0;
    const TensorRecord* prev = nullptr;
    for (const TensorRecord* r : by_offset) {
      LGH_CHECK(r->begin >= covered,
                ctx() << "tensors '" << prev->name << "' (bytes [" << prev->begin << ", " << prev->end
                      << ")) and '" << r->name << "' (bytes [" << r->begin << ", " << r->end << ")) overlap");
      LGH_CHECK(r->begin == covered, ctx() << "hole in the data buffer: bytes [" << covered << ", " << r->begin
                                           << ") before tensor '" << r->name
                                           << "' belong to no tensor (the buffer must be fully indexed)");
      covered = r->end;
      prev = r;
      order_.push_back(r->name);
    }
    LGH_CHECK(covered == buffer_len, ctx() << "hole in the data buffer: bytes [" << covered << ", " << buffer_len
                                           << ") at its end belong to no tensor (the buffer must be fully indexed)");
  }

  void parse_metadata(const nlohmann::json& m) {
    LGH_CHECK(m.is_object(), ctx() << "__metadata__ is a JSON " << detail::json_type(m)
                                   << ", expected an object of strings");
    for (auto it = m.begin(); it != m.end(); ++it) {
      LGH_CHECK(it.value().is_string(), ctx() << "__metadata__ value of '" << it.key() << "' is a JSON "
                                              << detail::json_type(it.value()) << ", expected a string");
      metadata_[it.key()] = it.value().get<std::string>();
    }
  }

  TensorRecord parse_entry(const std::string& name, const nlohmann::json& e, uint64_t buffer_len) const {
    const std::string where = ctx() + "tensor '" + name + "': ";
    LGH_CHECK(e.is_object(), where << "entry is a JSON " << detail::json_type(e)
                                   << ", expected an object with dtype, shape and data_offsets");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      LGH_CHECK(e.contains(field), where << "entry has no '" << field << "' field");

    TensorRecord r;
    r.name = name;
    const auto& dt = e.at("dtype");
    LGH_CHECK(dt.is_string(), where << "dtype is a JSON " << detail::json_type(dt) << ", expected a string");
    LGH_CHECK(dtype_from_name(dt.get<std::string>(), &r.dtype),
              where << "unknown dtype '" << dt.get<std::string>() << "' (supported: "
                    << detail::supported_dtype_list() << ")");

    const auto& sh = e.at("shape");
    LGH_CHECK(sh.is_array(), where << "shape is a JSON " << detail::json_type(sh)
                                   << ", expected an array of non-negative integers");
    LGH_CHECK(sh.size() <= static_cast<size_t>(Shape::kMaxDims),
              where << "shape has " << sh.size() << " dimensions, more than lgh's limit of " << Shape::kMaxDims);
    bool has_zero = false;
    for (size_t i = 0; i < sh.size(); ++i) {
      const auto& d = sh[i];
      LGH_CHECK(!(d.is_number_integer() && !d.is_number_unsigned()),
                where << "shape " << sh.dump() << " has a negative extent " << d.get<int64_t>());
      LGH_CHECK(d.is_number_unsigned(), where << "shape " << sh.dump() << " has a non-integer extent " << d.dump()
                                              << ", expected non-negative integers");
      const uint64_t v = d.get<uint64_t>();
      LGH_CHECK(v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
                where << "shape " << sh.dump() << ": extent " << v << " overflows 64-bit sizes");
      has_zero = has_zero || v == 0;
      r.shape.push_back(static_cast<int64_t>(v));
    }
    // Element and byte counts must fit in 64 bits (a zero extent makes any
    // product of the others irrelevant).
    uint64_t bytes = 0;
    if (!has_zero) {
      uint64_t numel = 1;
      bool ok = true;
      for (int i = 0; i < r.shape.ndim() && ok; ++i) ok = detail::checked_mul(numel, uint64_t(r.shape[i]), &numel);
      ok = ok && numel <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      ok = ok && detail::checked_mul(numel, dtype_size(r.dtype), &bytes);
      LGH_CHECK(ok, where << "shape " << r.shape.str() << " of " << dtype_name(r.dtype)
                          << " overflows 64 bits (element count times element size)");
    }

    const auto& off = e.at("data_offsets");
    LGH_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
              where << "data_offsets is " << off.dump() << ", expected two unsigned integers [begin, end]");
    r.begin = off[0].get<uint64_t>();
    r.end = off[1].get<uint64_t>();
    LGH_CHECK(r.begin <= r.end, where << "data_offsets [" << r.begin << ", " << r.end << "] has begin > end");
    LGH_CHECK(r.end <= buffer_len, where << "data_offsets [" << r.begin << ", " << r.end
                                         << "] runs past the end of the data buffer (" << buffer_len << " bytes)");
    LGH_CHECK(r.end - r.begin == bytes, where << "data_offsets [" << r.begin << ", " << r.end << "] span "
                                              << r.end - r.begin << " bytes, but shape " << r.shape.str() << " of "
                                              << dtype_name(r.dtype) << " needs " << bytes);
    return r;
  }

  std::string path_;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, TensorRecord> records_;
  std::vector<std::string> order_;
  std::vector<unsigned char> data_;
};

// ---------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------

// Collects tensors (their bytes are encoded when added, so later changes to
// a tensor do not reach the file) and metadata, then writes them in one
// atomic step. Tensors are laid out in the order they were added; the header
// is padded with spaces to a multiple of 8 bytes so that the data is aligned.
class SafetensorsWriter {
 public:
  // Adds `t` (any device, any strides) under `name`. float and double
  // tensors may be stored as F32, F64, F16 or BF16 (rounded to nearest even,
  // correctly also from double); int64_t tensors as I64, or as I32, U8 or
  // BOOL when every value fits.
  template <typename T>
  void add(const std::string& name, const Tensor<T>& t, DType store_as = dtype_of<T>::value) {
    static_assert(detail::is_float_type<T>() || std::is_same<T, int64_t>::value,
                  "SafetensorsWriter::add: T must be float, double or int64_t");
    LGH_CHECK(!name.empty(), "safetensors writer: empty tensor name");
    LGH_CHECK(name != "__metadata__", "safetensors writer: '__metadata__' is reserved and cannot name a tensor");
    LGH_CHECK(!index_.count(name), "safetensors writer: tensor '" << name << "' added twice");
    LGH_CHECK(t.defined(), "safetensors writer: tensor '" << name << "' is undefined");

    Entry e;
    e.name = name;
    e.dtype = store_as;
    e.shape = t.shape();
    const std::vector<T> v = t.to_vector();
    if constexpr (detail::is_float_type<T>()) {
      switch (store_as) {
        case DType::F32: encode<float>(v, &e.bytes, [](T x) { return static_cast<float>(x); }); break;
        case DType::F64: encode<double>(v, &e.bytes, [](T x) { return static_cast<double>(x); }); break;
        case DType::F16: encode<uint16_t>(v, &e.bytes, [](T x) { return float_to_half(to_float_once(x)); }); break;
        case DType::BF16: encode<uint16_t>(v, &e.bytes, [](T x) { return float_to_bf16(to_float_once(x)); }); break;
        default:
          LGH_FAIL("safetensors writer: tensor '" << name << "' holds " << dtype_name(dtype_of<T>::value)
                                                  << " values and cannot be stored as " << dtype_name(store_as)
                                                  << " (choose F32, F64, F16 or BF16)");
      }
    } else {
      switch (store_as) {
        case DType::I64: encode<int64_t>(v, &e.bytes, [](int64_t x) { return x; }); break;
        case DType::I32:
          check_range(name, v, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(), store_as);
          encode<int32_t>(v, &e.bytes, [](int64_t x) { return static_cast<int32_t>(x); });
          break;
        case DType::U8:
          check_range(name, v, 0, 255, store_as);
          encode<uint8_t>(v, &e.bytes, [](int64_t x) { return static_cast<uint8_t>(x); });
          break;
        case DType::Bool:
          check_range(name, v, 0, 1, store_as);
          encode<uint8_t>(v, &e.bytes, [](int64_t x) { return static_cast<uint8_t>(x); });
          break;
        default:
          LGH_FAIL("safetensors writer: tensor '" << name << "' holds I64 values and cannot be stored as "
                                                  << dtype_name(store_as) << " (choose I64, I32, U8 or BOOL)");
      }
    }
    index_[name] = entries_.size();
    entries_.push_back(std::move(e));
  }

  // A `__metadata__` entry; setting a key again replaces its value.
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  size_t size() const { return entries_.size(); }

  // Writes the file atomically (temp file beside `path`, then rename): on
  // any error the previous file at `path`, if any, is left as it was.
  void write(const std::string& path) const {
    nlohmann::json header = nlohmann::json::object();
    uint64_t offset = 0;
    for (const Entry& e : entries_) {
      const uint64_t end = offset + e.bytes.size();
      header[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape.vec()}, {"data_offsets", {offset, end}}};
      offset = end;
    }
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    std::string text;
    try {
      text = header.dump();
    } catch (const nlohmann::json::exception& e) {
      LGH_FAIL("safetensors file '" << path << "': cannot encode the header (tensor names and metadata must be "
                                    "valid UTF-8): " << e.what());
    }
    text.append((8 - text.size() % 8) % 8, ' ');

    AtomicFile f(path);
    const std::string len = detail::u64_le_bytes(text.size());
    f.write(len.data(), len.size());
    f.write(text.data(), text.size());
    for (const Entry& e : entries_) f.write(e.bytes.data(), e.bytes.size());
    f.commit();
  }

 private:
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    std::string bytes;
  };

  static float to_float_once(float x) { return x; }
  static float to_float_once(double x) { return detail::float_round_to_odd(x); }

  template <typename S, typename T, typename F>
  static void encode(const std::vector<T>& v, std::string* out, F f) {
    out->resize(v.size() * sizeof(S));
    for (size_t i = 0; i < v.size(); ++i) {
      const S s = f(v[i]);
      std::memcpy(&(*out)[i * sizeof(S)], &s, sizeof(S));
    }
  }

  static void check_range(const std::string& name, const std::vector<int64_t>& v, int64_t lo, int64_t hi,
                          DType as) {
    for (size_t i = 0; i < v.size(); ++i)
      LGH_CHECK(v[i] >= lo && v[i] <= hi, "safetensors writer: tensor '" << name << "' element " << i << " = "
                                                                        << v[i] << " does not fit " << dtype_name(as)
                                                                        << " [" << lo << ", " << hi << "]");
  }

  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace io
}  // namespace lgh
