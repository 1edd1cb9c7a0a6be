//===- Safetensors.cpp - reading and writing safetensors files ---------------------===//
//
// The reader trusts nothing in the file: the header is parsed by a small hand-written JSON
// reader (first a pass that only checks the syntax, so malformed JSON is reported as such,
// then a pass that reads the safetensors schema), every size and offset is checked with
// overflow-free arithmetic before anything is allocated, and the byte buffer must be covered
// exactly by the tensors, as the specification requires. Tensor bytes are decoded
// little-endian one byte at a time, so the code does not depend on the host's byte order.
//
// The writer validates its input fully before creating anything, then writes a temporary
// file next to the target, syncs it and renames it over the target, so a reader (or a crash)
// sees either the old file or the complete new one.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Safetensors.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <new>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace llamac {

const Tensor *TensorFile::find(const std::string &name) const {
  for (const auto &entry : tensors)
    if (entry.first == name)
      return &entry.second;
  return nullptr;
}

namespace {

// The limit the reference implementation enforces: a larger header is an attack or an error.
constexpr uint64_t kMaxHeaderSize = 100'000'000;
// Valid headers nest three deep ({"t": {"shape": [...]}}); the limit only keeps the recursive
// syntax check from exhausting the stack on "[[[[...".
constexpr int kMaxJsonDepth = 64;
// I/O chunk; a multiple of every element size, so no element straddles two chunks.
constexpr size_t kChunkBytes = size_t(1) << 20;
constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

/// `s` in single quotes, with control characters escaped so a hostile name cannot garble
/// the message.
std::string quote(std::string_view s) {
  std::string r = "'";
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      r += buf;
    } else {
      r += static_cast<char>(c);
    }
  }
  return r + "'";
}

std::string errnoText(int err) { return std::strerror(err); }

/// The length of the well-formed UTF-8 sequence at `p`, or 0. Rejects overlong forms,
/// surrogates and code points above U+10FFFF, as RFC 3629 requires.
size_t utf8SequenceLength(const unsigned char *p, const unsigned char *end) {
  auto cont = [&](size_t i, unsigned char lo, unsigned char hi) {
    return p + i < end && p[i] >= lo && p[i] <= hi;
  };
  unsigned char c = p[0];
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    return cont(1, 0x80, 0xbf) ? 2 : 0;
  if (c == 0xe0)
    return cont(1, 0xa0, 0xbf) && cont(2, 0x80, 0xbf) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef)
    return cont(1, 0x80, 0xbf) && cont(2, 0x80, 0xbf) ? 3 : 0;
  if (c == 0xed) // U+D000..U+D7FF; U+D800.. are surrogates
    return cont(1, 0x80, 0x9f) && cont(2, 0x80, 0xbf) ? 3 : 0;
  if (c == 0xf0)
    return cont(1, 0x90, 0xbf) && cont(2, 0x80, 0xbf) && cont(3, 0x80, 0xbf) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3)
    return cont(1, 0x80, 0xbf) && cont(2, 0x80, 0xbf) && cont(3, 0x80, 0xbf) ? 4 : 0;
  if (c == 0xf4)
    return cont(1, 0x80, 0x8f) && cont(2, 0x80, 0xbf) && cont(3, 0x80, 0xbf) ? 4 : 0;
  return 0;
}

bool isValidUtf8(std::string_view s) {
  auto *p = reinterpret_cast<const unsigned char *>(s.data());
  auto *end = p + s.size();
  while (p < end) {
    size_t n = utf8SequenceLength(p, end);
    if (n == 0)
      return false;
    p += n;
  }
  return true;
}

void appendUtf8(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

//===----------------------------------------------------------------------------------===//
// JSON
//===----------------------------------------------------------------------------------===//

struct JsonNumber {
  std::string_view text;
  bool negative = false;
  bool integer = true;   ///< no fraction and no exponent
  bool overflow = false; ///< the integer part exceeds uint64_t
  uint64_t magnitude = 0;
};

/// A cursor over the header text. Each parse function returns false with `error` set (the
/// first error wins) and never reads outside the text.
class JsonReader {
public:
  explicit JsonReader(std::string_view text) : s_(text) {}

  size_t pos() const { return pos_; }
  const std::string &error() const { return error_; }

  bool fail(const std::string &msg) {
    if (error_.empty())
      error_ = msg + " at header byte " + std::to_string(pos_);
    return false;
  }

  void skipWhitespace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool atEnd() const { return pos_ >= s_.size(); }
  /// The next character, or '\0' at the end (the text may contain NULs, so callers that care
  /// check atEnd()).
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }

  /// Skips whitespace and consumes `c` if it is next.
  bool consume(char c) {
    skipWhitespace();
    if (atEnd() || s_[pos_] != c)
      return false;
    ++pos_;
    return true;
  }
  bool expect(char c) {
    if (consume(c))
      return true;
    return fail(std::string("expected '") + c + "' but found " + describeNext());
  }

  /// What comes next, for messages: "'x'", "byte 0x01" or "the end of the header".
  std::string describeNext() const {
    if (atEnd())
      return "the end of the header";
    unsigned char c = static_cast<unsigned char>(s_[pos_]);
    if (c < 0x20 || c >= 0x7f) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
      return buf;
    }
    return std::string("'") + static_cast<char>(c) + "'";
  }

  /// The JSON type of the next value ("an object", ...), judged by its first character.
  const char *nextKind() {
    skipWhitespace();
    switch (peek()) {
    case '{': return "an object";
    case '[': return "an array";
    case '"': return "a string";
    case 't': case 'f': return "a boolean";
    case 'n': return "null";
    default: return "a number";
    }
  }

  bool parseString(std::string &out) {
    out.clear();
    skipWhitespace();
    if (atEnd() || s_[pos_] != '"')
      return fail("expected a string but found " + describeNext());
    ++pos_;
    auto *begin = reinterpret_cast<const unsigned char *>(s_.data());
    auto *end = begin + s_.size();
    while (true) {
      if (atEnd())
        return fail("unterminated string");
      unsigned char c = begin[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20)
        return fail("unescaped control character in a string");
      if (c == '\\') {
        if (!parseEscape(out))
          return false;
        continue;
      }
      size_t n = utf8SequenceLength(begin + pos_, end);
      if (n == 0)
        return fail("invalid UTF-8 in a string");
      out.append(s_.data() + pos_, n);
      pos_ += n;
    }
  }

  bool parseNumber(JsonNumber &out) {
    out = JsonNumber();
    skipWhitespace();
    size_t start = pos_;
    if (peek() == '-') {
      out.negative = true;
      ++pos_;
    }
    if (!isDigit(peek()))
      return fail("expected a number but found " + describeNext());
    if (peek() == '0') {
      ++pos_;
      if (isDigit(peek()))
        return fail("a number has a leading zero");
    } else {
      while (isDigit(peek())) {
        uint64_t d = static_cast<uint64_t>(peek() - '0');
        if (out.magnitude > (std::numeric_limits<uint64_t>::max() - d) / 10)
          out.overflow = true;
        else
          out.magnitude = out.magnitude * 10 + d;
        ++pos_;
      }
    }
    if (peek() == '.') {
      out.integer = false;
      ++pos_;
      if (!isDigit(peek()))
        return fail("expected a digit after '.' but found " + describeNext());
      while (isDigit(peek()))
        ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      out.integer = false;
      ++pos_;
      if (peek() == '+' || peek() == '-')
        ++pos_;
      if (!isDigit(peek()))
        return fail("expected a digit in an exponent but found " + describeNext());
      while (isDigit(peek()))
        ++pos_;
    }
    out.text = s_.substr(start, pos_ - start);
    return true;
  }

  /// Checks the syntax of one value of any type, without keeping it.
  bool skipValue(int depth = 0) {
    skipWhitespace();
    if (depth > kMaxJsonDepth)
      return fail("values nested more than " + std::to_string(kMaxJsonDepth) + " deep");
    if (atEnd())
      return fail("expected a value but found the end of the header");
    std::string scratch;
    JsonNumber number;
    switch (peek()) {
    case '{':
      ++pos_;
      if (consume('}'))
        return true;
      do {
        if (!parseString(scratch) || !expect(':') || !skipValue(depth + 1))
          return false;
      } while (consume(','));
      return expect('}');
    case '[':
      ++pos_;
      if (consume(']'))
        return true;
      do {
        if (!skipValue(depth + 1))
          return false;
      } while (consume(','));
      return expect(']');
    case '"': return parseString(scratch);
    case 't': return parseWord("true");
    case 'f': return parseWord("false");
    case 'n': return parseWord("null");
    default:
      if (peek() == '-' || isDigit(peek()))
        return parseNumber(number);
      return fail("expected a value but found " + describeNext());
    }
  }

private:
  static bool isDigit(char c) { return c >= '0' && c <= '9'; }
  static int hexValue(char c) {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  }

  bool parseWord(const char *word) {
    size_t n = std::strlen(word);
    if (s_.substr(pos_, n) != word)
      return fail("expected a value but found " + describeNext());
    pos_ += n;
    return true;
  }

  /// Four hex digits after "\u".
  bool parseHex4(uint32_t &out) {
    if (s_.size() - pos_ < 4)
      return fail("truncated \\u escape");
    out = 0;
    for (size_t i = 0; i < 4; ++i) {
      int h = hexValue(s_[pos_ + i]);
      if (h < 0)
        return fail("invalid hex digit in a \\u escape");
      out = out * 16 + static_cast<uint32_t>(h);
    }
    pos_ += 4;
    return true;
  }

  /// At a backslash inside a string; appends the escaped character as UTF-8.
  bool parseEscape(std::string &out) {
    ++pos_;
    if (atEnd())
      return fail("unterminated escape");
    char c = s_[pos_++];
    switch (c) {
    case '"': out += '"'; return true;
    case '\\': out += '\\'; return true;
    case '/': out += '/'; return true;
    case 'b': out += '\b'; return true;
    case 'f': out += '\f'; return true;
    case 'n': out += '\n'; return true;
    case 'r': out += '\r'; return true;
    case 't': out += '\t'; return true;
    case 'u': break;
    default: --pos_; return fail("invalid escape \\" + describeNext());
    }
    uint32_t cp;
    if (!parseHex4(cp))
      return false;
    if (cp >= 0xdc00 && cp <= 0xdfff)
      return fail("unpaired low surrogate in a \\u escape");
    if (cp >= 0xd800 && cp <= 0xdbff) {
      // UTF-16 surrogate pair: the low half must follow as another \u escape.
      if (s_.substr(pos_, 2) != "\\u")
        return fail("unpaired high surrogate in a \\u escape");
      pos_ += 2;
      uint32_t low;
      if (!parseHex4(low))
        return false;
      if (low < 0xdc00 || low > 0xdfff)
        return fail("unpaired high surrogate in a \\u escape");
      cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
    }
    appendUtf8(out, cp);
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

//===----------------------------------------------------------------------------------===//
// Reading
//===----------------------------------------------------------------------------------===//

struct Entry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
  uint64_t bytes = 0; ///< what dtype and shape need
};

/// "F32[5x6]", "F32[]" for a scalar.
std::string typeString(DType t, const std::vector<int64_t> &shape) {
  std::string s = std::string(dtypeName(t)) + "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? "x" : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string rangeString(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

/// Reads the schema from a header whose JSON syntax has already been checked. Returns an
/// empty string or what is wrong.
class HeaderParser {
public:
  explicit HeaderParser(std::string_view header) : r_(header) {}

  std::string parse(std::vector<Entry> &entries, std::map<std::string, std::string> &metadata) {
    std::string err;
    if (!r_.expect('{'))
      return syntax();
    if (r_.consume('}'))
      return "";
    std::set<std::string> keys;
    do {
      std::string key;
      if (!r_.parseString(key) || !r_.expect(':'))
        return syntax();
      if (!keys.insert(key).second)
        return "the header has a duplicate key " + quote(key);
      if (key == "__metadata__") {
        err = parseMetadata(metadata);
      } else {
        entries.emplace_back();
        entries.back().name = key;
        err = parseEntry(entries.back());
      }
      if (!err.empty())
        return err;
    } while (r_.consume(','));
    if (!r_.expect('}'))
      return syntax();
    return "";
  }

private:
  std::string syntax() { return "the header is not valid JSON: " + r_.error(); }

  std::string parseMetadata(std::map<std::string, std::string> &metadata) {
    if (r_.nextKind() != std::string_view("an object"))
      return "\"__metadata__\" must be an object mapping strings to strings, but it is " +
             std::string(r_.nextKind());
    r_.expect('{');
    if (r_.consume('}'))
      return "";
    do {
      std::string key, value;
      if (!r_.parseString(key) || !r_.expect(':'))
        return syntax();
      if (r_.nextKind() != std::string_view("a string"))
        return "\"__metadata__\" key " + quote(key) + " must map to a string, but it maps to " +
               r_.nextKind();
      if (!r_.parseString(value))
        return syntax();
      if (!metadata.emplace(key, value).second)
        return "\"__metadata__\" has a duplicate key " + quote(key);
    } while (r_.consume(','));
    if (!r_.expect('}'))
      return syntax();
    return "";
  }

  /// A non-negative integer for `what` of the tensor, below `limit`.
  std::string parseCount(const Entry &e, const char *what, uint64_t limit, uint64_t &out) {
    JsonNumber n;
    if (!r_.parseNumber(n))
      return syntax();
    std::string prefix = "tensor " + quote(e.name) + ": " + what + " " + std::string(n.text);
    if (!n.integer)
      return prefix + " is not an integer";
    if (n.negative && (n.magnitude != 0 || n.overflow))
      return prefix + " is negative";
    if (n.overflow || n.magnitude > limit)
      return prefix + " is too large";
    out = n.magnitude;
    return "";
  }

  std::string parseEntry(Entry &e) {
    std::string who = "tensor " + quote(e.name) + ": ";
    if (r_.nextKind() != std::string_view("an object"))
      return who + "expected an object with \"dtype\", \"shape\" and \"data_offsets\", but it "
                   "is " + r_.nextKind();
    r_.expect('{');
    bool haveDtype = false, haveShape = false, haveOffsets = false;
    if (!r_.consume('}')) {
      do {
        std::string field;
        if (!r_.parseString(field) || !r_.expect(':'))
          return syntax();
        std::string err;
        if (field == "dtype") {
          if (haveDtype)
            return who + "duplicate key \"dtype\"";
          haveDtype = true;
          err = parseDtypeField(e);
        } else if (field == "shape") {
          if (haveShape)
            return who + "duplicate key \"shape\"";
          haveShape = true;
          err = parseShapeField(e);
        } else if (field == "data_offsets") {
          if (haveOffsets)
            return who + "duplicate key \"data_offsets\"";
          haveOffsets = true;
          err = parseOffsetsField(e);
        } else {
          return who + "unknown key " + quote(field) +
                 " (an entry has only \"dtype\", \"shape\" and \"data_offsets\")";
        }
        if (!err.empty())
          return err;
      } while (r_.consume(','));
      if (!r_.expect('}'))
        return syntax();
    }
    if (!haveDtype)
      return who + "missing \"dtype\"";
    if (!haveShape)
      return who + "missing \"shape\"";
    if (!haveOffsets)
      return who + "missing \"data_offsets\"";
    return "";
  }

  std::string parseDtypeField(Entry &e) {
    if (r_.nextKind() != std::string_view("a string"))
      return "tensor " + quote(e.name) + ": \"dtype\" must be a string, but it is " +
             r_.nextKind();
    std::string name;
    if (!r_.parseString(name))
      return syntax();
    std::optional<DType> t = parseDType(name);
    if (!t)
      return "unsupported dtype " + quote(name) + " of tensor " + quote(e.name) +
             " (supported: F64, F32, BF16, F16, I64, I32)";
    e.dtype = *t;
    return "";
  }

  std::string parseShapeField(Entry &e) {
    std::string who = "tensor " + quote(e.name) + ": ";
    if (r_.nextKind() != std::string_view("an array"))
      return who + "\"shape\" must be an array of integers, but it is " + r_.nextKind();
    r_.expect('[');
    if (r_.consume(']'))
      return "";
    do {
      if (r_.nextKind() != std::string_view("a number"))
        return who + "\"shape\" must be an array of integers, but it holds " + r_.nextKind();
      uint64_t d;
      std::string err = parseCount(e, "shape dimension", kInt64Max, d);
      if (!err.empty())
        return err;
      e.shape.push_back(static_cast<int64_t>(d));
    } while (r_.consume(','));
    if (!r_.expect(']'))
      return syntax();
    return "";
  }

  std::string parseOffsetsField(Entry &e) {
    std::string bad = "tensor " + quote(e.name) +
                      ": \"data_offsets\" must be an array of two integers [begin, end]";
    if (r_.nextKind() != std::string_view("an array"))
      return bad + ", but it is " + r_.nextKind();
    r_.expect('[');
    uint64_t values[2];
    size_t count = 0;
    if (!r_.consume(']')) {
      do {
        if (r_.nextKind() != std::string_view("a number"))
          return bad + ", but it holds " + r_.nextKind();
        if (count == 2)
          return bad + ", but it has more than two";
        std::string err = parseCount(
            e, "data_offsets value", std::numeric_limits<uint64_t>::max(), values[count++]);
        if (!err.empty())
          return err;
      } while (r_.consume(','));
      if (!r_.expect(']'))
        return syntax();
    }
    if (count != 2)
      return bad + ", but it has " + std::to_string(count);
    e.begin = values[0];
    e.end = values[1];
    return "";
  }

  JsonReader r_;
};

/// Checks one entry's shape and offsets against its dtype and the data buffer's size.
std::string checkEntry(Entry &e, uint64_t bufferSize) {
  std::string who = "tensor " + quote(e.name) + ": ";
  // Tensor::numElements() and strides() multiply the dimensions in any order, so the product
  // of the non-zero ones must fit even when a zero dimension makes the tensor empty.
  uint64_t product = 1;
  bool empty = false;
  for (int64_t d : e.shape) {
    if (d == 0) {
      empty = true;
      continue;
    }
    if (product > kInt64Max / static_cast<uint64_t>(d))
      return who + "shape " + typeString(e.dtype, e.shape) + " has too many elements";
    product *= static_cast<uint64_t>(d);
  }
  uint64_t elements = empty ? 0 : product;
  uint64_t size = static_cast<uint64_t>(dtypeSize(e.dtype));
  if (elements > kInt64Max / size)
    return who + "shape " + typeString(e.dtype, e.shape) + " has too many elements";
  e.bytes = elements * size;
  std::string offsets = "data_offsets " + rangeString(e.begin, e.end);
  if (e.begin > e.end)
    return who + offsets + " begin after end";
  if (e.end > bufferSize)
    return who + offsets + " end beyond the byte buffer, which holds " +
           std::to_string(bufferSize) + " bytes";
  if (e.end - e.begin != e.bytes)
    return who + offsets + " hold " + std::to_string(e.end - e.begin) + " bytes but " +
           typeString(e.dtype, e.shape) + " needs " + std::to_string(e.bytes);
  return "";
}

/// The spec requires the tensors to cover the buffer exactly: no overlaps, no holes, nothing
/// after the last. `order` lists the entries by (begin, end).
std::string checkCoverage(const std::vector<Entry> &entries, const std::vector<size_t> &order,
                          uint64_t bufferSize) {
  uint64_t covered = 0;
  const Entry *previous = nullptr;
  for (size_t i : order) {
    const Entry &e = entries[i];
    if (e.begin < covered)
      return "tensor " + quote(e.name) + ": data_offsets " + rangeString(e.begin, e.end) +
             " overlap tensor " + quote(previous->name) + " at " +
             rangeString(previous->begin, previous->end);
    if (e.begin > covered)
      return "the byte buffer has a hole: no tensor holds bytes " + std::to_string(covered) +
             " to " + std::to_string(e.begin) + " (tensor " + quote(e.name) + " begins at " +
             std::to_string(e.begin) + ")";
    covered = e.end;
    previous = &e;
  }
  if (covered != bufferSize)
    return "the byte buffer has " + std::to_string(bufferSize - covered) +
           " trailing bytes after the last tensor (the tensors end at byte " +
           std::to_string(covered) + " of " + std::to_string(bufferSize) + ")";
  return "";
}

/// pread() until `n` bytes arrive. Returns an empty string or what went wrong.
std::string readFully(int fd, unsigned char *buf, size_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t got = ::pread(fd, buf, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return "read failed: " + errnoText(errno);
    }
    if (got == 0)
      return "unexpected end of file (was it truncated while being read?)";
    buf += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
  return "";
}

uint64_t loadLE(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i)
    v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

double decode(DType t, const unsigned char *p) {
  switch (t) {
  case DType::F64: {
    uint64_t bits = loadLE(p, 8);
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }
  case DType::F32: {
    uint32_t bits = static_cast<uint32_t>(loadLE(p, 4));
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  case DType::BF16: return bf16ToFloat(static_cast<uint16_t>(loadLE(p, 2)));
  case DType::F16: return halfToFloat(static_cast<uint16_t>(loadLE(p, 2)));
  case DType::I64: {
    uint64_t bits = loadLE(p, 8);
    int64_t i;
    std::memcpy(&i, &bits, 8); // two's complement, without implementation-defined casts
    return static_cast<double>(i);
  }
  case DType::I32: {
    uint32_t bits = static_cast<uint32_t>(loadLE(p, 4));
    int32_t i;
    std::memcpy(&i, &bits, 4);
    return i;
  }
  }
  return 0.0;
}

/// Closes a descriptor on every path out of a function.
struct FdCloser {
  int fd = -1;
  ~FdCloser() {
    if (fd >= 0)
      ::close(fd);
  }
};

/// readSafetensors without the file name on messages; may throw std::bad_alloc.
std::string readFile(const std::string &path, TensorFile &out) {
  FdCloser file;
  do
    file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  while (file.fd < 0 && errno == EINTR);
  if (file.fd < 0)
    return "cannot open the file: " + errnoText(errno);
  struct stat st;
  if (::fstat(file.fd, &st) != 0)
    return "cannot stat the file: " + errnoText(errno);
  if (!S_ISREG(st.st_mode))
    return "not a regular file";
  uint64_t fileSize = static_cast<uint64_t>(st.st_size);
  if (fileSize < 8)
    return "the file is " + std::to_string(fileSize) +
           " bytes, too short for the 8-byte header size";

  unsigned char sizeBytes[8];
  std::string err = readFully(file.fd, sizeBytes, 8, 0);
  if (!err.empty())
    return err;
  uint64_t headerSize = loadLE(sizeBytes, 8);
  if (headerSize > kMaxHeaderSize)
    return "the header size " + std::to_string(headerSize) + " exceeds the limit of " +
           std::to_string(kMaxHeaderSize) + " bytes";
  if (headerSize > fileSize - 8)
    return "the header size " + std::to_string(headerSize) + " is larger than the rest of the " +
           std::to_string(fileSize) + "-byte file";
  uint64_t bufferSize = fileSize - 8 - headerSize;

  std::string header(headerSize, '\0');
  err = readFully(file.fd, reinterpret_cast<unsigned char *>(header.data()), header.size(), 8);
  if (!err.empty())
    return err;

  // Pass 1: the syntax alone, so that malformed JSON is never reported as a schema problem.
  JsonReader syntax(header);
  syntax.skipValue();
  syntax.skipWhitespace();
  if (syntax.error().empty() && !syntax.atEnd())
    syntax.fail("unexpected " + syntax.describeNext() + " after the JSON value");
  if (!syntax.error().empty())
    return "the header is not valid JSON: " + syntax.error();
  if (header[0] != '{') {
    JsonReader probe(header);
    if (probe.nextKind() == std::string_view("an object"))
      return "the header must begin with '{' (the spec allows padding only at its end)";
    return std::string("the header is not a JSON object but ") + probe.nextKind();
  }

  // Pass 2: the schema.
  TensorFile result;
  std::vector<Entry> entries;
  err = HeaderParser(header).parse(entries, result.metadata);
  if (!err.empty())
    return err;
  for (Entry &e : entries) {
    err = checkEntry(e, bufferSize);
    if (!err.empty())
      return err;
  }
  std::vector<size_t> order(entries.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (entries[a].begin != entries[b].begin)
      return entries[a].begin < entries[b].begin;
    return entries[a].end < entries[b].end;
  });
  err = checkCoverage(entries, order, bufferSize);
  if (!err.empty())
    return err;

  // The data. Every range is now known to lie inside the file.
  uint64_t dataStart = 8 + headerSize;
  std::vector<unsigned char> chunk;
  result.tensors.reserve(entries.size());
  for (size_t i : order) {
    Entry &e = entries[i];
    Tensor t(e.dtype, std::move(e.shape));
    int size = dtypeSize(e.dtype);
    uint64_t remaining = e.bytes;
    uint64_t offset = dataStart + e.begin;
    size_t element = 0;
    while (remaining > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(remaining, kChunkBytes));
      chunk.resize(n);
      err = readFully(file.fd, chunk.data(), n, offset);
      if (!err.empty())
        return "tensor " + quote(e.name) + ": " + err;
      for (size_t b = 0; b < n; b += static_cast<size_t>(size))
        t.data[element++] = decode(e.dtype, chunk.data() + b);
      remaining -= n;
      offset += n;
    }
    result.tensors.emplace_back(std::move(e.name), std::move(t));
  }
  out = std::move(result);
  return "";
}

//===----------------------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------------------===//

void appendJsonString(std::string &out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\b': out += "\\b"; break;
    case '\f': out += "\\f"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    default:
      if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += static_cast<char>(c); // UTF-8 passes through; the caller checked it is valid
      }
    }
  }
  out += '"';
}

void storeLE(unsigned char *p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i)
    p[i] = static_cast<unsigned char>(v >> (8 * i));
}

void encode(DType t, double v, unsigned char *p) {
  switch (t) {
  case DType::F64: {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    storeLE(p, bits, 8);
    return;
  }
  case DType::F32: {
    float f = static_cast<float>(v);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    storeLE(p, bits, 4);
    return;
  }
  case DType::BF16: storeLE(p, floatToBF16(static_cast<float>(v)), 2); return;
  case DType::F16: storeLE(p, floatToHalf(static_cast<float>(v)), 2); return;
  // roundTo truncates and wraps into range, so these casts are defined; the conversion to
  // uint64_t is modular, which gives two's complement bytes.
  case DType::I64: storeLE(p, static_cast<uint64_t>(static_cast<int64_t>(roundTo(t, v))), 8);
    return;
  case DType::I32: storeLE(p, static_cast<uint64_t>(static_cast<int32_t>(roundTo(t, v))), 4);
    return;
  }
}

/// The temporary file: closed and removed unless committed, on every path out (including
/// exceptions), so a failed write leaves nothing behind.
struct TempFile {
  std::string path;
  int fd = -1;
  bool committed = false;
  ~TempFile() {
    if (fd >= 0)
      ::close(fd);
    if (!committed && !path.empty())
      ::unlink(path.c_str());
  }
};

/// Buffered write() to a descriptor; remembers the first error.
class Output {
public:
  explicit Output(int fd) : fd_(fd) { buffer_.reserve(kChunkBytes); }

  unsigned char *reserve(size_t n) {
    if (buffer_.size() + n > kChunkBytes)
      flush();
    size_t old = buffer_.size();
    buffer_.resize(old + n);
    return buffer_.data() + old;
  }
  void append(std::string_view s) {
    for (size_t i = 0; i < s.size(); i += kChunkBytes) {
      size_t n = std::min(kChunkBytes, s.size() - i);
      std::memcpy(reserve(n), s.data() + i, n);
    }
  }
  bool flush() {
    const unsigned char *p = buffer_.data();
    size_t n = buffer_.size();
    while (n > 0 && error_ == 0) {
      ssize_t put = ::write(fd_, p, n);
      if (put < 0) {
        if (errno != EINTR)
          error_ = errno;
        continue;
      }
      p += put;
      n -= static_cast<size_t>(put);
    }
    buffer_.clear();
    return error_ == 0;
  }
  int error() const { return error_; }

private:
  int fd_;
  int error_ = 0;
  std::vector<unsigned char> buffer_;
};

/// writeSafetensors without the file name on messages; may throw std::bad_alloc.
std::string writeFile(const std::string &path,
                      const std::vector<std::pair<std::string, const Tensor *>> &tensors,
                      const std::map<std::string, std::string> &metadata) {
  // Validate everything before touching the file system.
  std::set<std::string_view> names;
  std::vector<uint64_t> offsets{0};
  for (const auto &[name, t] : tensors) {
    std::string who = "tensor " + quote(name) + ": ";
    if (!t)
      return who + "null tensor";
    if (name == "__metadata__")
      return who + "the name is reserved for the metadata";
    if (!isValidUtf8(name))
      return who + "the name is not valid UTF-8";
    if (!names.insert(name).second)
      return who + "duplicate tensor name";
    int size = dtypeSize(t->dtype);
    if (size <= 0)
      return who + "invalid dtype";
    uint64_t product = 1;
    bool empty = false;
    for (int64_t d : t->shape) {
      if (d < 0)
        return who + "negative dimension in shape " + typeString(t->dtype, t->shape);
      if (d == 0) {
        empty = true;
        continue;
      }
      if (product > kInt64Max / static_cast<uint64_t>(d))
        return who + "shape " + typeString(t->dtype, t->shape) + " has too many elements";
      product *= static_cast<uint64_t>(d);
    }
    uint64_t elements = empty ? 0 : product;
    if (t->data.size() != elements)
      return who + typeString(t->dtype, t->shape) + " needs " + std::to_string(elements) +
             " values but the tensor holds " + std::to_string(t->data.size());
    uint64_t bytes = elements * static_cast<uint64_t>(size); // cannot overflow: data exists
    if (bytes > kInt64Max - offsets.back())
      return "the tensors hold more than 2^63 bytes";
    offsets.push_back(offsets.back() + bytes);
  }
  for (const auto &[key, value] : metadata)
    if (!isValidUtf8(key) || !isValidUtf8(value))
      return "\"__metadata__\" key " + quote(key) + ": not valid UTF-8";

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto &[key, value] : metadata) {
      if (!first)
        header += ',';
      first = false;
      appendJsonString(header, key);
      header += ':';
      appendJsonString(header, value);
    }
    header += '}';
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor &t = *tensors[i].second;
    if (header.size() > 1)
      header += ',';
    appendJsonString(header, tensors[i].first);
    header += ":{\"dtype\":\"";
    header += dtypeName(t.dtype);
    header += "\",\"shape\":[";
    for (size_t d = 0; d < t.shape.size(); ++d)
      header += (d ? "," : "") + std::to_string(t.shape[d]);
    header += "],\"data_offsets\":[" + std::to_string(offsets[i]) + "," +
              std::to_string(offsets[i + 1]) + "]}";
  }
  header += '}';
  // The spec asks writers to pad the header with spaces to a multiple of 8, which aligns the
  // byte buffer.
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > kMaxHeaderSize)
    return "the header would be " + std::to_string(header.size()) +
           " bytes, more than readers accept (" + std::to_string(kMaxHeaderSize) + ")";

  // Create the temporary next to the target, so that rename() replaces it atomically. The
  // name is unique per process and call; O_EXCL makes a collision a retry, never a clobber.
  std::string dir, base;
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    dir = ".";
    base = path;
  } else {
    dir = slash == 0 ? "/" : path.substr(0, slash);
    base = path.substr(slash + 1);
  }
  if (base.empty() || base == "." || base == "..")
    return "the path names a directory, not a file";
  static std::atomic<uint64_t> counter{0};
  TempFile temp;
  for (int attempt = 0; temp.fd < 0; ++attempt) {
    // Keep the name within NAME_MAX whatever the target's length.
    std::string name = "." + base.substr(0, 128) + ".tmp." + std::to_string(::getpid()) + "." +
                       std::to_string(counter.fetch_add(1)) + "." +
                       std::to_string(static_cast<uint64_t>(std::time(nullptr)) % 1000000);
    std::string candidate = (dir == "/" ? "/" : dir + "/") + name;
    int fd = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      temp.path = candidate;
      temp.fd = fd;
    } else if (errno != EEXIST && errno != EINTR) {
      return "cannot create a temporary file in " + quote(dir) + ": " + errnoText(errno);
    } else if (attempt >= 100) {
      return "cannot create a temporary file in " + quote(dir) + ": too many name collisions";
    }
  }

  Output output(temp.fd);
  unsigned char sizeBytes[8];
  storeLE(sizeBytes, header.size(), 8);
  output.append(std::string_view(reinterpret_cast<char *>(sizeBytes), 8));
  output.append(header);
  for (const auto &[name, t] : tensors) {
    int size = dtypeSize(t->dtype);
    for (double v : t->data) {
      encode(t->dtype, v, output.reserve(static_cast<size_t>(size)));
      if (output.error())
        break;
    }
  }
  if (!output.flush())
    return "cannot write the temporary file " + quote(temp.path) + ": " +
           errnoText(output.error());
  // Sync before the rename: otherwise a crash could leave the new name on empty contents.
  if (::fsync(temp.fd) != 0)
    return "cannot sync the temporary file " + quote(temp.path) + ": " + errnoText(errno);
  int fd = temp.fd;
  temp.fd = -1;
  if (::close(fd) != 0)
    return "cannot close the temporary file " + quote(temp.path) + ": " + errnoText(errno);
  if (::rename(temp.path.c_str(), path.c_str()) != 0)
    return "cannot rename the temporary file " + quote(temp.path) + " over it: " +
           errnoText(errno);
  temp.committed = true;

  // Sync the directory so that the rename itself survives a crash. Some file systems cannot
  // sync directories (EINVAL); the rename has happened, so that is not a failure.
  int dirFd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd < 0)
    return "written, but cannot open directory " + quote(dir) + " to sync it: " +
           errnoText(errno);
  int rc = ::fsync(dirFd);
  int syncErrno = errno;
  ::close(dirFd);
  if (rc != 0 && syncErrno != EINVAL)
    return "written, but cannot sync directory " + quote(dir) + ": " + errnoText(syncErrno);
  return "";
}

} // namespace

bool readSafetensors(const std::string &path, TensorFile &out, std::string *error) {
  std::string err;
  try {
    err = readFile(path, out);
  } catch (const std::bad_alloc &) {
    err = "out of memory";
  } catch (const std::length_error &) {
    err = "out of memory";
  }
  if (err.empty())
    return true;
  if (error)
    *error = path + ": " + err;
  return false;
}

bool writeSafetensors(const std::string &path,
                      const std::vector<std::pair<std::string, const Tensor *>> &tensors,
                      const std::map<std::string, std::string> &metadata, std::string *error) {
  std::string err;
  try {
    err = writeFile(path, tensors, metadata);
  } catch (const std::bad_alloc &) {
    err = "out of memory";
  } catch (const std::length_error &) {
    err = "out of memory";
  }
  if (err.empty())
    return true;
  if (error)
    *error = path + ": " + err;
  return false;
}

} // namespace llamac
