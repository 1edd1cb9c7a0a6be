//===- FileUtil.h - whole-file reads and atomic file replacement ----------*- C++ -*-===//
//
// The file-system primitives the tokenizer, the token cache, the event writer and the
// checkpoints share. Every function reports failure through a message that names the file
// and the reason; none throws. Replacement is atomic: data goes to a temporary next to the
// target, is synced, renamed over the target and the directory is synced, so a reader or a
// crash sees either the old file or the complete new one.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_FILEUTIL_H
#define LLAMAC_RUNTIME_FILEUTIL_H

#include <cstdint>
#include <string>
#include <string_view>

namespace llamac {

/// strerror(err) as a std::string.
std::string errnoText(int err);

/// The directory part of `path` ("." when it has none, "/" for files in the root).
std::string parentDirectory(const std::string &path);

/// Reads the whole regular file at `path` into `out`. Fails (with a message naming the file)
/// when it is missing, unreadable, not a regular file or larger than `maxBytes`.
bool readFileBytes(const std::string &path, std::string &out, uint64_t maxBytes,
                   std::string *error);

/// Creates `dir` and its missing parents.
bool makeDirectories(const std::string &dir, std::string *error);

/// fsync()s a directory so that a rename or creation inside it survives a crash. File
/// systems that cannot sync directories (EINVAL) count as success.
bool syncDirectory(const std::string &dir, std::string *error);

/// Writes a file through a temporary beside it; commit() makes it appear at `path`
/// atomically. Destroying an uncommitted writer removes the temporary, leaving whatever was
/// at `path` untouched.
class AtomicFileWriter {
public:
  AtomicFileWriter() = default;
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter &) = delete;
  AtomicFileWriter &operator=(const AtomicFileWriter &) = delete;

  /// Creates the temporary. `path` must name a file in an existing directory.
  bool open(const std::string &path, std::string *error);
  /// Appends bytes.
  bool write(const void *data, size_t size, std::string *error);
  bool write(std::string_view bytes, std::string *error) {
    return write(bytes.data(), bytes.size(), error);
  }
  /// Overwrites bytes already written (a header completed at the end).
  bool writeAt(uint64_t offset, const void *data, size_t size, std::string *error);
  /// Syncs, closes, renames over the target and syncs the directory.
  bool commit(std::string *error);
  /// Removes the temporary (also done by the destructor).
  void abandon();

  const std::string &path() const { return path_; }
  const std::string &tempPath() const { return temp_; }

private:
  std::string path_, temp_;
  int fd_ = -1;
};

/// Replaces `path` with `bytes` atomically (AtomicFileWriter in one call).
bool writeFileAtomic(const std::string &path, std::string_view bytes, std::string *error);

/// Whether `s` is well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points
/// above U+10FFFF). Protobuf string fields must be: a parser rejects the whole message.
bool isValidUtf8(std::string_view s);

} // namespace llamac

#endif
