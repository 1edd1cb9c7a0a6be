//===- Events.cpp - TensorBoard event files and CSV metrics --------------------------===//
//
// The Event and Summary messages are the TensorBoard subset in runtime/proto/, with
// TensorBoard's field numbers, so the files are read by TensorBoard and by any TFRecord
// reader. Files are written with plain write() calls, unbuffered in user space: a record or
// a CSV row is complete in the kernel when the call returns, whatever happens to the process
// afterwards.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Events.h"

#include "runtime/Checksum.h"
#include "runtime/FileUtil.h"
#include "runtime/proto/event.pb.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <new>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace llamac {

const char *const kEventFileVersion = "brain.Event:2";
const char *const kMetricsCsvHeader = "step,name,value";

namespace {

bool setError(std::string *error, std::string message) {
  if (error)
    *error = std::move(message);
  return false;
}

void appendLE(std::string &out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>(v >> (8 * i)));
}

uint64_t loadLE(const char *p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

bool writeAll(int fd, const char *p, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n == 0)
        errno = EIO;
      return false;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

double wallTimeNow() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

/// The host name with anything that does not belong in a file name replaced.
std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0')
    return "localhost";
  std::string host(buf);
  for (char &c : host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_'))
      c = '_';
  return host;
}

} // namespace

//===----------------------------------------------------------------------------------===//
// TFRecord framing
//===----------------------------------------------------------------------------------===//

std::string frameTFRecord(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  appendLE(out, data.size(), 8);
  appendLE(out, maskCrc32c(crc32c(std::string_view(out.data(), 8))), 4);
  out.append(data);
  appendLE(out, maskCrc32c(crc32c(data)), 4);
  return out;
}

bool readTFRecords(const std::string &path, std::vector<std::string> &records,
                   std::string *error) {
  constexpr uint64_t kMaxFileBytes = uint64_t(1) << 34;
  std::string bytes;
  if (!readFileBytes(path, bytes, kMaxFileBytes, error))
    return false;
  std::vector<std::string> out;
  size_t offset = 0;
  for (size_t index = 0; offset < bytes.size(); ++index) {
    std::string where =
        path + ": record " + std::to_string(index) + " at byte " + std::to_string(offset);
    size_t left = bytes.size() - offset;
    if (left < 12)
      return setError(error, where + ": truncated header (" + std::to_string(left) +
                                 " bytes of 12)");
    const char *p = bytes.data() + offset;
    uint64_t length = loadLE(p, 8);
    uint32_t lengthCrc = static_cast<uint32_t>(loadLE(p + 8, 4));
    if (maskCrc32c(crc32c(std::string_view(p, 8))) != lengthCrc)
      return setError(error, where + ": the length fails its CRC (corrupt file)");
    if (length > left - 12 || left - 12 - length < 4)
      return setError(error, where + ": truncated (the record needs " +
                                 std::to_string(length) + " bytes of data and a CRC, " +
                                 std::to_string(left - 12) + " bytes are left)");
    std::string_view data(p + 12, static_cast<size_t>(length));
    uint32_t dataCrc = static_cast<uint32_t>(loadLE(p + 12 + length, 4));
    if (maskCrc32c(crc32c(data)) != dataCrc)
      return setError(error, where + ": the data fail their CRC (corrupt file)");
    out.emplace_back(data);
    offset += 12 + static_cast<size_t>(length) + 4;
  }
  records.swap(out);
  return true;
}

//===----------------------------------------------------------------------------------===//
// EventWriter
//===----------------------------------------------------------------------------------===//

EventWriter::~EventWriter() { close(); }

void EventWriter::close() {
  if (fd_ >= 0) {
    ::fsync(fd_);
    ::close(fd_);
  }
  fd_ = -1;
}

bool EventWriter::open(const std::string &logDir, std::string *error) {
  close();
  path_.clear();
  if (!makeDirectories(logDir, error))
    return false;
  double now = wallTimeNow();
  std::string base = logDir + "/events.out.tfevents." +
                     std::to_string(static_cast<int64_t>(now)) + "." + hostName();
  for (int n = 0;; ++n) {
    std::string candidate = n == 0 ? base : base + "." + std::to_string(n);
    int fd = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
                    0666);
    if (fd >= 0) {
      fd_ = fd;
      path_ = candidate;
      break;
    }
    if ((errno != EEXIST && errno != EINTR) || n >= 1000)
      return setError(error, candidate + ": cannot create the event file: " + errnoText(errno));
  }
  tensorboard::Event event;
  event.set_wall_time(now);
  event.set_step(0);
  event.set_file_version(kEventFileVersion);
  std::string bytes;
  if (!event.SerializeToString(&bytes) || !writeRecord(bytes, error)) {
    if (error && error->empty())
      *error = path_ + ": cannot serialise the file-version event";
    close();
    return false;
  }
  return true;
}

bool EventWriter::writeRecord(const std::string &event, std::string *error) {
  if (fd_ < 0)
    return setError(error, "event writer: no file open");
  std::string record = frameTFRecord(event);
  if (!writeAll(fd_, record.data(), record.size()))
    return setError(error, path_ + ": cannot write an event: " + errnoText(errno));
  return true;
}

bool EventWriter::addScalars(int64_t step,
                             const std::vector<std::pair<std::string, double>> &values,
                             std::string *error) {
  if (fd_ < 0)
    return setError(error, "event writer: no file open");
  tensorboard::Event event;
  event.set_wall_time(wallTimeNow());
  event.set_step(step);
  auto *summary = event.mutable_summary();
  for (const auto &[tag, value] : values) {
    // A proto3 string must be UTF-8 or the whole record is unreadable.
    if (tag.empty())
      return setError(error, path_ + ": a scalar's tag is empty");
    if (!isValidUtf8(tag))
      return setError(error, path_ + ": the tag of a scalar is not valid UTF-8");
    auto *v = summary->add_value();
    v->set_tag(tag);
    v->set_simple_value(static_cast<float>(value));
  }
  std::string bytes;
  try {
    if (!event.SerializeToString(&bytes))
      return setError(error, path_ + ": cannot serialise an event");
  } catch (const std::bad_alloc &) {
    return setError(error, path_ + ": out of memory");
  }
  return writeRecord(bytes, error);
}

bool EventWriter::flush(std::string *error) {
  if (fd_ < 0)
    return setError(error, "event writer: no file open");
  if (::fsync(fd_) != 0 && errno != EINVAL)
    return setError(error, path_ + ": cannot sync: " + errnoText(errno));
  return true;
}

bool readEventFile(const std::string &path, std::vector<EventRecord> &events,
                   std::string *error) {
  std::vector<std::string> records;
  if (!readTFRecords(path, records, error))
    return false;
  std::vector<EventRecord> out;
  for (size_t i = 0; i < records.size(); ++i) {
    tensorboard::Event event;
    if (!event.ParseFromString(records[i]))
      return setError(error, path + ": record " + std::to_string(i) +
                                 " does not parse as an Event");
    EventRecord r;
    r.wallTime = event.wall_time();
    r.step = event.step();
    if (event.what_case() == tensorboard::Event::kFileVersion)
      r.fileVersion = event.file_version();
    if (event.what_case() == tensorboard::Event::kSummary)
      for (const auto &v : event.summary().value())
        if (v.value_case() == tensorboard::Summary::Value::kSimpleValue)
          r.scalars.emplace_back(v.tag(), v.simple_value());
    out.push_back(std::move(r));
  }
  events.swap(out);
  return true;
}

//===----------------------------------------------------------------------------------===//
// CsvMetricsWriter
//===----------------------------------------------------------------------------------===//

CsvMetricsWriter::~CsvMetricsWriter() { close(); }

void CsvMetricsWriter::close() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

bool CsvMetricsWriter::open(const std::string &path, std::string *error) {
  close();
  path_ = path;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
  if (fd < 0)
    return setError(error, path + ": cannot open: " + errnoText(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return setError(error, path + ": not a regular file");
  }
  std::string header = std::string(kMetricsCsvHeader) + "\n";
  std::string prefix;
  if (st.st_size > 0) {
    // Read the start to check the header, and the last byte to see whether a crash left the
    // last row incomplete.
    prefix.resize(header.size());
    ssize_t n = ::pread(fd, prefix.data(), prefix.size(), 0);
    if (n != static_cast<ssize_t>(header.size()) || prefix != header) {
      ::close(fd);
      return setError(error, path + ": exists and is not a metrics CSV (its first line is not "
                                    "\"" + std::string(kMetricsCsvHeader) + "\"); not appending");
    }
    char last = '\n';
    if (::pread(fd, &last, 1, st.st_size - 1) != 1) {
      ::close(fd);
      return setError(error, path + ": read error: " + errnoText(errno));
    }
    if (last != '\n' && !writeAll(fd, "\n", 1)) {
      ::close(fd);
      return setError(error, path + ": cannot write: " + errnoText(errno));
    }
  } else if (!writeAll(fd, header.data(), header.size())) {
    ::close(fd);
    return setError(error, path + ": cannot write the header: " + errnoText(errno));
  }
  fd_ = fd;
  return true;
}

bool CsvMetricsWriter::write(int64_t step, const std::string &name, double value,
                             std::string *error) {
  if (fd_ < 0)
    return setError(error, "metrics CSV: no file open");
  std::string line = std::to_string(step) + ",";
  if (name.find_first_of(",\"\r\n") != std::string::npos) {
    line += '"';
    for (char c : name) {
      if (c == '"')
        line += '"';
      line += c;
    }
    line += '"';
  } else {
    line += name;
  }
  line += ',';
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  line.append(buf, ec == std::errc() ? end : buf);
  line += '\n';
  // One write per row: with O_APPEND, rows from several writers never interleave within a
  // line, and a crash loses at most the row being written.
  if (!writeAll(fd_, line.data(), line.size()))
    return setError(error, path_ + ": cannot write: " + errnoText(errno));
  return true;
}

} // namespace llamac
