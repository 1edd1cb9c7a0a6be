//===- EventsTest.cpp - CRC32C, TFRecord event files and the metrics CSV ------------===//
//
// CRC32C against published vectors (and the hardware path against the portable one); event
// files read back byte by byte here, with the framing and both CRCs of every record checked
// independently of the reader, the Event protos parsed and compared; corrupt and truncated
// files rejected with the record named; the CSV writer's header, appends, quoting and
// refusal to append to a file that is not its own.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Checksum.h"
#include "runtime/Events.h"
#include "runtime/proto/event.pb.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace llamac;
namespace fs = std::filesystem;

namespace {

void writeBytes(const std::string &file, const std::string &bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << file;
}

std::string readBytes(const std::string &file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

uint64_t le(const std::string &s, size_t off, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(s[off + i])) << (8 * i);
  return v;
}

/// TFRecord's mask, written out here rather than taken from the header under test.
uint32_t mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

/// Splits a TFRecord file by hand, checking both CRCs of every record.
std::vector<std::string> splitRecords(const std::string &bytes) {
  std::vector<std::string> records;
  size_t off = 0;
  while (off < bytes.size()) {
    EXPECT_GE(bytes.size() - off, 16u) << "record at " << off;
    if (bytes.size() - off < 16)
      break;
    uint64_t length = le(bytes, off, 8);
    EXPECT_EQ(le(bytes, off + 8, 4), mask(crc32c(bytes.substr(off, 8)))) << "length CRC";
    EXPECT_LE(off + 12 + length + 4, bytes.size());
    std::string data = bytes.substr(off + 12, static_cast<size_t>(length));
    EXPECT_EQ(le(bytes, off + 12 + length, 4), mask(crc32c(data))) << "data CRC";
    records.push_back(data);
    off += 12 + static_cast<size_t>(length) + 4;
  }
  return records;
}

double now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

class EventsTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "events-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string &name) const { return dir_ + "/" + name; }
  std::string dir_;
};

//===----------------------------------------------------------------------------------===//
// CRC32C
//===----------------------------------------------------------------------------------===//

TEST(EventsCrc32cTest, KnownVectors) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  // RFC 3720 (iSCSI), appendix B.4.
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i)
    ascending[i] = static_cast<char>(i);
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(crc32cPortable(0, "123456789", 9), 0xE3069283u);
}

TEST(EventsCrc32cTest, HardwareMatchesPortableAndExtends) {
  std::mt19937 rng(5);
  std::string data(4099, '\0');
  for (char &c : data)
    c = static_cast<char>(rng());
  for (size_t start : {0, 1, 3, 7}) {
    for (size_t len : {0, 1, 7, 8, 9, 63, 64, 1000, 4092}) {
      const char *p = data.data() + start;
      EXPECT_EQ(crc32cExtend(0, p, len), crc32cPortable(0, p, len)) << start << "+" << len;
    }
  }
  // crc(a + b) continues from crc(a).
  std::string a = data.substr(0, 1001), b = data.substr(1001);
  EXPECT_EQ(crc32cExtend(crc32c(a), b.data(), b.size()), crc32c(data));
  EXPECT_EQ(crc32cPortable(crc32cPortable(0, a.data(), a.size()), b.data(), b.size()),
            crc32c(data));
  for (uint32_t v : {0u, 1u, 0xE3069283u, 0xffffffffu})
    EXPECT_EQ(unmaskCrc32c(maskCrc32c(v)), v);
  EXPECT_EQ(maskCrc32c(0xE3069283u), mask(0xE3069283u));
}

TEST(EventsCrc32cTest, Fnv1aAndSplitmix) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
  // splitmix64's reference output for state 0: the first value of the generator seeded 0.
  EXPECT_EQ(splitmix64(0), 0xe220a8397b1dcdafull);
}

//===----------------------------------------------------------------------------------===//
// Event files
//===----------------------------------------------------------------------------------===//

TEST(EventsFramingTest, RecordLayout) {
  std::string rec = frameTFRecord("abc");
  ASSERT_EQ(rec.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(le(rec, 0, 8), 3u);
  EXPECT_EQ(le(rec, 8, 4), mask(crc32c(rec.substr(0, 8))));
  EXPECT_EQ(rec.substr(12, 3), "abc");
  EXPECT_EQ(le(rec, 15, 4), mask(crc32c("abc")));
  EXPECT_EQ(frameTFRecord("").size(), 16u);
}

TEST_F(EventsTest, WritesTensorBoardEventFile) {
  double before = now();
  EventWriter writer;
  std::string error;
  ASSERT_TRUE(writer.open(path("logs/run1"), &error)) << error;
  std::string name = fs::path(writer.path()).filename().string();
  EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;
  EXPECT_EQ(fs::path(writer.path()).parent_path(), fs::path(path("logs/run1")));
  ASSERT_TRUE(writer.addScalar("loss/train", 2.5, 1, &error)) << error;
  ASSERT_TRUE(writer.addScalars(2, {{"loss/train", 2.25}, {"lr", 3e-4}, {"tokens/s", 12345.5}},
                                &error))
      << error;
  ASSERT_TRUE(writer.addScalar("loss/valid", 1.0 / 3.0, 1000000000000ll, &error)) << error;
  ASSERT_TRUE(writer.flush(&error)) << error;
  double after = now();

  // Read back by hand while the writer is still open: each record is already on disk.
  std::vector<std::string> records = splitRecords(readBytes(writer.path()));
  ASSERT_EQ(records.size(), 4u);
  tensorboard::Event first;
  ASSERT_TRUE(first.ParseFromString(records[0]));
  EXPECT_EQ(first.file_version(), "brain.Event:2");
  EXPECT_EQ(first.step(), 0);
  EXPECT_GE(first.wall_time(), std::floor(before));
  EXPECT_LE(first.wall_time(), after + 1);

  struct Expected {
    int64_t step;
    std::vector<std::pair<std::string, float>> values;
  };
  std::vector<Expected> expected = {
      {1, {{"loss/train", 2.5f}}},
      {2, {{"loss/train", 2.25f}, {"lr", 3e-4f}, {"tokens/s", 12345.5f}}},
      {1000000000000ll, {{"loss/valid", static_cast<float>(1.0 / 3.0)}}}};
  for (size_t i = 0; i < expected.size(); ++i) {
    tensorboard::Event e;
    ASSERT_TRUE(e.ParseFromString(records[i + 1])) << i;
    EXPECT_EQ(e.step(), expected[i].step);
    EXPECT_GE(e.wall_time(), before - 1);
    EXPECT_LE(e.wall_time(), after + 1);
    ASSERT_EQ(e.what_case(), tensorboard::Event::kSummary);
    ASSERT_EQ(e.summary().value_size(), static_cast<int>(expected[i].values.size()));
    for (size_t v = 0; v < expected[i].values.size(); ++v) {
      const auto &value = e.summary().value(static_cast<int>(v));
      EXPECT_EQ(value.tag(), expected[i].values[v].first);
      EXPECT_EQ(value.value_case(), tensorboard::Summary::Value::kSimpleValue);
      EXPECT_EQ(value.simple_value(), expected[i].values[v].second);
    }
  }

  // The library's reader agrees.
  std::vector<EventRecord> events;
  ASSERT_TRUE(readEventFile(writer.path(), events, &error)) << error;
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].fileVersion, kEventFileVersion);
  EXPECT_EQ(events[2].step, 2);
  ASSERT_EQ(events[2].scalars.size(), 3u);
  EXPECT_EQ(events[2].scalars[1], (std::pair<std::string, float>("lr", 3e-4f)));
}

TEST_F(EventsTest, FieldNumbersAreTensorBoards) {
  // Event{wall_time=1 (double), step=2, summary=5}, Summary{value=1},
  // Value{tag=1, simple_value=2 (float)}: check the wire bytes of a known event.
  tensorboard::Event e;
  e.set_wall_time(1.0);
  e.set_step(3);
  auto *v = e.mutable_summary()->add_value();
  v->set_tag("x");
  v->set_simple_value(1.0f);
  std::string expected = std::string("\x09\x00\x00\x00\x00\x00\x00\xf0\x3f", 9) + // wall_time
                         std::string("\x10\x03", 2) +                              // step
                         std::string("\x2a\x0a\x0a\x08", 4) +       // summary, value
                         std::string("\x0a\x01x", 3) +               // tag
                         std::string("\x15\x00\x00\x80\x3f", 5);     // simple_value
  EXPECT_EQ(e.SerializeAsString(), expected);
  tensorboard::Event version;
  version.set_file_version("brain.Event:2");
  EXPECT_EQ(version.SerializeAsString(), std::string("\x1a\x0d") + "brain.Event:2");
}

TEST_F(EventsTest, NonFiniteValuesAreKept) {
  EventWriter writer;
  std::string error;
  ASSERT_TRUE(writer.open(dir_, &error)) << error;
  ASSERT_TRUE(writer.addScalars(5,
                                {{"nan", std::nan("")},
                                 {"inf", std::numeric_limits<double>::infinity()},
                                 {"big", 1e300}},
                                &error))
      << error;
  std::vector<EventRecord> events;
  ASSERT_TRUE(readEventFile(writer.path(), events, &error)) << error;
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(std::isnan(events[1].scalars[0].second));
  EXPECT_TRUE(std::isinf(events[1].scalars[1].second));
  EXPECT_TRUE(std::isinf(events[1].scalars[2].second)) << "1e300 overflows float";
}

TEST_F(EventsTest, TwoWritersNeverShareAFile) {
  EventWriter a, b;
  std::string error;
  ASSERT_TRUE(a.open(dir_, &error)) << error;
  ASSERT_TRUE(b.open(dir_, &error)) << error;
  EXPECT_NE(a.path(), b.path());
  ASSERT_TRUE(a.addScalar("a", 1, 1, &error)) << error;
  ASSERT_TRUE(b.addScalar("b", 2, 1, &error)) << error;
  std::vector<EventRecord> ea, eb;
  ASSERT_TRUE(readEventFile(a.path(), ea, &error)) << error;
  ASSERT_TRUE(readEventFile(b.path(), eb, &error)) << error;
  EXPECT_EQ(ea.size(), 2u);
  EXPECT_EQ(eb.size(), 2u);
  EXPECT_EQ(eb[1].scalars[0].first, "b");
}

TEST_F(EventsTest, CorruptAndTruncatedFilesAreRejected) {
  EventWriter writer;
  std::string error;
  ASSERT_TRUE(writer.open(dir_, &error)) << error;
  ASSERT_TRUE(writer.addScalar("loss", 1.5, 1, &error)) << error;
  ASSERT_TRUE(writer.addScalar("loss", 1.25, 2, &error)) << error;
  writer.close();
  const std::string good = readBytes(writer.path());
  std::vector<std::string> records;
  ASSERT_TRUE(readTFRecords(writer.path(), records, &error)) << error;
  ASSERT_EQ(records.size(), 3u);
  size_t second = 16 + records[0].size();

  std::string file = path("bad.tfevents");
  std::string flipped = good;
  flipped[second + 14] ^= 0x20; // inside record 1's data
  writeBytes(file, flipped);
  EXPECT_FALSE(readTFRecords(file, records, &error));
  EXPECT_NE(error.find(file + ": record 1 at byte " + std::to_string(second)),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("data fail their CRC"), std::string::npos) << error;

  flipped = good;
  flipped[second + 2] ^= 0x01; // record 1's length
  writeBytes(file, flipped);
  EXPECT_FALSE(readTFRecords(file, records, &error));
  EXPECT_NE(error.find("length fails its CRC"), std::string::npos) << error;

  writeBytes(file, good.substr(0, good.size() - 3));
  EXPECT_FALSE(readTFRecords(file, records, &error));
  EXPECT_NE(error.find("record 2"), std::string::npos) << error;
  EXPECT_NE(error.find("truncated"), std::string::npos) << error;

  writeBytes(file, good.substr(0, second + 5));
  EXPECT_FALSE(readTFRecords(file, records, &error));
  EXPECT_NE(error.find("truncated header"), std::string::npos) << error;

  // Valid framing around data that is not an Event.
  writeBytes(file, frameTFRecord("\xff\xff\xff"));
  std::vector<EventRecord> events;
  EXPECT_FALSE(readEventFile(file, events, &error));
  EXPECT_NE(error.find("does not parse as an Event"), std::string::npos) << error;

  EXPECT_FALSE(readTFRecords(path("missing"), records, &error));
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
  // An empty file holds no records.
  writeBytes(file, "");
  EXPECT_TRUE(readTFRecords(file, records, &error)) << error;
  EXPECT_TRUE(records.empty());
}

TEST_F(EventsTest, WriterErrors) {
  EventWriter writer;
  std::string error;
  EXPECT_FALSE(writer.addScalar("loss", 1, 1, &error));
  EXPECT_NE(error.find("no file open"), std::string::npos) << error;
  EXPECT_FALSE(writer.flush(&error));
  writeBytes(path("file"), "x");
  EXPECT_FALSE(writer.open(path("file"), &error));
  EXPECT_NE(error.find(path("file")), std::string::npos) << error;
  EXPECT_FALSE(writer.open(path("file/sub"), &error));
  EXPECT_FALSE(writer.isOpen());

  ASSERT_TRUE(writer.open(dir_, &error)) << error;
  EXPECT_FALSE(writer.addScalar("", 1, 1, &error));
  EXPECT_NE(error.find("tag is empty"), std::string::npos) << error;
  EXPECT_FALSE(writer.addScalar("bad\xff", 1, 1, &error));
  EXPECT_NE(error.find("not valid UTF-8"), std::string::npos) << error;
  // Nothing was written for the refused scalars.
  std::vector<EventRecord> events;
  ASSERT_TRUE(readEventFile(writer.path(), events, &error)) << error;
  EXPECT_EQ(events.size(), 1u);
}

//===----------------------------------------------------------------------------------===//
// CSV
//===----------------------------------------------------------------------------------===//

TEST_F(EventsTest, CsvHeaderRowsAndAppends) {
  std::string file = path("metrics.csv");
  std::string error;
  {
    CsvMetricsWriter csv;
    ASSERT_TRUE(csv.open(file, &error)) << error;
    ASSERT_TRUE(csv.write(1, "loss/train", 2.5, &error)) << error;
    ASSERT_TRUE(csv.write(1, "lr", 0.1, &error)) << error;
    // Flushed per line: visible before the writer closes.
    EXPECT_EQ(readBytes(file), "step,name,value\n1,loss/train,2.5\n1,lr,0.1\n");
  }
  {
    CsvMetricsWriter csv;
    ASSERT_TRUE(csv.open(file, &error)) << error;
    ASSERT_TRUE(csv.write(2, "a,b \"c\"", -1e-7, &error)) << error;
    ASSERT_TRUE(csv.write(3, "nan", std::nan(""), &error)) << error;
  }
  EXPECT_EQ(readBytes(file), "step,name,value\n1,loss/train,2.5\n1,lr,0.1\n"
                             "2,\"a,b \"\"c\"\"\",-1e-07\n3,nan,nan\n");
  // Values read back exactly.
  CsvMetricsWriter csv;
  ASSERT_TRUE(csv.open(file, &error)) << error;
  ASSERT_TRUE(csv.write(4, "third", 1.0 / 3.0, &error)) << error;
  std::string text = readBytes(file);
  std::string last = text.substr(text.rfind("4,third,") + 8);
  EXPECT_EQ(std::stod(last), 1.0 / 3.0);
}

TEST_F(EventsTest, CsvCompletesAPartialLastLine) {
  std::string file = path("metrics.csv");
  writeBytes(file, "step,name,value\n1,loss,2.5\n2,lo");
  CsvMetricsWriter csv;
  std::string error;
  ASSERT_TRUE(csv.open(file, &error)) << error;
  ASSERT_TRUE(csv.write(3, "loss", 2, &error)) << error;
  EXPECT_EQ(readBytes(file), "step,name,value\n1,loss,2.5\n2,lo\n3,loss,2\n");
}

TEST_F(EventsTest, CsvRefusesForeignFiles) {
  std::string file = path("notes.csv");
  writeBytes(file, "name,age\nbob,3\n");
  CsvMetricsWriter csv;
  std::string error;
  EXPECT_FALSE(csv.open(file, &error));
  EXPECT_NE(error.find(file + ": exists and is not a metrics CSV"), std::string::npos) << error;
  EXPECT_EQ(readBytes(file), "name,age\nbob,3\n");
  EXPECT_FALSE(csv.open(dir_, &error));
  EXPECT_FALSE(csv.open(path("no/such/dir/m.csv"), &error));
  EXPECT_NE(error.find("cannot open"), std::string::npos) << error;
  EXPECT_FALSE(csv.write(1, "x", 1, &error));
  EXPECT_NE(error.find("no file open"), std::string::npos) << error;
}

} // namespace
