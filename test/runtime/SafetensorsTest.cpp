//===- SafetensorsTest.cpp - safetensors reading, writing and rejection ------------===//
//
// Round trips through the writer and reader, the writer's exact bytes, a file assembled by
// hand from the specification, one test per malformation the reader must reject, and the
// writer's atomicity (a failed write leaves the old file and no temporary behind).
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Safetensors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/resource.h>

using namespace llamac;
namespace fs = std::filesystem;

namespace {

class SafetensorsTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "safetensors-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string path(const std::string &name) const { return dir_ + "/" + name; }

  static void writeBytes(const std::string &file, const std::string &bytes) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << file;
  }
  static std::string readBytes(const std::string &file) {
    std::ifstream in(file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  /// The names in the test directory, to check that no temporary is left behind.
  std::vector<std::string> listDir() const {
    std::vector<std::string> names;
    for (const auto &entry : fs::directory_iterator(dir_))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  /// The file's 8-byte header size, `header` verbatim (no padding) and then `data`.
  static std::string fileBytes(const std::string &header, const std::string &data = "") {
    std::string bytes;
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i)
      bytes += static_cast<char>((n >> (8 * i)) & 0xff);
    return bytes + header + data;
  }

  /// Writes `bytes`, reads them back and expects failure with every one of `needles` in the
  /// message, which must also name the file.
  void expectRejected(const std::string &bytes, const std::vector<std::string> &needles) {
    std::string file = path("bad.safetensors");
    writeBytes(file, bytes);
    TensorFile tf;
    tf.metadata["sentinel"] = "kept";
    std::string error;
    EXPECT_FALSE(readSafetensors(file, tf, &error))
        << "accepted: " << (bytes.size() > 8 ? bytes.substr(8) : bytes);
    EXPECT_EQ(error.rfind(file + ": ", 0), 0u) << error;
    for (const std::string &needle : needles)
      EXPECT_NE(error.find(needle), std::string::npos)
          << "message: " << error << "\nexpected to contain: " << needle;
    // A failed read leaves the output alone.
    EXPECT_EQ(tf.metadata.size(), 1u);
    EXPECT_TRUE(tf.tensors.empty());
  }
  void expectRejectedHeader(const std::string &header, const std::vector<std::string> &needles,
                            const std::string &data = "") {
    SCOPED_TRACE("header: " + header);
    expectRejected(fileBytes(header, data), needles);
  }

  std::string dir_;
};

/// Values equal, NaN equal to NaN, and zeros of the same sign.
void expectSameValues(const std::vector<double> &expected, const std::vector<double> &actual) {
  ASSERT_EQ(expected.size(), actual.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    if (std::isnan(expected[i])) {
      EXPECT_TRUE(std::isnan(actual[i])) << "element " << i;
    } else {
      EXPECT_EQ(expected[i], actual[i]) << "element " << i;
      EXPECT_EQ(std::signbit(expected[i]), std::signbit(actual[i])) << "element " << i;
    }
  }
}

Tensor makeTensor(DType t, std::vector<int64_t> shape, std::vector<double> values) {
  Tensor result(t, std::move(shape));
  result.data = std::move(values);
  return result;
}

const DType kAllDTypes[] = {DType::F64, DType::F32, DType::BF16,
                            DType::F16, DType::I64, DType::I32};

//===----------------------------------------------------------------------------------===//
// Round trips
//===----------------------------------------------------------------------------------===//

TEST_F(SafetensorsTest, RoundTripEveryDTypeWithScalarsAndEmptyTensors) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // Values each dtype represents exactly, extremes included.
  std::vector<Tensor> owned = {
      makeTensor(DType::F64, {2, 3}, {0.1, -1e300, 4.9e-324, -0.0, inf, nan}),
      makeTensor(DType::F32, {2, 3},
                 {1.5, -std::numeric_limits<float>::max(), std::ldexp(1, -149), -0.0, -inf, nan}),
      // The largest bf16, (2 - 2^-7) * 2^127, and the smallest subnormal.
      makeTensor(DType::BF16, {3, 2},
                 {1.0, -2.5, std::ldexp(255, 120), std::ldexp(1, -133), inf, nan}),
      makeTensor(DType::F16, {1, 6},
                 {65504, -std::ldexp(1, -14), std::ldexp(1, -24), -0.0, inf, nan}),
      makeTensor(DType::I64, {6}, {0, -1, 9007199254740992.0, -9007199254740992.0,
                                   -9223372036854775808.0, 123456789012}),
      makeTensor(DType::I32, {2, 1, 3}, {0, -1, 2147483647, -2147483648.0, 7, -7}),
  };
  std::vector<std::pair<std::string, const Tensor *>> list;
  for (const Tensor &t : owned)
    list.emplace_back(std::string("full.") + dtypeName(t.dtype), &t);
  std::vector<Tensor> scalars, empties;
  scalars.reserve(6);
  empties.reserve(12);
  for (DType t : kAllDTypes) {
    scalars.push_back(makeTensor(t, {}, {-3}));
    list.emplace_back(std::string("scalar.") + dtypeName(t), &scalars.back());
    empties.push_back(makeTensor(t, {0}, {}));
    list.emplace_back(std::string("empty.") + dtypeName(t), &empties.back());
    empties.push_back(makeTensor(t, {4, 0, 2}, {}));
    list.emplace_back(std::string("empty3.") + dtypeName(t), &empties.back());
  }
  std::map<std::string, std::string> metadata = {{"format", "pt"}, {"", ""}};

  std::string file = path("all.safetensors"), error;
  ASSERT_TRUE(writeSafetensors(file, list, metadata, &error)) << error;
  TensorFile tf;
  ASSERT_TRUE(readSafetensors(file, tf, &error)) << error;
  EXPECT_EQ(tf.metadata, metadata);
  // The writer lays tensors out in the given order, and the reader returns file order, which
  // puts each empty tensor (begin == end) before a tensor starting at the same offset.
  ASSERT_EQ(tf.tensors.size(), list.size());
  for (const auto &[name, expected] : list) {
    SCOPED_TRACE(name);
    const Tensor *t = tf.find(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, expected->dtype);
    EXPECT_EQ(t->shape, expected->shape);
    expectSameValues(expected->data, t->data);
  }
  EXPECT_EQ(tf.tensors.front().first, "full.F64");
  EXPECT_EQ(tf.tensors.back().first, "empty3.I32");
  EXPECT_EQ(tf.find("missing"), nullptr);
}

TEST_F(SafetensorsTest, RoundTripRoundsToTheDType) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  // Values that do not fit their dtype: the file holds the rounded value.
  Tensor bf16 = makeTensor(DType::BF16, {7},
                           {1.0 + std::ldexp(1, -8),      // tie, rounds to even 1.0
                            1.0 + 3 * std::ldexp(1, -8),  // tie, rounds to even 1 + 2^-6
                            1.0 + std::ldexp(1, -8) + std::ldexp(1, -16), // above tie: up
                            0.1, -nan, 3.4e38, 1e-45});
  Tensor f16 = makeTensor(DType::F16, {8},
                          {1.0 + std::ldexp(1, -11), 1.0 + 3 * std::ldexp(1, -11), 65519, 65520,
                           -1e6, 4e-8, 2.9e-8, 0.1});
  Tensor f32 = makeTensor(DType::F32, {3}, {0.1, 1e39, 1e-50});
  Tensor i64 = makeTensor(DType::I64, {3}, {2.7, -2.7, -0.5});
  Tensor i32 = makeTensor(DType::I32, {4}, {2.7, -2.7, 2147483648.0, nan});
  std::string file = path("round.safetensors"), error;
  ASSERT_TRUE(writeSafetensors(
      file, {{"bf16", &bf16}, {"f16", &f16}, {"f32", &f32}, {"i64", &i64}, {"i32", &i32}}, {},
      &error))
      << error;
  TensorFile tf;
  ASSERT_TRUE(readSafetensors(file, tf, &error)) << error;

  expectSameValues({1.0, 1.0 + std::ldexp(1, -6), 1.0 + std::ldexp(1, -7), 0.10009765625, nan,
                    inf, 0.0},
                   tf.find("bf16")->data);
  expectSameValues({1.0, 1.0 + std::ldexp(1, -9), 65504, inf, -inf, std::ldexp(1, -24), 0.0,
                    0.0999755859375},
                   tf.find("f16")->data);
  expectSameValues({static_cast<float>(0.1), inf, 0.0}, tf.find("f32")->data);
  expectSameValues({2, -2, 0}, tf.find("i64")->data);
  // Integers truncate toward zero and wrap like integer arithmetic; NaN becomes 0.
  expectSameValues({2, -2, -2147483648.0, 0}, tf.find("i32")->data);
  // And the reader's values are exactly roundTo's.
  for (const auto &[name, t] : tf.tensors) {
    const Tensor &original = name == "bf16"  ? bf16
                             : name == "f16" ? f16
                             : name == "f32" ? f32
                             : name == "i64" ? i64
                                             : i32;
    std::vector<double> rounded;
    for (double v : original.data)
      rounded.push_back(roundTo(original.dtype, v));
    SCOPED_TRACE(name);
    expectSameValues(rounded, t.data);
  }
}

TEST_F(SafetensorsTest, RoundTripTensorsLargerThanAnIOChunk) {
  // Over 1 MiB each, so both the writer's and the reader's buffers wrap around.
  Tensor f32(DType::F32, {300001});
  for (size_t i = 0; i < f32.data.size(); ++i)
    f32.data[i] = static_cast<double>(i) * 0.25 - 1000;
  Tensor bf16(DType::BF16, {3, 250001});
  for (size_t i = 0; i < bf16.data.size(); ++i)
    bf16.data[i] = roundTo(DType::BF16, static_cast<double>(i % 1000) - 500);
  std::string file = path("big.safetensors"), error;
  ASSERT_TRUE(writeSafetensors(file, {{"a", &f32}, {"b", &bf16}}, {}, &error)) << error;
  TensorFile tf;
  ASSERT_TRUE(readSafetensors(file, tf, &error)) << error;
  ASSERT_EQ(tf.tensors.size(), 2u);
  EXPECT_EQ(tf.tensors[0].second.data, f32.data);
  EXPECT_EQ(tf.tensors[1].second.data, bf16.data);
}

TEST_F(SafetensorsTest, RoundTripNamesAndMetadataNeedingEscapes) {
  Tensor t = makeTensor(DType::F32, {1}, {1});
  std::string odd = "q\"uote\\back/slash\ttab\nnl\x01\x1f caf\xc3\xa9 \xf0\x9f\x98\x80";
  std::map<std::string, std::string> metadata = {{odd, odd}, {"k", "\x7f"}};
  std::string file = path("names.safetensors"), error;
  ASSERT_TRUE(writeSafetensors(file, {{odd, &t}, {"", &t}}, metadata, &error)) << error;
  TensorFile tf;
  ASSERT_TRUE(readSafetensors(file, tf, &error)) << error;
  EXPECT_EQ(tf.metadata, metadata);
  ASSERT_EQ(tf.tensors.size(), 2u);
  EXPECT_EQ(tf.tensors[0].first, odd);
  EXPECT_EQ(tf.tensors[1].first, "");
}

//===----------------------------------------------------------------------------------===//
// The writer's bytes
//===----------------------------------------------------------------------------------===//

TEST_F(SafetensorsTest, WriterProducesExactBytes) {
  Tensor b = makeTensor(DType::F32, {2}, {1.0, -2.0});
  Tensor a = makeTensor(DType::I32, {}, {-1});
  std::string file = path("exact.safetensors"), error;
  // Written in the given order, not sorted by name.
  ASSERT_TRUE(writeSafetensors(file, {{"b", &b}, {"a", &a}}, {{"format", "pt"}}, &error))
      << error;
  std::string json = R"({"__metadata__":{"format":"pt"},)"
                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("a":{"dtype":"I32","shape":[],"data_offsets":[8,12]}})";
  ASSERT_EQ(json.size(), 138u);
  std::string expected = std::string("\x90\0\0\0\0\0\0\0", 8) // 144 = 138 + 6 spaces
                         + json + "      " +
                         std::string("\x00\x00\x80\x3f"  // 1.0f
                                     "\x00\x00\x00\xc0"  // -2.0f
                                     "\xff\xff\xff\xff", // -1
                                     12);
  EXPECT_EQ(readBytes(file), expected);
}

TEST_F(SafetensorsTest, WriterEncodesEveryDTypeLittleEndian) {
  Tensor d = makeTensor(DType::F64, {1}, {1.0});
  Tensor h = makeTensor(DType::F16, {2}, {1.0, -0.5});
  Tensor g = makeTensor(DType::BF16, {1}, {1.0});
  Tensor l = makeTensor(DType::I64, {1}, {-2});
  Tensor z = makeTensor(DType::F32, {0, 2}, {});
  std::string file = path("dtypes.safetensors"), error;
  ASSERT_TRUE(
      writeSafetensors(file, {{"d", &d}, {"h", &h}, {"g", &g}, {"l", &l}, {"z", &z}}, {}, &error))
      << error;
  // Without metadata there is no "__metadata__" key.
  std::string json = R"({"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},)"
                     R"("h":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},)"
                     R"("g":{"dtype":"BF16","shape":[1],"data_offsets":[12,14]},)"
                     R"("l":{"dtype":"I64","shape":[1],"data_offsets":[14,22]},)"
                     R"("z":{"dtype":"F32","shape":[0,2],"data_offsets":[22,22]}})";
  ASSERT_EQ(json.size(), 276u);
  std::string expected = std::string("\x18\x01\0\0\0\0\0\0", 8) // 280 = 276 + 4 spaces
                         + json + "    " +
                         std::string("\x00\x00\x00\x00\x00\x00\xf0\x3f" // 1.0
                                     "\x00\x3c\x00\xb8"                 // f16 1.0, -0.5
                                     "\x80\x3f"                         // bf16 1.0
                                     "\xfe\xff\xff\xff\xff\xff\xff\xff", // -2
                                     22);
  EXPECT_EQ(readBytes(file), expected);
}

TEST_F(SafetensorsTest, WriterPadsAnEmptyFileToEightBytes) {
  std::string file = path("empty.safetensors"), error;
  ASSERT_TRUE(writeSafetensors(file, {}, {}, &error)) << error;
  EXPECT_EQ(readBytes(file), std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
  TensorFile tf;
  ASSERT_TRUE(readSafetensors(file, tf, &error)) << error;
  EXPECT_TRUE(tf.tensors.empty());
  EXPECT_TRUE(tf.metadata.empty());
}

//===----------------------------------------------------------------------------------===//
// A file made by hand
//===----------------------------------------------------------------------------------===//

TEST_F(SafetensorsTest, ReadsAFileBuiltByHandFromTheSpec) {
  // Keys out of offset order, fields out of the usual order, JSON whitespace, escapes
  // (including a surrogate pair), an empty tensor sharing its offset with the next, a header
  // size that is not a multiple of 8, and "-0" as a dimension.
  std::string header = "{\"__metadata__\" : {\"format\": \"pt\", "
                       "\"note\": \"caf\\u00e9 \\\"q\\\" \\ud83d\\ude00\\/\"},\n"
                       "\t\"w\": {\"shape\": [2], \"dtype\": \"F16\", "
                       "\"data_offsets\": [8, 12]},\r\n"
                       " \"x\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                       "\"e\":{\"dtype\":\"I64\",\"shape\":[-0,3],\"data_offsets\":[12,12]},"
                       "\"i\\u00E9\":{\"dtype\":\"I32\",\"shape\":[1,1],\"data_offsets\":[4,8]},"
                       "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]},"
                       "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[16,24]}}  ";
  ASSERT_NE(header.size() % 8, 0u);
  std::string bytes;
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += std::string(6, '\0');
  bytes += header;
  const unsigned char data[] = {
      0x00, 0x00, 0x20, 0x40,                         // x: F32 2.5
      0xf9, 0xff, 0xff, 0xff,                         // i\u00e9: I32 -7
      0x00, 0x3e, 0xff, 0xfb,                         // w: F16 1.5, -65504
      0x40, 0x40, 0x20, 0xbe,                         // b: BF16 3.0, -0.15625
      0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0xd5, 0x3f, // d: F64 1/3
  };
  bytes.append(reinterpret_cast<const char *>(data), sizeof data);
  std::string file = path("hand.safetensors"), error;
  writeBytes(file, bytes);

  TensorFile tf;
  ASSERT_TRUE(readSafetensors(file, tf, &error)) << error;
  std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"note", "caf\xc3\xa9 \"q\" \xf0\x9f\x98\x80/"}};
  EXPECT_EQ(tf.metadata, metadata);
  std::vector<std::string> order;
  for (const auto &entry : tf.tensors)
    order.push_back(entry.first);
  EXPECT_EQ(order, (std::vector<std::string>{"x", "i\xc3\xa9", "w", "e", "b", "d"}));

  const Tensor *x = tf.find("x");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->dtype, DType::F32);
  EXPECT_TRUE(x->shape.empty());
  EXPECT_EQ(x->data, std::vector<double>{2.5});
  const Tensor *i = tf.find("i\xc3\xa9");
  ASSERT_NE(i, nullptr);
  EXPECT_EQ(i->dtype, DType::I32);
  EXPECT_EQ(i->shape, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(i->data, std::vector<double>{-7});
  const Tensor *w = tf.find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, DType::F16);
  EXPECT_EQ(w->data, (std::vector<double>{1.5, -65504}));
  const Tensor *e = tf.find("e");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dtype, DType::I64);
  EXPECT_EQ(e->shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(e->data.empty());
  const Tensor *b = tf.find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::BF16);
  EXPECT_EQ(b->data, (std::vector<double>{3.0, -0.15625}));
  const Tensor *d = tf.find("d");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->dtype, DType::F64);
  EXPECT_EQ(d->data, std::vector<double>{1.0 / 3.0});
}

//===----------------------------------------------------------------------------------===//
// Rejections
//===----------------------------------------------------------------------------------===//

TEST_F(SafetensorsTest, RejectsAMissingFile) {
  std::string file = path("absent.safetensors"), error;
  TensorFile tf;
  EXPECT_FALSE(readSafetensors(file, tf, &error));
  EXPECT_EQ(error, file + ": cannot open the file: No such file or directory");
  // A null error pointer is allowed.
  EXPECT_FALSE(readSafetensors(file, tf, nullptr));
}

TEST_F(SafetensorsTest, RejectsADirectory) {
  std::string error;
  TensorFile tf;
  EXPECT_FALSE(readSafetensors(dir_, tf, &error));
  EXPECT_EQ(error, dir_ + ": not a regular file");
}

TEST_F(SafetensorsTest, RejectsAFileShorterThanEightBytes) {
  expectRejected("", {"the file is 0 bytes, too short for the 8-byte header size"});
  expectRejected(std::string("\x02\0\0\0\0", 5),
                 {"the file is 5 bytes, too short for the 8-byte header size"});
}

TEST_F(SafetensorsTest, RejectsAHeaderSizeLargerThanTheFile) {
  expectRejected(std::string("\xe8\x03\0\0\0\0\0\0{}", 10),
                 {"the header size 1000 is larger than the rest of the 10-byte file"});
  expectRejected(std::string("\x01\0\0\0\0\0\0\0", 8),
                 {"the header size 1 is larger than the rest of the 8-byte file"});
}

TEST_F(SafetensorsTest, RejectsAHeaderSizeOverTheLimit) {
  expectRejected(std::string("\x01\xe1\xf5\x05\0\0\0\0{}", 10), // 100000001
                 {"the header size 100000001 exceeds the limit of 100000000 bytes"});
  // 2^64 - 1: adding the 8 bytes of the size itself would overflow.
  expectRejected(std::string(8, '\xff') + "{}",
                 {"the header size 18446744073709551615 exceeds the limit"});
}

TEST_F(SafetensorsTest, RejectsAHeaderThatIsNotValidJson) {
  const std::string deep = "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  const std::string veryDeep = std::string(200000, '[');
  const std::vector<std::string> headers = {
      "",
      "{",
      "{\"a\"}",
      "{\"a\":}",
      "{\"a\":1,}",
      "{,}",
      "{'a':1}",
      "{a:1}",
      "{\"a\":01}",
      "{\"a\":1.}",
      "{\"a\":1e}",
      "{\"a\":-}",
      "{\"a\":+1}",
      "{\"a\":.5}",
      "{\"a\":tru}",
      "{\"a\":nul}",
      "{\"a\":[1,]}",
      "{\"a\":[1 2]}",
      "{\"a\" 1}",
      "{\"a",
      "{\"a\":\"x",
      "{\"a\":\"\\x\"}",
      "{\"a\":\"\\u12\"}",
      "{\"a\":\"\\u12g4\"}",
      "{\"a\":\"\\ud800\"}",
      "{\"a\":\"\\ud800\\u0041\"}",
      "{\"a\":\"\\udc00\"}",
      "{\"a\":\"\\",
      std::string("{\"a\":\"\x01\"}"),
      std::string("{\"a\":\"\n\"}"),
      std::string("{\"a\":\"\xff\"}"),
      std::string("{\"a\":\"\xc0\x80\"}"),         // overlong NUL
      std::string("{\"a\":\"\xed\xa0\x80\"}"),     // encoded surrogate
      std::string("{\"a\":\"\xf4\x90\x80\x80\"}"), // above U+10FFFF
      std::string("{\"a\":\"\xe2\x82\"}"),         // truncated sequence
      "{} x",
      "{}{}",
      std::string("{}\0\0\0\0\0\0", 8), // padding must be whitespace, not NULs
      "\xef\xbb\xbf{}",                   // a byte order mark
      deep,
      veryDeep,
  };
  for (const std::string &header : headers)
    expectRejectedHeader(header, {"the header is not valid JSON: ", " at header byte "});
  // The message says what is wrong and where.
  expectRejectedHeader("{\"a\":1,}",
                       {"the header is not valid JSON: expected a string but found '}' at "
                        "header byte 7"});
  expectRejectedHeader("{\"a\":\"\\ud800\"}", {"unpaired high surrogate"});
  expectRejectedHeader(std::string("{\"a\":\"\xff\"}"), {"invalid UTF-8 in a string"});
  expectRejectedHeader(deep, {"nested more than 64 deep"});
}

TEST_F(SafetensorsTest, RejectsAHeaderThatIsNotAnObject) {
  expectRejectedHeader("[]", {"the header is not a JSON object but an array"});
  expectRejectedHeader("\"x\"", {"the header is not a JSON object but a string"});
  expectRejectedHeader("12", {"the header is not a JSON object but a number"});
  expectRejectedHeader("null", {"the header is not a JSON object but null"});
  expectRejectedHeader("true", {"the header is not a JSON object but a boolean"});
  // The spec requires the header to begin with '{'; only trailing padding is allowed.
  expectRejectedHeader(" {}", {"the header must begin with '{'"});
}

TEST_F(SafetensorsTest, RejectsDuplicateKeys) {
  const std::string entry = R"({"dtype":"F32","shape":[0],"data_offsets":[0,0]})";
  expectRejectedHeader("{\"a\":" + entry + ",\"a\":" + entry + "}",
                       {"the header has a duplicate key 'a'"});
  // Keys compare after unescaping.
  expectRejectedHeader("{\"a\":" + entry + ",\"\\u0061\":" + entry + "}",
                       {"the header has a duplicate key 'a'"});
  expectRejectedHeader(R"({"__metadata__":{},"__metadata__":{}})",
                       {"the header has a duplicate key '__metadata__'"});
  expectRejectedHeader(R"({"__metadata__":{"k":"1","k":"2"}})",
                       {"\"__metadata__\" has a duplicate key 'k'"});
  expectRejectedHeader(R"({"a":{"dtype":"F32","dtype":"F32","shape":[0],"data_offsets":[0,0]}})",
                       {"tensor 'a': duplicate key \"dtype\""});
  expectRejectedHeader(R"({"a":{"dtype":"F32","shape":[0],"shape":[0],"data_offsets":[0,0]}})",
                       {"tensor 'a': duplicate key \"shape\""});
  expectRejectedHeader(
      R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"data_offsets":[0,0]}})",
      {"tensor 'a': duplicate key \"data_offsets\""});
}

TEST_F(SafetensorsTest, RejectsAnEntryMissingDtype) {
  expectRejectedHeader(R"({"a":{"shape":[0],"data_offsets":[0,0]}})",
                       {"tensor 'a': missing \"dtype\""});
}

TEST_F(SafetensorsTest, RejectsAnEntryMissingShape) {
  expectRejectedHeader(R"({"a":{"dtype":"F32","data_offsets":[0,0]}})",
                       {"tensor 'a': missing \"shape\""});
}

TEST_F(SafetensorsTest, RejectsAnEntryMissingDataOffsets) {
  expectRejectedHeader(R"({"a":{"dtype":"F32","shape":[0]}})",
                       {"tensor 'a': missing \"data_offsets\""});
  expectRejectedHeader(R"({"a":{}})", {"tensor 'a': missing \"dtype\""});
}

TEST_F(SafetensorsTest, RejectsWrongJsonTypes) {
  struct Case {
    const char *header;
    const char *message;
  };
  const Case cases[] = {
      {R"({"a":5})", "tensor 'a': expected an object with \"dtype\", \"shape\" and "
                     "\"data_offsets\", but it is a number"},
      {R"({"a":[]})", "tensor 'a': expected an object"},
      {R"({"a":{"dtype":5,"shape":[0],"data_offsets":[0,0]}})",
       "tensor 'a': \"dtype\" must be a string, but it is a number"},
      {R"({"a":{"dtype":null,"shape":[0],"data_offsets":[0,0]}})",
       "tensor 'a': \"dtype\" must be a string, but it is null"},
      {R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,0]}})",
       "tensor 'a': \"shape\" must be an array of integers, but it is a string"},
      {R"({"a":{"dtype":"F32","shape":{},"data_offsets":[0,0]}})",
       "tensor 'a': \"shape\" must be an array of integers, but it is an object"},
      {R"({"a":{"dtype":"F32","shape":[1,"2"],"data_offsets":[0,0]}})",
       "tensor 'a': \"shape\" must be an array of integers, but it holds a string"},
      {R"({"a":{"dtype":"F32","shape":[[1]],"data_offsets":[0,0]}})",
       "tensor 'a': \"shape\" must be an array of integers, but it holds an array"},
      {R"({"a":{"dtype":"F32","shape":[true],"data_offsets":[0,0]}})",
       "tensor 'a': \"shape\" must be an array of integers, but it holds a boolean"},
      {R"({"a":{"dtype":"F32","shape":[0],"data_offsets":0}})",
       "tensor 'a': \"data_offsets\" must be an array of two integers [begin, end], but it is a "
       "number"},
      {R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[]}})",
       "tensor 'a': \"data_offsets\" must be an array of two integers [begin, end], but it has 0"},
      {R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0]}})", "but it has 1"},
      {R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0,0]}})", "but it has more than two"},
      {R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,null]}})", "but it holds null"},
      {R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"extra":1}})",
       "tensor 'a': unknown key 'extra'"},
      {R"({"__metadata__":[]})",
       "\"__metadata__\" must be an object mapping strings to strings, but it is an array"},
      {R"({"__metadata__":null})", "\"__metadata__\" must be an object"},
      {R"({"__metadata__":{"k":1}})",
       "\"__metadata__\" key 'k' must map to a string, but it maps to a number"},
      {R"({"__metadata__":{"k":{"x":"y"}}})", "key 'k' must map to a string, but it maps to an "
                                              "object"},
  };
  for (const Case &c : cases)
    expectRejectedHeader(c.header, {c.message});
}

TEST_F(SafetensorsTest, RejectsUnsupportedDTypes) {
  for (const char *dtype : {"U8", "BOOL", "F8_E4M3", "I8", "U64", "f32", ""}) {
    std::string header = std::string(R"({"x":{"dtype":")") + dtype +
                         R"(","shape":[0],"data_offsets":[0,0]}})";
    expectRejectedHeader(header, {std::string("unsupported dtype '") + dtype +
                                  "' of tensor 'x' (supported: F64, F32, BF16, F16, I64, I32)"});
  }
  std::string file = path("bad.safetensors"), error;
  writeBytes(file, fileBytes(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "a"));
  TensorFile tf;
  EXPECT_FALSE(readSafetensors(file, tf, &error));
  EXPECT_EQ(error, file + ": unsupported dtype 'U8' of tensor 'x' (supported: F64, F32, BF16, "
                          "F16, I64, I32)");
}

TEST_F(SafetensorsTest, RejectsNegativeShapeDimensions) {
  expectRejectedHeader(R"({"t":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,0]}})",
                       {"tensor 't': shape dimension -1 is negative"});
  expectRejectedHeader(
      R"({"t":{"dtype":"F32","shape":[-99999999999999999999999],"data_offsets":[0,0]}})",
      {"tensor 't': shape dimension -99999999999999999999999 is negative"});
}

TEST_F(SafetensorsTest, RejectsNonIntegerShapeDimensions) {
  for (const char *dim : {"2.5", "2.0", "1e2", "1E+0", "0.0"})
    expectRejectedHeader(std::string(R"({"t":{"dtype":"F32","shape":[)") + dim +
                             R"(],"data_offsets":[0,0]}})",
                         {std::string("tensor 't': shape dimension ") + dim +
                          " is not an integer"});
  // Integers that do not fit are rejected too, not wrapped.
  expectRejectedHeader(
      R"({"t":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,0]}})",
      {"tensor 't': shape dimension 9223372036854775808 is too large"});
  expectRejectedHeader(
      R"({"t":{"dtype":"F32","shape":[99999999999999999999999],"data_offsets":[0,0]}})",
      {"shape dimension 99999999999999999999999 is too large"});
}

TEST_F(SafetensorsTest, RejectsBadDataOffsetNumbers) {
  expectRejectedHeader(R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[-4,0]}})",
                       {"tensor 't': data_offsets value -4 is negative"});
  expectRejectedHeader(R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[0,0.5]}})",
                       {"tensor 't': data_offsets value 0.5 is not an integer"});
  expectRejectedHeader(
      R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[0,18446744073709551616]}})",
      {"tensor 't': data_offsets value 18446744073709551616 is too large"});
}

TEST_F(SafetensorsTest, RejectsShapesWhoseSizeOverflows) {
  expectRejectedHeader(
      R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})",
      {"tensor 't': shape F32[4294967296x4294967296] has too many elements"});
  // Empty, but the other dimensions' product would still overflow the Tensor's strides.
  expectRejectedHeader(
      R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})",
      {"has too many elements"});
  // The elements fit, their bytes do not.
  expectRejectedHeader(
      R"({"t":{"dtype":"I64","shape":[2305843009213693952],"data_offsets":[0,0]}})",
      {"tensor 't': shape I64[2305843009213693952] has too many elements"});
  // A large empty tensor is fine.
  std::string file = path("ok.safetensors"), error;
  writeBytes(file, fileBytes(R"({"t":{"dtype":"F32","shape":[0,4611686018427387904],)"
                             R"("data_offsets":[0,0]}})"));
  TensorFile tf;
  EXPECT_TRUE(readSafetensors(file, tf, &error)) << error;
}

TEST_F(SafetensorsTest, RejectsBeginAfterEnd) {
  expectRejectedHeader(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})",
                       {"tensor 't': data_offsets [8, 4] begin after end"},
                       std::string(8, '\0'));
}

TEST_F(SafetensorsTest, RejectsAnEndBeyondTheBuffer) {
  expectRejectedHeader(
      R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
      {"tensor 't': data_offsets [0, 16] end beyond the byte buffer, which holds 8 bytes"},
      std::string(8, '\0'));
  expectRejectedHeader(
      R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[18446744073709551615,)"
      R"(18446744073709551615]}})",
      {"end beyond the byte buffer, which holds 0 bytes"});
}

TEST_F(SafetensorsTest, RejectsAByteLengthThatDoesNotMatchTheShape) {
  std::string file = path("model.safetensors"), error;
  writeBytes(file, fileBytes(R"({"layers.0.wq":{"dtype":"F32","shape":[5,6],)"
                             R"("data_offsets":[0,100]}})",
                             std::string(100, '\0')));
  TensorFile tf;
  EXPECT_FALSE(readSafetensors(file, tf, &error));
  EXPECT_EQ(error, file + ": tensor 'layers.0.wq': data_offsets [0, 100] hold 100 bytes but "
                          "F32[5x6] needs 120");
  expectRejectedHeader(R"({"s":{"dtype":"BF16","shape":[],"data_offsets":[0,4]}})",
                       {"tensor 's': data_offsets [0, 4] hold 4 bytes but BF16[] needs 2"},
                       std::string(4, '\0'));
  expectRejectedHeader(R"({"z":{"dtype":"I64","shape":[2,0],"data_offsets":[0,8]}})",
                       {"tensor 'z': data_offsets [0, 8] hold 8 bytes but I64[2x0] needs 0"},
                       std::string(8, '\0'));
}

TEST_F(SafetensorsTest, RejectsOverlappingTensors) {
  expectRejectedHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                       {"tensor 'b': data_offsets [4, 12] overlap tensor 'a' at [0, 8]"},
                       std::string(12, '\0'));
  // The same bytes claimed twice.
  expectRejectedHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})",
                       {"tensor 'b': data_offsets [0, 4] overlap tensor 'a' at [0, 4]"},
                       std::string(4, '\0'));
  // An empty tensor inside another's bytes.
  expectRejectedHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                       {"tensor 'e': data_offsets [4, 4] overlap tensor 'a' at [0, 8]"},
                       std::string(8, '\0'));
}

TEST_F(SafetensorsTest, RejectsHolesInTheBuffer) {
  expectRejectedHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                       {"the byte buffer has a hole: no tensor holds bytes 4 to 8 (tensor 'b' "
                        "begins at 8)"},
                       std::string(12, '\0'));
  expectRejectedHeader(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                       {"no tensor holds bytes 0 to 4"}, std::string(8, '\0'));
}

TEST_F(SafetensorsTest, RejectsTrailingBytes) {
  expectRejectedHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                       {"the byte buffer has 3 trailing bytes after the last tensor (the tensors "
                        "end at byte 4 of 7)"},
                       std::string(7, '\0'));
  expectRejectedHeader("{}", {"the byte buffer has 1 trailing bytes"}, "x");
}

TEST_F(SafetensorsTest, MangledFilesNeverCrashTheReader) {
  // Every truncation and many single-byte corruptions of a valid file: the reader must either
  // accept or reject each with a message (and, under the sanitizers, never read out of bounds).
  Tensor a = makeTensor(DType::BF16, {2, 2}, {1, 2, 3, 4});
  Tensor b = makeTensor(DType::I64, {1}, {5});
  std::string good = path("good.safetensors"), error;
  ASSERT_TRUE(writeSafetensors(good, {{"a", &a}, {"b", &b}}, {{"k", "v"}}, &error)) << error;
  const std::string bytes = readBytes(good);
  std::string file = path("mangled.safetensors");
  int accepted = 0, rejected = 0;
  auto attempt = [&](const std::string &mangled) {
    writeBytes(file, mangled);
    TensorFile tf;
    std::string message;
    if (readSafetensors(file, tf, &message)) {
      ++accepted;
    } else {
      ++rejected;
      EXPECT_EQ(message.rfind(file + ": ", 0), 0u) << message;
    }
  };
  for (size_t n = 0; n < bytes.size(); ++n)
    attempt(bytes.substr(0, n));
  for (size_t i = 0; i < bytes.size(); ++i)
    for (unsigned char c : {0x00, 0x01, 0x22, 0x2c, 0x2d, 0x30, 0x39, 0x5b, 0x5d, 0x5c, 0x7b,
                            0x7d, 0x80, 0xff}) {
      std::string mangled = bytes;
      mangled[i] = static_cast<char>(c);
      attempt(mangled);
    }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(accepted, 0); // e.g. changed tensor bytes
}

//===----------------------------------------------------------------------------------===//
// Writing atomically
//===----------------------------------------------------------------------------------===//

TEST_F(SafetensorsTest, WritingIntoAMissingDirectoryFails) {
  Tensor t = makeTensor(DType::F32, {1}, {1});
  std::string file = path("no/such/dir/x.safetensors"), error;
  EXPECT_FALSE(writeSafetensors(file, {{"t", &t}}, {}, &error));
  EXPECT_EQ(error.rfind(file + ": cannot create a temporary file in '" + path("no/such/dir") +
                            "': No such file or directory",
                        0),
            0u)
      << error;
  EXPECT_TRUE(listDir().empty());
}

TEST_F(SafetensorsTest, AFailedWriteLeavesTheExistingFileUnchanged) {
  std::string file = path("model.safetensors"), error;
  const std::string old = "the previous contents";
  writeBytes(file, old);
  // A file size limit makes write() fail part way through the temporary (EFBIG); SIGXFSZ
  // would otherwise kill the process.
  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct rlimit limited = saved;
  limited.rlim_cur = 64 * 1024;
  void (*oldHandler)(int) = signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  Tensor big(DType::F32, {1 << 20}, 1.0);
  bool ok = writeSafetensors(file, {{"big", &big}}, {}, &error);
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, oldHandler);

  EXPECT_FALSE(ok);
  EXPECT_EQ(error.rfind(file + ": cannot write the temporary file '", 0), 0u) << error;
  EXPECT_NE(error.find("File too large"), std::string::npos) << error;
  EXPECT_EQ(readBytes(file), old);
  EXPECT_EQ(listDir(), std::vector<std::string>{"model.safetensors"});
}

TEST_F(SafetensorsTest, InvalidInputLeavesTheExistingFileUnchanged) {
  std::string file = path("model.safetensors");
  const std::string old = "the previous contents";
  writeBytes(file, old);
  Tensor good = makeTensor(DType::F32, {2}, {1, 2});
  Tensor shortData = makeTensor(DType::F32, {2, 3}, {1, 2, 3, 4, 5});
  Tensor negative;
  negative.shape = {-1};
  struct Case {
    std::vector<std::pair<std::string, const Tensor *>> tensors;
    std::map<std::string, std::string> metadata;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{{"w", &shortData}}, {}, "tensor 'w': F32[2x3] needs 6 values but the tensor holds 5"},
      {{{"w", &good}, {"w", &good}}, {}, "tensor 'w': duplicate tensor name"},
      {{{"__metadata__", &good}},
       {},
       "tensor '__metadata__': the name is reserved for the metadata"},
      {{{"n", nullptr}}, {}, "tensor 'n': null tensor"},
      {{{"neg", &negative}}, {}, "tensor 'neg': negative dimension in shape F32[-1]"},
      {{{"bad\xff", &good}}, {}, "tensor 'bad\xff': the name is not valid UTF-8"},
      {{{"w", &good}}, {{"k", "\xc0\x80"}}, "\"__metadata__\" key 'k': not valid UTF-8"},
  };
  for (const Case &c : cases) {
    std::string error;
    EXPECT_FALSE(writeSafetensors(file, c.tensors, c.metadata, &error));
    EXPECT_EQ(error, file + ": " + c.message);
    EXPECT_EQ(readBytes(file), old);
    EXPECT_EQ(listDir(), std::vector<std::string>{"model.safetensors"});
  }
}

TEST_F(SafetensorsTest, AFailedRenameRemovesTheTemporary) {
  // The target is a non-empty directory, so everything works up to rename(), which fails.
  std::string target = path("target");
  ASSERT_TRUE(fs::create_directory(target));
  writeBytes(target + "/inside", "x");
  Tensor t = makeTensor(DType::F32, {1}, {1});
  std::string error;
  EXPECT_FALSE(writeSafetensors(target, {{"t", &t}}, {}, &error));
  EXPECT_EQ(error.rfind(target + ": cannot rename the temporary file '", 0), 0u) << error;
  EXPECT_EQ(listDir(), std::vector<std::string>{"target"});
  EXPECT_EQ(readBytes(target + "/inside"), "x");
}

TEST_F(SafetensorsTest, APathEndingInASlashIsRejected) {
  std::string error;
  EXPECT_FALSE(writeSafetensors(dir_ + "/", {}, {}, &error));
  EXPECT_EQ(error, dir_ + "/: the path names a directory, not a file");
}

TEST_F(SafetensorsTest, WritingReplacesAnExistingFile) {
  std::string file = path("model.safetensors"), error;
  writeBytes(file, "old");
  Tensor t = makeTensor(DType::F16, {1}, {0.5});
  ASSERT_TRUE(writeSafetensors(file, {{"t", &t}}, {}, &error)) << error;
  TensorFile tf;
  ASSERT_TRUE(readSafetensors(file, tf, &error)) << error;
  ASSERT_NE(tf.find("t"), nullptr);
  EXPECT_EQ(tf.find("t")->data, std::vector<double>{0.5});
  EXPECT_EQ(listDir(), std::vector<std::string>{"model.safetensors"});
}

} // namespace
