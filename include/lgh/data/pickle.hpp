// A restricted unpickler: reads what Python's pickle writes for plain
// containers of numpy arrays (RHD's anno_*.pickle: a dict of dicts of
// arrays) and refuses everything else.
//
// Supported: protocols 2 to 5 (and the binary subset of protocol 1), as
// written by Python 2's cPickle and by Python 3's pickle. Values are None,
// bool, int (up to 64 bits), float, str, bytes, tuple, list, dict and numpy
// arrays of bool/int/uint/float elements. The only callables a pickle may
// name are the ones numpy's own reductions use:
//   numpy.core.multiarray._reconstruct, numpy.ndarray, numpy.dtype,
//   numpy.core.multiarray.scalar, numpy.core.numeric._frombuffer (protocol 5),
//   _codecs.encode (bytes pickled by Python 3 at protocol 2), bytes() (empty bytes)
// and the same under numpy 2's numpy._core. Any other global (os.system,
// a user class, ...) is refused with an lgh::Error naming it, before
// anything is called: unpickling here never executes code.
//
// Robustness: every length is checked against the bytes left, so truncated
// or corrupt input raises lgh::Error (naming the file and the byte offset),
// never reads out of bounds. Values live in an arena owned by the Document,
// so self-referencing containers built through the memo cannot leak or
// recurse when freed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lgh/core/error.hpp"

namespace lgh {
namespace data {
namespace pickle {

enum class Kind { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Array, DType, Global };

inline const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Array: return "numpy.ndarray";
    case Kind::DType: return "numpy.dtype";
    case Kind::Global: return "global";
  }
  return "?";
}

// A numpy element type: kind 'b' (bool), 'i', 'u' or 'f', its size in bytes
// and byte order ('<' little, '>' big, '|' not applicable).
struct DType {
  char kind = 'f';
  int itemsize = 8;
  char byteorder = '<';

  std::string str() const { return std::string(1, byteorder) + kind + std::to_string(itemsize); }
};

// A numpy array: element type, shape and the raw element bytes in C
// (row-major) order; Fortran-ordered input is reordered on load.
struct NDArray {
  DType dtype;
  std::vector<int64_t> shape;
  std::string bytes;

  int64_t numel() const {
    // Validated shapes multiply to at most the data size, except that a zero
    // extent may follow extents whose product alone would overflow.
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }

  std::string shape_str() const {
    std::ostringstream os;
    os << "[";
    for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
    os << "]";
    return os.str();
  }

  // Element i (row-major) converted to double.
  double at(int64_t i) const {
    const int n = dtype.itemsize;
    unsigned char b[8];
    std::memcpy(b, bytes.data() + i * n, static_cast<size_t>(n));
    if (dtype.byteorder == '>') {
      for (int k = 0; k < n / 2; ++k) std::swap(b[k], b[n - 1 - k]);
    }
    switch (dtype.kind) {
      case 'f':
        if (n == 4) {
          float f;
          std::memcpy(&f, b, 4);
          return f;
        } else {
          double d;
          std::memcpy(&d, b, 8);
          return d;
        }
      case 'b':
        return b[0] != 0 ? 1.0 : 0.0;
      case 'u': {
        uint64_t u = 0;
        for (int k = n - 1; k >= 0; --k) u = (u << 8) | b[k];
        return static_cast<double>(u);
      }
      default: {  // 'i': sign-extend
        uint64_t u = 0;
        for (int k = n - 1; k >= 0; --k) u = (u << 8) | b[k];
        if (n < 8 && (b[n - 1] & 0x80)) u |= ~uint64_t(0) << (8 * n);
        int64_t s;
        std::memcpy(&s, &u, 8);
        return static_cast<double>(s);
      }
    }
  }

  std::vector<double> to_doubles() const {
    std::vector<double> out(static_cast<size_t>(numel()));
    for (int64_t i = 0; i < numel(); ++i) out[static_cast<size_t>(i)] = at(i);
    return out;
  }
};

// One unpickled value. Children are pointers into the owning Document.
struct Value {
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0;
  std::string text;                                  // Str (UTF-8), Bytes, Global ("module.name")
  std::vector<Value*> items;                         // Tuple, List
  std::vector<std::pair<Value*, Value*>> entries;    // Dict, in insertion order
  NDArray array;                                     // Array
  bool array_ready = false;                          // Array: state set (BUILD) or built directly
  DType dtype;                                       // DType

  bool is_text() const { return kind == Kind::Str || kind == Kind::Bytes; }

  // The value under a str/bytes key of a dict, or nullptr.
  const Value* find(const std::string& key) const {
    if (kind != Kind::Dict) return nullptr;
    for (const auto& e : entries)
      if (e.first->is_text() && e.first->text == key) return e.second;
    return nullptr;
  }

  // Number of elements of a list, tuple or dict.
  size_t size() const { return kind == Kind::Dict ? entries.size() : items.size(); }
};

// The result of unpickling: the root value and the arena that owns it.
class Document {
 public:
  Document() = default;
  Document(Document&&) = default;
  Document& operator=(Document&&) = default;
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  const Value& root() const { return *root_; }
  // The name given to loads(), for messages.
  const std::string& source() const { return source_; }

 private:
  friend class Unpickler;
  std::vector<std::unique_ptr<Value>> arena_;
  Value* root_ = nullptr;
  std::string source_;
};

class Unpickler {
 public:
  static constexpr size_t kMaxArrayDims = 64;

  // `what` names the input in error messages (usually the file path).
  Unpickler(const std::string& bytes, std::string what) : in_(bytes), what_(std::move(what)) {}

  Document load() {
    doc_.source_ = what_;
    for (;;) {
      LGH_CHECK(pos_ < in_.size(),
                "pickle '" << what_ << "': truncated at byte " << pos_ << " (no STOP opcode)");
      op_pos_ = pos_;
      const uint8_t op = static_cast<uint8_t>(in_[pos_++]);
      if (op == '.') break;  // STOP
      step(op);
    }
    check(marks_.empty(), "unbalanced MARK at STOP");
    check(stack_.size() == 1, "STOP with " + std::to_string(stack_.size()) + " values on the stack, expected 1");
    doc_.root_ = stack_.back();
    return std::move(doc_);
  }

 private:
  // ---- input -------------------------------------------------------------
  [[noreturn]] void fail(const std::string& msg) const {
    std::ostringstream os;
    os << "pickle '" << what_ << "': " << msg << " (opcode at byte " << op_pos_ << ")";
    throw Error(os.str());
  }
  void check(bool ok, const std::string& msg) const {
    if (!ok) fail(msg);
  }

  const char* take(uint64_t n) {
    if (n > in_.size() - pos_) {
      std::ostringstream os;
      os << "truncated: needs " << n << " more bytes at byte " << pos_ << ", only " << (in_.size() - pos_)
         << " left";
      fail(os.str());
    }
    const char* p = in_.data() + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }
  uint64_t read_le(int n) {
    const auto* p = reinterpret_cast<const uint8_t*>(take(static_cast<uint64_t>(n)));
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }
  std::string read_line() {
    const size_t end = in_.find('\n', pos_);
    check(end != std::string::npos, "truncated: unterminated GLOBAL name");
    std::string s = in_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }

  // ---- values ------------------------------------------------------------
  Value* make(Kind k) {
    doc_.arena_.push_back(std::make_unique<Value>());
    Value* v = doc_.arena_.back().get();
    v->kind = k;
    return v;
  }
  void push(Value* v) { stack_.push_back(v); }
  Value* pop() {
    check(stack_.size() > (marks_.empty() ? 0 : marks_.back()), "stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    check(stack_.size() > (marks_.empty() ? 0 : marks_.back()), "stack underflow");
    return stack_.back();
  }
  // Pops everything above the last MARK, and the mark.
  std::vector<Value*> pop_mark() {
    check(!marks_.empty(), "no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  Value* text(Kind k, const char* p, uint64_t n) {
    Value* v = make(k);
    v->text.assign(p, static_cast<size_t>(n));
    return v;
  }
  Value* tuple(std::vector<Value*> items) {
    Value* v = make(Kind::Tuple);
    v->items = std::move(items);
    return v;
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  Value* memo_get(uint64_t index) {
    auto it = memo_.find(index);
    check(it != memo_.end(), "memo key " + std::to_string(index) + " was never stored");
    return it->second;
  }
  void set_item(Value* dict, Value* key, Value* value) {
    check(dict->kind == Kind::Dict, std::string("SETITEM on a ") + kind_name(dict->kind));
    check(key->kind != Kind::List && key->kind != Kind::Dict && key->kind != Kind::Array,
          std::string("unhashable dict key of type ") + kind_name(key->kind));
    dict->entries.emplace_back(key, value);
  }

  // ---- the opcodes ---------------------------------------------------------
  void step(uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        const auto proto = read_le(1);
        check(proto >= 2 && proto <= 5, "unsupported pickle protocol " + std::to_string(proto));
        return;
      }
      case 0x95: take(8); return;  // FRAME: framing only groups opcodes; the length is not needed
      case '(': marks_.push_back(stack_.size()); return;
      case '0': pop(); return;  // POP
      case '1': pop_mark(); return;  // POP_MARK
      case '2': push(top()); return;  // DUP
      case 'N': push(make(Kind::None)); return;
      case 0x88:
      case 0x89: {  // NEWTRUE / NEWFALSE
        Value* v = make(Kind::Bool);
        v->boolean = op == 0x88;
        push(v);
        return;
      }
      case 'J': push_int(static_cast<int32_t>(static_cast<uint32_t>(read_le(4)))); return;  // BININT
      case 'K': push_int(static_cast<int64_t>(read_le(1))); return;  // BININT1
      case 'M': push_int(static_cast<int64_t>(read_le(2))); return;  // BININT2
      case 0x8a: push_long(read_le(1)); return;  // LONG1
      case 0x8b: push_long(read_le(4)); return;  // LONG4
      case 'G': {  // BINFLOAT: big-endian IEEE double
        const auto* p = reinterpret_cast<const uint8_t*>(take(8));
        uint64_t u = 0;
        for (int i = 0; i < 8; ++i) u = (u << 8) | p[i];
        Value* v = make(Kind::Float);
        std::memcpy(&v->real, &u, 8);
        push(v);
        return;
      }
      // Python 2 str is a byte string; numpy's raw data comes this way.
      case 'U': { const auto n = read_le(1); push(text(Kind::Bytes, take(n), n)); return; }  // SHORT_BINSTRING
      case 'T': { const auto n = read_le(4); push(text(Kind::Bytes, take(n), n)); return; }  // BINSTRING
      case 0x8c: { const auto n = read_le(1); push(text(Kind::Str, take(n), n)); return; }   // SHORT_BINUNICODE
      case 'X': { const auto n = read_le(4); push(text(Kind::Str, take(n), n)); return; }    // BINUNICODE
      case 0x8d: { const auto n = read_le(8); push(text(Kind::Str, take(n), n)); return; }   // BINUNICODE8
      case 'C': { const auto n = read_le(1); push(text(Kind::Bytes, take(n), n)); return; }  // SHORT_BINBYTES
      case 'B': { const auto n = read_le(4); push(text(Kind::Bytes, take(n), n)); return; }  // BINBYTES
      case 0x8e:  // BINBYTES8
      case 0x96: { const auto n = read_le(8); push(text(Kind::Bytes, take(n), n)); return; }  // BYTEARRAY8
      case ')': push(tuple({})); return;  // EMPTY_TUPLE
      case 't': push(tuple(pop_mark())); return;  // TUPLE
      case 0x85: { Value* a = pop(); push(tuple({a})); return; }  // TUPLE1
      case 0x86: { Value* b = pop(); Value* a = pop(); push(tuple({a, b})); return; }  // TUPLE2
      case 0x87: {  // TUPLE3
        Value* c = pop();
        Value* b = pop();
        Value* a = pop();
        push(tuple({a, b, c}));
        return;
      }
      case ']': push(make(Kind::List)); return;  // EMPTY_LIST
      case 'l': {  // LIST
        Value* v = make(Kind::List);
        v->items = pop_mark();
        push(v);
        return;
      }
      case 'a': {  // APPEND
        Value* item = pop();
        Value* list = top();
        check(list->kind == Kind::List, std::string("APPEND to a ") + kind_name(list->kind));
        list->items.push_back(item);
        return;
      }
      case 'e': {  // APPENDS
        std::vector<Value*> items = pop_mark();
        Value* list = top();
        check(list->kind == Kind::List, std::string("APPENDS to a ") + kind_name(list->kind));
        list->items.insert(list->items.end(), items.begin(), items.end());
        return;
      }
      case '}': push(make(Kind::Dict)); return;  // EMPTY_DICT
      case 'd': {  // DICT
        std::vector<Value*> items = pop_mark();
        check(items.size() % 2 == 0, "DICT with an odd number of items");
        Value* d = make(Kind::Dict);
        for (size_t i = 0; i < items.size(); i += 2) set_item(d, items[i], items[i + 1]);
        push(d);
        return;
      }
      case 's': {  // SETITEM
        Value* value = pop();
        Value* key = pop();
        set_item(top(), key, value);
        return;
      }
      case 'u': {  // SETITEMS
        std::vector<Value*> items = pop_mark();
        check(items.size() % 2 == 0, "SETITEMS with an odd number of items");
        Value* d = top();
        for (size_t i = 0; i < items.size(); i += 2) set_item(d, items[i], items[i + 1]);
        return;
      }
      case 'q': memo_put(read_le(1)); return;   // BINPUT
      case 'r': memo_put(read_le(4)); return;   // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); return;  // MEMOIZE
      case 'h': push(memo_get(read_le(1))); return;  // BINGET
      case 'j': push(memo_get(read_le(4))); return;  // LONG_BINGET
      case 'c': {  // GLOBAL "module\nname\n"
        std::string module = read_line();
        std::string name = read_line();
        push(global(module, name));
        return;
      }
      case 0x93: {  // STACK_GLOBAL
        Value* name = pop();
        Value* module = pop();
        check(name->kind == Kind::Str && module->kind == Kind::Str, "STACK_GLOBAL needs two str operands");
        push(global(module->text, name->text));
        return;
      }
      case 'R': {  // REDUCE
        Value* args = pop();
        Value* callable = pop();
        push(reduce(callable, args));
        return;
      }
      case 'b': {  // BUILD
        Value* state = pop();
        build(top(), state);
        return;
      }
      default: break;
    }
    std::ostringstream os;
    os << "unsupported opcode 0x" << std::hex << static_cast<int>(op);
    if (op >= 0x20 && op < 0x7f) os << " ('" << static_cast<char>(op) << "')";
    os << std::dec << "; only protocol 2-5 pickles of containers and numpy arrays are read";
    fail(os.str());
  }

  void push_int(int64_t i) {
    Value* v = make(Kind::Int);
    v->integer = i;
    push(v);
  }
  // LONG1/LONG4: little-endian two's complement of n bytes.
  void push_long(uint64_t n) {
    check(n <= 8, "integer of " + std::to_string(n) + " bytes does not fit 64 bits");
    const auto* p = reinterpret_cast<const uint8_t*>(take(n));
    uint64_t u = 0;
    for (int i = static_cast<int>(n) - 1; i >= 0; --i) u = (u << 8) | p[i];
    if (n > 0 && n < 8 && (p[n - 1] & 0x80)) u |= ~uint64_t(0) << (8 * n);
    int64_t s;
    std::memcpy(&s, &u, 8);
    push_int(s);
  }

  // ---- the whitelist -------------------------------------------------------
  static bool numpy_core(const std::string& module, const std::string& sub) {
    return module == "numpy.core." + sub || module == "numpy._core." + sub;
  }

  Value* global(const std::string& module, const std::string& name) {
    std::string id;
    if (numpy_core(module, "multiarray") && (name == "_reconstruct" || name == "scalar"))
      id = "numpy.core.multiarray." + name;
    else if (numpy_core(module, "numeric") && name == "_frombuffer")
      id = "numpy.core.numeric._frombuffer";
    else if (module == "numpy" && (name == "ndarray" || name == "dtype"))
      id = "numpy." + name;
    else if (module == "_codecs" && name == "encode")
      id = "_codecs.encode";
    else if ((module == "__builtin__" || module == "builtins") && name == "bytes")
      id = "builtins.bytes";
    if (id.empty())
      fail("refusing to load global '" + module + "." + name +
           "': only numpy arrays and plain Python containers are allowed");
    Value* v = make(Kind::Global);
    v->text = id;
    return v;
  }

  Value* reduce(Value* callable, Value* args) {
    check(callable->kind == Kind::Global,
          std::string("REDUCE on a ") + kind_name(callable->kind) + ", expected an allowed global");
    check(args->kind == Kind::Tuple, "REDUCE arguments are not a tuple");
    const std::string& f = callable->text;
    const std::vector<Value*>& a = args->items;
    if (f == "numpy.core.multiarray._reconstruct") {
      // _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD fills.
      check(a.size() == 3 && a[0]->kind == Kind::Global && a[0]->text == "numpy.ndarray",
            "numpy _reconstruct expects (numpy.ndarray, shape, typecode)");
      return make(Kind::Array);
    }
    if (f == "numpy.dtype") {
      check(!a.empty() && a[0]->is_text(), "numpy.dtype expects a type string");
      Value* v = make(Kind::DType);
      v->dtype = parse_dtype(a[0]->text);
      return v;
    }
    if (f == "_codecs.encode") {
      // Python 3 writes bytes at protocol 2 as _codecs.encode(str, 'latin1'):
      // each code point below 256 is one byte.
      check(a.size() == 2 && a[0]->kind == Kind::Str && a[1]->is_text(), "_codecs.encode expects (str, encoding)");
      check(a[1]->text == "latin1" || a[1]->text == "latin-1" || a[1]->text == "iso-8859-1",
            "_codecs.encode with encoding '" + a[1]->text + "', expected latin1");
      Value* v = make(Kind::Bytes);
      v->text = latin1_from_utf8(a[0]->text);
      return v;
    }
    if (f == "builtins.bytes") {
      check(a.empty(), "bytes() with arguments is not supported");
      return make(Kind::Bytes);
    }
    if (f == "numpy.core.multiarray.scalar") {
      // scalar(dtype, raw bytes): a 0-d array.
      check(a.size() == 2 && a[0]->kind == Kind::DType && a[1]->kind == Kind::Bytes,
            "numpy scalar expects (dtype, bytes)");
      Value* v = make(Kind::Array);
      v->array.dtype = a[0]->dtype;
      set_array_data(v, std::vector<int64_t>{}, false, a[1]->text);
      return v;
    }
    if (f == "numpy.core.numeric._frombuffer") {
      // Protocol 5: _frombuffer(buffer, dtype, shape, order).
      check(a.size() == 4 && a[0]->kind == Kind::Bytes && a[1]->kind == Kind::DType && a[2]->kind == Kind::Tuple &&
                a[3]->is_text(),
            "numpy _frombuffer expects (buffer, dtype, shape, order)");
      Value* v = make(Kind::Array);
      v->array.dtype = a[1]->dtype;
      set_array_data(v, shape_of(a[2]), a[3]->text == "F", a[0]->text);
      return v;
    }
    fail("global '" + f + "' cannot be called");
  }

  void build(Value* obj, Value* state) {
    check(state->kind == Kind::Tuple, std::string("BUILD state is a ") + kind_name(state->kind) + ", expected a tuple");
    const std::vector<Value*>& s = state->items;
    if (obj->kind == Kind::DType) {
      // (version, byteorder, subarray, names, fields, elsize, alignment, flags)
      check(s.size() >= 2 && s[1]->is_text() && s[1]->text.size() == 1, "numpy.dtype state without a byte order");
      for (size_t i = 2; i < std::min<size_t>(s.size(), 5); ++i)
        check(s[i]->kind == Kind::None, "structured or sub-array numpy dtypes are not supported");
      char order = s[1]->text[0];
      if (order == '=') order = '<';  // native order of every platform numpy pickles come from in practice
      check(order == '<' || order == '>' || order == '|', std::string("numpy byte order '") + order + "'");
      obj->dtype.byteorder = obj->dtype.itemsize == 1 ? '|' : (order == '|' ? '<' : order);
      return;
    }
    if (obj->kind == Kind::Array) {
      check(!obj->array_ready, "BUILD on an array that already has data");
      // (version, shape, dtype, is_fortran, data), or the same without version.
      const size_t o = s.size() == 5 ? 1 : 0;
      check(s.size() == 4 || s.size() == 5, "numpy array state has " + std::to_string(s.size()) + " items");
      check(s[o]->kind == Kind::Tuple, "numpy array shape is not a tuple");
      check(s[o + 1]->kind == Kind::DType, "numpy array without a dtype");
      check(s[o + 2]->kind == Kind::Bool || s[o + 2]->kind == Kind::Int, "numpy array order flag is not a bool");
      check(s[o + 3]->kind == Kind::Bytes,
            std::string("numpy array data is a ") + kind_name(s[o + 3]->kind) +
                " (object arrays are not supported)");
      obj->array.dtype = s[o + 1]->dtype;
      const bool fortran = s[o + 2]->kind == Kind::Bool ? s[o + 2]->boolean : s[o + 2]->integer != 0;
      set_array_data(obj, shape_of(s[o]), fortran, s[o + 3]->text);
      return;
    }
    fail(std::string("BUILD on a ") + kind_name(obj->kind) + ": only numpy arrays and dtypes take a state");
  }

  std::vector<int64_t> shape_of(const Value* t) {
    std::vector<int64_t> shape;
    for (const Value* d : t->items) {
      check(d->kind == Kind::Int && d->integer >= 0, "numpy array shape holds a non-integer or negative extent");
      shape.push_back(d->integer);
    }
    return shape;
  }

  void set_array_data(Value* v, std::vector<int64_t> shape, bool fortran, const std::string& data) {
    NDArray& arr = v->array;
    arr.shape = std::move(shape);
    // numpy's own limit (NPY_MAXDIMS is 32, 64 in numpy 2); it also bounds
    // the work of the Fortran reordering below.
    check(arr.shape.size() <= kMaxArrayDims, "numpy array with " + std::to_string(arr.shape.size()) +
                                                 " dimensions, more than " + std::to_string(kMaxArrayDims));
    // The element count must match the data before anything is allocated
    // from it; this also bounds the count (no overflow from forged shapes).
    // A zero extent makes the array empty whatever the other extents are.
    const bool empty = std::find(arr.shape.begin(), arr.shape.end(), 0) != arr.shape.end();
    uint64_t n = empty ? 0 : 1;
    for (size_t i = 0; !empty && i < arr.shape.size(); ++i) {
      const auto d = static_cast<uint64_t>(arr.shape[i]);
      check(n <= data.size() / d, "numpy array of shape " + arr.shape_str() + " does not match its " +
                                      std::to_string(data.size()) + " data bytes");
      n *= d;
    }
    check(n * static_cast<uint64_t>(arr.dtype.itemsize) == data.size(),
          "numpy array of shape " + arr.shape_str() + " and dtype " + arr.dtype.str() + " needs " +
              std::to_string(n * static_cast<uint64_t>(arr.dtype.itemsize)) + " bytes, the pickle holds " +
              std::to_string(data.size()));
    if (!fortran || arr.shape.size() < 2) {
      arr.bytes = data;
    } else {
      // Column-major to row-major: element with index (i0..ik) sits at
      // sum i_d * prod_{e<d} n_e in the input.
      const size_t nd = arr.shape.size();
      const size_t item = static_cast<size_t>(arr.dtype.itemsize);
      arr.bytes.resize(data.size());
      std::vector<int64_t> idx(nd, 0);
      for (uint64_t r = 0; r < n; ++r) {
        uint64_t src = 0, stride = 1;
        for (size_t d = 0; d < nd; ++d) {
          src += static_cast<uint64_t>(idx[d]) * stride;
          stride *= static_cast<uint64_t>(arr.shape[d]);
        }
        std::memcpy(&arr.bytes[r * item], &data[src * item], item);
        for (size_t d = nd; d-- > 0;) {
          if (++idx[d] < arr.shape[d]) break;
          idx[d] = 0;
        }
      }
    }
    v->array_ready = true;
  }

  DType parse_dtype(const std::string& name) {
    std::string s = name;
    DType t;
    t.byteorder = '<';
    if (!s.empty() && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) {
      if (s[0] == '>') t.byteorder = '>';
      s = s.substr(1);
    }
    check(s.size() >= 2, "numpy dtype '" + name + "' is not supported");
    t.kind = s[0];
    const std::string size = s.substr(1);
    check(size == "1" || size == "2" || size == "4" || size == "8", "numpy dtype '" + name + "' is not supported");
    t.itemsize = size[0] - '0';
    const bool ok = (t.kind == 'f' && (t.itemsize == 4 || t.itemsize == 8)) || (t.kind == 'b' && t.itemsize == 1) ||
                    t.kind == 'i' || t.kind == 'u';
    check(ok, "numpy dtype '" + name + "' is not supported (bool, int, uint, float32 and float64 are)");
    if (t.itemsize == 1) t.byteorder = '|';
    return t;
  }

  std::string latin1_from_utf8(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<uint8_t>(s[i]);
      if (c < 0x80) {
        out.push_back(static_cast<char>(c));
      } else {
        check((c == 0xC2 || c == 0xC3) && i + 1 < s.size() && (static_cast<uint8_t>(s[i + 1]) & 0xC0) == 0x80,
              "_codecs.encode: text is not latin1");
        out.push_back(static_cast<char>(((c & 0x03) << 6) | (static_cast<uint8_t>(s[i + 1]) & 0x3F)));
        ++i;
      }
    }
    return out;
  }

  const std::string& in_;
  std::string what_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
  Document doc_;
};

// Unpickles `bytes`; `what` names the source in error messages.
inline Document loads(const std::string& bytes, const std::string& what = "<bytes>") {
  return Unpickler(bytes, what).load();
}

inline std::string read_file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  LGH_CHECK(f.good(), "cannot open '" << path << "' (missing or unreadable)");
  std::ostringstream ss;
  ss << f.rdbuf();
  LGH_CHECK(!f.bad(), "error reading '" << path << "'");
  return ss.str();
}

inline Document load_file(const std::string& path) { return loads(read_file_bytes(path), path); }

// Checked access for readers; `context` says where the value came from
// (file and entry) for the error message.
inline const Value& expect_key(const Value& dict, const std::string& key, const std::string& context) {
  LGH_CHECK(dict.kind == Kind::Dict, context << ": expected a dict, found a " << kind_name(dict.kind));
  const Value* v = dict.find(key);
  LGH_CHECK(v != nullptr, context << ": missing key '" << key << "'");
  return *v;
}

// The array `v`, which must have `shape` (-1 matches any extent).
inline const NDArray& expect_array(const Value& v, const std::vector<int64_t>& shape, const std::string& context) {
  LGH_CHECK(v.kind == Kind::Array && v.array_ready,
            context << ": expected a numpy array, found a " << kind_name(v.kind));
  bool ok = v.array.shape.size() == shape.size();
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || shape[i] == v.array.shape[i];
  if (!ok) {
    std::ostringstream want;
    want << "[";
    for (size_t i = 0; i < shape.size(); ++i) want << (i ? ", " : "") << shape[i];
    want << "]";
    LGH_FAIL(context << ": array of shape " << v.array.shape_str() << ", expected " << want.str());
  }
  return v.array;
}

}  // namespace pickle
}  // namespace data
}  // namespace lgh
