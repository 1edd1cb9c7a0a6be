//===- FileUtil.cpp - whole-file reads and atomic file replacement -------------------===//
#include "runtime/FileUtil.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <new>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace llamac {

std::string errnoText(int err) { return std::strerror(err); }

std::string parentDirectory(const std::string &path) {
  size_t slash = path.find_last_not_of('/');
  if (slash == std::string::npos)
    return "/";
  slash = path.rfind('/', slash);
  if (slash == std::string::npos)
    return ".";
  size_t end = path.find_last_not_of('/', slash);
  return end == std::string::npos ? "/" : path.substr(0, end + 1);
}

bool readFileBytes(const std::string &path, std::string &out, uint64_t maxBytes,
                   std::string *error) {
  auto fail = [&](const std::string &msg) {
    if (error)
      *error = path + ": " + msg;
    return false;
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail("cannot open: " + errnoText(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return fail("cannot stat: " + errnoText(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return fail("is a directory, not a file");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("is not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > maxBytes) {
    ::close(fd);
    return fail("is " + std::to_string(st.st_size) + " bytes, more than the " +
                std::to_string(maxBytes) + " accepted");
  }
  std::string data;
  try {
    data.resize(static_cast<size_t>(st.st_size));
  } catch (const std::bad_alloc &) {
    ::close(fd);
    return fail("out of memory reading " + std::to_string(st.st_size) + " bytes");
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::read(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return fail("read error: " + errnoText(err));
    }
    if (n == 0) // shrank while being read
      break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(done);
  out.swap(data);
  return true;
}

bool makeDirectories(const std::string &dir, std::string *error) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    if (error)
      *error = dir + ": cannot create directory: " + ec.message();
    return false;
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    if (error)
      *error = dir + ": exists and is not a directory";
    return false;
  }
  return true;
}

bool syncDirectory(const std::string &dir, std::string *error) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (error)
      *error = dir + ": cannot open directory to sync it: " + errnoText(errno);
    return false;
  }
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) {
    if (error)
      *error = dir + ": cannot sync directory: " + errnoText(err);
    return false;
  }
  return true;
}

AtomicFileWriter::~AtomicFileWriter() { abandon(); }

void AtomicFileWriter::abandon() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
  if (!temp_.empty())
    ::unlink(temp_.c_str());
  temp_.clear();
}

bool AtomicFileWriter::open(const std::string &path, std::string *error) {
  abandon();
  path_ = path;
  size_t slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty() || base == "." || base == "..") {
    if (error)
      *error = path + ": names a directory, not a file";
    return false;
  }
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  // Unique per process and call; O_EXCL turns a collision into a retry, never a clobber. The
  // leading dot keeps directory listings (and checkpoint scans) from mistaking it for data.
  static std::atomic<uint64_t> counter{0};
  for (int attempt = 0;; ++attempt) {
    std::string candidate = dir + "." + base.substr(0, 128) + ".tmp." +
                            std::to_string(::getpid()) + "." +
                            std::to_string(counter.fetch_add(1));
    int fd = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      fd_ = fd;
      temp_ = candidate;
      return true;
    }
    if ((errno != EEXIST && errno != EINTR) || attempt >= 100) {
      if (error)
        *error = path + ": cannot create a temporary file beside it: " + errnoText(errno);
      return false;
    }
  }
}

bool AtomicFileWriter::write(const void *data, size_t size, std::string *error) {
  const char *p = static_cast<const char *>(data);
  while (size > 0) {
    if (fd_ < 0) {
      if (error)
        *error = path_ + ": write to a writer that is not open";
      return false;
    }
    ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (error)
        *error = path_ + ": cannot write " + temp_ + ": " + errnoText(n < 0 ? errno : EIO);
      return false;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool AtomicFileWriter::writeAt(uint64_t offset, const void *data, size_t size,
                               std::string *error) {
  const char *p = static_cast<const char *>(data);
  while (size > 0) {
    if (fd_ < 0) {
      if (error)
        *error = path_ + ": write to a writer that is not open";
      return false;
    }
    ssize_t n = ::pwrite(fd_, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (error)
        *error = path_ + ": cannot write " + temp_ + ": " + errnoText(n < 0 ? errno : EIO);
      return false;
    }
    p += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool AtomicFileWriter::commit(std::string *error) {
  if (fd_ < 0) {
    if (error)
      *error = path_ + ": commit of a writer that is not open";
    return false;
  }
  // Sync before the rename: otherwise a crash could leave the new name on empty contents.
  if (::fsync(fd_) != 0) {
    if (error)
      *error = path_ + ": cannot sync " + temp_ + ": " + errnoText(errno);
    abandon();
    return false;
  }
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    if (error)
      *error = path_ + ": cannot close " + temp_ + ": " + errnoText(errno);
    abandon();
    return false;
  }
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    if (error)
      *error = path_ + ": cannot rename " + temp_ + " over it: " + errnoText(errno);
    abandon();
    return false;
  }
  temp_.clear();
  return syncDirectory(parentDirectory(path_), error);
}

bool writeFileAtomic(const std::string &path, std::string_view bytes, std::string *error) {
  AtomicFileWriter writer;
  return writer.open(path, error) && writer.write(bytes, error) && writer.commit(error);
}

bool isValidUtf8(std::string_view s) {
  const auto *p = reinterpret_cast<const unsigned char *>(s.data());
  const auto *end = p + s.size();
  auto cont = [&](const unsigned char *q, unsigned char lo, unsigned char hi) {
    return q < end && *q >= lo && *q <= hi;
  };
  while (p < end) {
    unsigned char c = *p;
    size_t n = 0;
    if (c < 0x80)
      n = 1;
    else if (c >= 0xc2 && c <= 0xdf)
      n = cont(p + 1, 0x80, 0xbf) ? 2 : 0;
    else if (c == 0xe0)
      n = cont(p + 1, 0xa0, 0xbf) && cont(p + 2, 0x80, 0xbf) ? 3 : 0;
    else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef)
      n = cont(p + 1, 0x80, 0xbf) && cont(p + 2, 0x80, 0xbf) ? 3 : 0;
    else if (c == 0xed) // U+D000..U+D7FF; above are surrogates
      n = cont(p + 1, 0x80, 0x9f) && cont(p + 2, 0x80, 0xbf) ? 3 : 0;
    else if (c == 0xf0)
      n = cont(p + 1, 0x90, 0xbf) && cont(p + 2, 0x80, 0xbf) && cont(p + 3, 0x80, 0xbf) ? 4 : 0;
    else if (c >= 0xf1 && c <= 0xf3)
      n = cont(p + 1, 0x80, 0xbf) && cont(p + 2, 0x80, 0xbf) && cont(p + 3, 0x80, 0xbf) ? 4 : 0;
    else if (c == 0xf4)
      n = cont(p + 1, 0x80, 0x8f) && cont(p + 2, 0x80, 0xbf) && cont(p + 3, 0x80, 0xbf) ? 4 : 0;
    if (n == 0)
      return false;
    p += n;
  }
  return true;
}

} // namespace llamac
