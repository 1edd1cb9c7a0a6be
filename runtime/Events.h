//===- Events.h - TensorBoard event files and CSV metrics -----------------*- C++ -*-===//
//
// Training metrics in two formats that standard tools read:
//  - TensorBoard event files (events.out.tfevents.<time>.<host>): TFRecord-framed Event
//    protos, the first carrying the file version, the others scalar summaries;
//  - a CSV file of step,name,value rows, appended to and flushed line by line.
//
// TFRecord framing: uint64 length, uint32 masked CRC32C of those 8 bytes, the data, uint32
// masked CRC32C of the data, all little-endian. Each record goes to the kernel in one
// write(), so TensorBoard (or a crash) sees whole records as soon as they are logged.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_EVENTS_H
#define LLAMAC_RUNTIME_EVENTS_H

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llamac {

/// "brain.Event:2", the version TensorBoard expects in an event file's first record.
extern const char *const kEventFileVersion;

/// `data` framed as one TFRecord.
std::string frameTFRecord(std::string_view data);

/// Reads every record of a TFRecord file, checking both CRCs of each. Fails with a message
/// naming the file, the record and its byte offset (truncated, bad length CRC, bad data CRC).
bool readTFRecords(const std::string &path, std::vector<std::string> &records,
                   std::string *error);

/// Writes one TensorBoard event file.
class EventWriter {
public:
  EventWriter() = default;
  ~EventWriter();
  EventWriter(const EventWriter &) = delete;
  EventWriter &operator=(const EventWriter &) = delete;

  /// Creates `logDir` if needed and a new event file in it, and writes the file-version
  /// record. An existing file is never overwritten: a name already taken gets a ".<n>"
  /// suffix.
  bool open(const std::string &logDir, std::string *error);
  /// Appends one Event holding the scalars `values` ((tag, value) pairs) at `step`. Tags
  /// must be non-empty UTF-8; values are stored as float, as TensorBoard's simple_value is.
  bool addScalars(int64_t step, const std::vector<std::pair<std::string, double>> &values,
                  std::string *error);
  bool addScalar(const std::string &tag, double value, int64_t step, std::string *error) {
    return addScalars(step, {{tag, value}}, error);
  }
  /// fsync()s the file (records are already visible to readers after each add).
  bool flush(std::string *error);
  void close();

  bool isOpen() const { return fd_ >= 0; }
  const std::string &path() const { return path_; }

private:
  bool writeRecord(const std::string &event, std::string *error);

  int fd_ = -1;
  std::string path_;
};

/// One event as read back.
struct EventRecord {
  double wallTime = 0;
  int64_t step = 0;
  /// Set in the file's first record only.
  std::string fileVersion;
  std::vector<std::pair<std::string, float>> scalars;
};

/// Reads an event file written by EventWriter (or TensorBoard's scalar summaries).
bool readEventFile(const std::string &path, std::vector<EventRecord> &events,
                   std::string *error);

/// The header of the metrics CSV.
extern const char *const kMetricsCsvHeader;

/// Appends step,name,value rows to a CSV file, one write() per row.
class CsvMetricsWriter {
public:
  CsvMetricsWriter() = default;
  ~CsvMetricsWriter();
  CsvMetricsWriter(const CsvMetricsWriter &) = delete;
  CsvMetricsWriter &operator=(const CsvMetricsWriter &) = delete;

  /// Opens `path` for appending, writing the header if the file is new or empty. A non-empty
  /// file must start with the header (anything else is refused, not appended to); a last line
  /// left incomplete by a crash is terminated first so that rows stay aligned.
  bool open(const std::string &path, std::string *error);
  /// Appends "step,name,value"; the name is quoted when it holds a comma, quote or newline,
  /// and the value is printed in the shortest form that reads back exactly.
  bool write(int64_t step, const std::string &name, double value, std::string *error);
  void close();

  bool isOpen() const { return fd_ >= 0; }
  const std::string &path() const { return path_; }

private:
  int fd_ = -1;
  std::string path_;
};

} // namespace llamac

#endif
