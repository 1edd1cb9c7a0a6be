//===- Checkpoint.cpp - atomic, checksummed training checkpoints ---------------------===//
//
// Checksums are computed over the tensors file as it lies on disk, read back after it is
// written: the whole file's CRC32C, and each tensor's over its byte range. The ranges follow
// from the layout writeSafetensors produces (an 8-byte header size, the header, then each
// tensor's bytes in the order given), so verification needs only the manifest and one
// streaming pass over the file, whatever the file's size, and it names the tensor whose
// bytes are damaged before the file is decoded at all.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Checkpoint.h"

#include "runtime/Checksum.h"
#include "runtime/FileUtil.h"
#include "runtime/proto/checkpoint.pb.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <chrono>
#include <filesystem>
#include <limits>
#include <new>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace llamac {

namespace fs = std::filesystem;

namespace {

/// "LLCK" read as a little-endian uint32.
constexpr uint32_t kManifestMagic = 0x4b434c4c;
constexpr uint32_t kManifestVersion = 1;
constexpr const char *kTensorsFile = "tensors.safetensors";
constexpr const char *kManifestFile = "manifest.pb";
constexpr const char *kLatestFile = "latest";
constexpr const char *kLockFile = ".lock";
constexpr uint64_t kMaxManifestBytes = uint64_t(256) << 20;

bool setError(std::string *error, std::string message) {
  if (error)
    *error = std::move(message);
  return false;
}

std::string quote(const std::string &s) { return "'" + s + "'"; }

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

/// "f32[2x3]", as Tensor::describe() writes it, without building a tensor.
std::string typeString(DType dtype, const std::vector<int64_t> &shape) {
  std::string name = dtypeName(dtype);
  for (char &c : name)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name + "[" + shapeString(shape) + "]";
}

/// Parses "step-<N>" (decimal digits only).
bool parseStepName(std::string_view name, int64_t &step) {
  constexpr std::string_view prefix = "step-";
  if (name.size() <= prefix.size() || name.substr(0, prefix.size()) != prefix)
    return false;
  std::string_view digits = name.substr(prefix.size());
  if (digits.size() > 18)
    return false;
  int64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9')
      return false;
    v = v * 10 + (c - '0');
  }
  step = v;
  return true;
}

/// One tensor's place in the tensors file.
struct TensorLayout {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
};

/// The bytes a tensor of `shape` and `dtype` takes, or false on a negative dimension or
/// overflow (a manifest is checked, but never trusted with arithmetic).
bool tensorBytes(DType dtype, const std::vector<int64_t> &shape, uint64_t &bytes) {
  uint64_t n = static_cast<uint64_t>(dtypeSize(dtype));
  for (int64_t d : shape) {
    if (d < 0)
      return false;
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d))
      return false;
    n *= static_cast<uint64_t>(d);
  }
  bytes = n;
  return true;
}

struct FileScan {
  uint64_t size = 0;
  uint32_t crc = 0;
  std::vector<uint32_t> tensorCrcs;
};

/// One pass over the tensors file: the CRC of every byte, and of each tensor's range.
bool scanTensorsFile(const std::string &path, const std::vector<TensorLayout> &layout,
                     FileScan &scan, std::string *error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return setError(error, path + ": cannot open: " + errnoText(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    return setError(error, path + ": not a regular file");
  scan.size = static_cast<uint64_t>(st.st_size);
  unsigned char head[8];
  if (scan.size < 8 || ::pread(fd, head, 8, 0) != 8)
    return setError(error, path + ": truncated (" + std::to_string(scan.size) +
                               " bytes, too short for a safetensors header)");
  uint64_t headerSize = 0;
  for (int i = 0; i < 8; ++i)
    headerSize |= static_cast<uint64_t>(head[i]) << (8 * i);
  if (headerSize > scan.size - 8)
    return setError(error, path + ": truncated or corrupt (the header claims " +
                               std::to_string(headerSize) + " bytes, the file has " +
                               std::to_string(scan.size) + ")");
  uint64_t dataStart = 8 + headerSize;
  uint64_t dataBytes = 0;
  for (const TensorLayout &t : layout) {
    if (t.bytes > std::numeric_limits<uint64_t>::max() - dataBytes)
      return setError(error, path + ": the manifest's tensors overflow");
    dataBytes += t.bytes;
  }
  if (dataBytes != scan.size - dataStart)
    return setError(error, path + ": holds " + std::to_string(scan.size - dataStart) +
                               " bytes of tensor data where the manifest's tensors need " +
                               std::to_string(dataBytes) + " (truncated or corrupt)");

  scan.crc = 0;
  scan.tensorCrcs.assign(layout.size(), 0);
  size_t tensor = 0;
  uint64_t tensorLeft = layout.empty() ? 0 : layout[0].bytes;
  std::vector<unsigned char> chunk(1 << 20);
  uint64_t offset = 0;
  while (offset < scan.size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), scan.size - offset));
    ssize_t n = ::pread(fd, chunk.data(), want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return setError(error, path + ": read error: " + errnoText(errno));
    if (n == 0)
      return setError(error, path + ": shrank while being read");
    size_t got = static_cast<size_t>(n);
    scan.crc = crc32cExtend(scan.crc, chunk.data(), got);
    // Hand the part of the chunk past the header to the tensors, in order.
    size_t pos = offset >= dataStart
                     ? 0
                     : static_cast<size_t>(std::min<uint64_t>(got, dataStart - offset));
    while (pos < got) {
      while (tensorLeft == 0 && tensor + 1 < layout.size())
        tensorLeft = layout[++tensor].bytes;
      if (tensorLeft == 0)
        break; // sizes were checked above: only reached with no bytes left
      size_t take = static_cast<size_t>(std::min<uint64_t>(tensorLeft, got - pos));
      scan.tensorCrcs[tensor] = crc32cExtend(scan.tensorCrcs[tensor], chunk.data() + pos, take);
      pos += take;
      tensorLeft -= take;
    }
    offset += got;
  }
  return true;
}

bool readWholeManifest(const std::string &dir, checkpoint::Manifest &manifest,
                       std::string *error) {
  std::string path = dir + "/" + kManifestFile;
  std::string bytes;
  if (!readFileBytes(path, bytes, kMaxManifestBytes, error))
    return false;
  if (bytes.empty())
    return setError(error, path + ": empty (truncated)");
  checkpoint::ManifestFile file;
  if (!file.ParseFromString(bytes))
    return setError(error, path + ": truncated or corrupt (does not parse as a ManifestFile)");
  if (file.magic() != kManifestMagic)
    return setError(error, path + ": not a llamac checkpoint manifest (magic " +
                               hex32(file.magic()) + ")");
  if (file.manifest().empty())
    return setError(error, path + ": truncated or corrupt (it holds no manifest)");
  if (crc32c(file.manifest()) != file.manifest_crc32c())
    return setError(error, path + ": truncated or corrupt (the manifest fails its CRC: "
                                  "expected " +
                               hex32(file.manifest_crc32c()) + ", got " +
                               hex32(crc32c(file.manifest())) + ")");
  if (!manifest.ParseFromString(file.manifest()))
    return setError(error, path + ": corrupt (the manifest does not parse)");
  if (manifest.format_version() != kManifestVersion)
    return setError(error, path + ": format version " +
                               std::to_string(manifest.format_version()) +
                               " is not supported (this build reads version " +
                               std::to_string(kManifestVersion) + ")");
  return true;
}

/// The manifest's tensor list as layouts, every entry checked.
bool manifestLayout(const std::string &path, const checkpoint::Manifest &manifest,
                    std::vector<TensorLayout> &layout, std::string *error) {
  layout.clear();
  for (const auto &entry : manifest.tensors()) {
    TensorLayout t;
    t.name = entry.name();
    auto dtype = parseDType(entry.dtype());
    if (!dtype)
      return setError(error, path + ": tensor " + quote(t.name) + " has unknown dtype " +
                                 quote(entry.dtype()));
    t.dtype = *dtype;
    t.shape.assign(entry.shape().begin(), entry.shape().end());
    if (!tensorBytes(t.dtype, t.shape, t.bytes))
      return setError(error, path + ": tensor " + quote(t.name) + " has an invalid shape");
    layout.push_back(std::move(t));
  }
  return true;
}

/// Verifies `dir` and fills `manifest` and `layout`.
bool verifyDir(const std::string &dir, checkpoint::Manifest &manifest,
               std::vector<TensorLayout> &layout, std::string *error) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0)
    return setError(error, dir + ": checkpoint directory missing: " + errnoText(errno));
  if (!S_ISDIR(st.st_mode))
    return setError(error, dir + ": not a directory");
  if (!readWholeManifest(dir, manifest, error))
    return false;
  std::string manifestPath = dir + "/" + kManifestFile;
  int64_t dirStep;
  std::string base = fs::path(dir).filename().string();
  if (parseStepName(base, dirStep) && dirStep != manifest.step())
    return setError(error, manifestPath + ": records step " + std::to_string(manifest.step()) +
                               " but the directory is " + base);
  const std::string &file = manifest.tensors_file();
  if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
    return setError(error, manifestPath + ": invalid tensors file name " + quote(file));
  if (!manifestLayout(manifestPath, manifest, layout, error))
    return false;

  std::string tensorsPath = dir + "/" + file;
  FileScan scan;
  if (!scanTensorsFile(tensorsPath, layout, scan, error))
    return false;
  if (scan.size != manifest.tensors_file_size())
    return setError(error, tensorsPath + ": " + std::to_string(scan.size) +
                               " bytes where the manifest records " +
                               std::to_string(manifest.tensors_file_size()) +
                               " (truncated or replaced)");
  for (size_t i = 0; i < layout.size(); ++i)
    if (scan.tensorCrcs[i] != manifest.tensors(static_cast<int>(i)).crc32c())
      return setError(error, tensorsPath + ": tensor " + quote(layout[i].name) +
                                 " fails its checksum (expected crc32c " +
                                 hex32(manifest.tensors(static_cast<int>(i)).crc32c()) +
                                 ", got " + hex32(scan.tensorCrcs[i]) +
                                 "): the file is corrupt");
  if (scan.crc != manifest.tensors_file_crc32c())
    return setError(error, tensorsPath + ": fails its checksum (expected crc32c " +
                               hex32(manifest.tensors_file_crc32c()) + ", got " +
                               hex32(scan.crc) + "): the safetensors header is corrupt");
  return true;
}

/// Verifies and loads `dir`.
bool loadDir(const std::string &dir, LoadedCheckpoint &out, std::string *error) {
  checkpoint::Manifest manifest;
  std::vector<TensorLayout> layout;
  if (!verifyDir(dir, manifest, layout, error))
    return false;
  std::string tensorsPath = dir + "/" + manifest.tensors_file();
  TensorFile file;
  if (!readSafetensors(tensorsPath, file, error))
    return false;
  if (file.tensors.size() != layout.size())
    return setError(error, tensorsPath + ": holds " + std::to_string(file.tensors.size()) +
                               " tensors where the manifest lists " +
                               std::to_string(layout.size()));
  for (size_t i = 0; i < layout.size(); ++i) {
    const auto &[name, t] = file.tensors[i];
    if (name != layout[i].name || t.dtype != layout[i].dtype || t.shape != layout[i].shape)
      return setError(error, tensorsPath + ": tensor " + std::to_string(i) + " is " +
                                 quote(name) + " " + typeString(t.dtype, t.shape) +
                                 " where the manifest lists " + quote(layout[i].name) + " " +
                                 typeString(layout[i].dtype, layout[i].shape));
  }
  LoadedCheckpoint loaded;
  CheckpointState &s = loaded.state;
  s.modelName = manifest.model_name();
  s.config.insert(manifest.config().begin(), manifest.config().end());
  s.step = manifest.step();
  s.tokensConsumed = manifest.tokens_consumed();
  s.seed = manifest.seed();
  s.schedule.insert(manifest.schedule().begin(), manifest.schedule().end());
  s.extra.insert(manifest.extra().begin(), manifest.extra().end());
  loaded.tensors = std::move(file);
  loaded.directory = dir;
  loaded.wallTime = manifest.wall_time();
  out = std::move(loaded);
  return true;
}

bool checkUtf8(const std::string &s, const std::string &what, std::string *error) {
  if (isValidUtf8(s))
    return true;
  return setError(error, "checkpoint: " + what + " is not valid UTF-8");
}

bool validateState(const CheckpointState &state, std::string *error) {
  if (state.step < 0)
    return setError(error, "checkpoint: negative step " + std::to_string(state.step));
  if (!checkUtf8(state.modelName, "the model name", error))
    return false;
  for (const auto &[k, v] : state.config)
    if (!checkUtf8(k, "a config key", error) ||
        !checkUtf8(v, "the config value of " + quote(k), error))
      return false;
  for (const auto &[k, v] : state.extra)
    if (!checkUtf8(k, "an extra key", error) ||
        !checkUtf8(v, "the extra value of " + quote(k), error))
      return false;
  for (const auto &entry : state.schedule)
    if (!checkUtf8(entry.first, "a schedule key", error))
      return false;
  return true;
}

bool pathExists(const std::string &path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool removeTree(const std::string &path, std::string *error) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec)
    return setError(error, path + ": cannot remove: " + ec.message());
  return true;
}

} // namespace

std::string checkpointDirName(int64_t step) { return "step-" + std::to_string(step); }

std::vector<int64_t> listCheckpoints(const std::string &root) {
  std::vector<int64_t> steps;
  std::error_code ec;
  fs::directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    int64_t step;
    std::error_code typeEc;
    if (parseStepName(it->path().filename().string(), step) && it->is_directory(typeEc))
      steps.push_back(step);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

bool readLatestStep(const std::string &root, int64_t &step, std::string *error) {
  std::string path = root + "/" + kLatestFile;
  std::string bytes;
  if (!readFileBytes(path, bytes, 4096, error))
    return false;
  size_t begin = bytes.find_first_not_of(" \t\r\n");
  size_t end = bytes.find_last_not_of(" \t\r\n");
  std::string name = begin == std::string::npos ? "" : bytes.substr(begin, end - begin + 1);
  if (!parseStepName(name, step))
    return setError(error, path + ": does not name a checkpoint (expected \"step-<N>\")");
  return true;
}

bool pruneCheckpoints(const std::string &root, unsigned keepLast, int64_t upToStep,
                      std::vector<int64_t> *pruned, std::string *error) {
  if (keepLast == 0)
    return true;
  std::vector<int64_t> steps = listCheckpoints(root);
  std::vector<int64_t> eligible;
  for (int64_t s : steps)
    if (upToStep < 0 || s <= upToStep)
      eligible.push_back(s);
  if (eligible.size() <= keepLast)
    return true;
  std::string failures;
  for (size_t i = 0; i + keepLast < eligible.size(); ++i) {
    std::string dir = root + "/" + checkpointDirName(eligible[i]);
    std::string err;
    if (removeTree(dir, &err)) {
      if (pruned)
        pruned->push_back(eligible[i]);
    } else {
      failures += (failures.empty() ? "" : "; ") + err;
    }
  }
  if (!failures.empty())
    return setError(error, failures);
  return true;
}

bool saveCheckpoint(const std::string &root, const CheckpointState &state,
                    const std::vector<std::pair<std::string, const Tensor *>> &tensors,
                    const CheckpointSaveOptions &options, CheckpointSaveResult *result,
                    std::string *error) {
  auto stage = [&](const char *name) {
    if (options.onStage)
      options.onStage(name);
  };
  if (root.empty())
    return setError(error, "checkpoint: empty directory name");
  if (!validateState(state, error))
    return false;
  std::vector<TensorLayout> layout;
  for (const auto &[name, t] : tensors) {
    if (!t)
      return setError(error, "checkpoint: tensor " + quote(name) + " is null");
    TensorLayout l;
    l.name = name;
    l.dtype = t->dtype;
    l.shape = t->shape;
    if (!tensorBytes(l.dtype, l.shape, l.bytes))
      return setError(error, "checkpoint: tensor " + quote(name) + " has an invalid shape " +
                                 shapeString(l.shape));
    layout.push_back(std::move(l));
  }
  if (!makeDirectories(root, error))
    return false;

  // One save at a time per root: two writers would share step-<N>.tmp. The lock is released
  // when the descriptor closes, also when the process dies.
  std::string lockPath = root + "/" + kLockFile;
  int lockFd = ::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (lockFd < 0)
    return setError(error, lockPath + ": cannot open: " + errnoText(errno));
  struct LockCloser {
    int fd;
    ~LockCloser() { ::close(fd); }
  } lockCloser{lockFd};
  if (::flock(lockFd, LOCK_EX | LOCK_NB) != 0)
    return setError(error, root + ": another process is saving a checkpoint here (" +
                               lockPath + " is locked)");

  std::string name = checkpointDirName(state.step);
  std::string finalDir = root + "/" + name;
  std::string tmpDir = finalDir + ".tmp";
  std::string replaced = finalDir + ".replaced";
  // Only directories this code made are moved aside or removed below.
  for (const std::string &path : {finalDir, tmpDir, replaced}) {
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
      return setError(error, path + ": exists and is not a checkpoint directory; not "
                                    "replacing it");
  }
  // A temporary directory is what a crashed save leaves; it was never committed.
  if (pathExists(tmpDir) && !removeTree(tmpDir, error))
    return false;
  std::error_code ec;
  if (!fs::create_directory(tmpDir, ec) || ec)
    return setError(error, tmpDir + ": cannot create: " +
                               (ec ? ec.message() : std::string("already exists")));
  // Any failure from here removes the temporary directory.
  struct TmpGuard {
    std::string dir;
    bool armed = true;
    ~TmpGuard() {
      if (armed) {
        std::error_code ignored;
        fs::remove_all(dir, ignored);
      }
    }
  } guard{tmpDir};

  std::string tensorsPath = tmpDir + "/" + kTensorsFile;
  if (!writeSafetensors(tensorsPath, tensors, {{"llamac.step", std::to_string(state.step)}},
                        error))
    return false;
  stage("tensors-written");
  FileScan scan;
  if (!scanTensorsFile(tensorsPath, layout, scan, error))
    return false;

  checkpoint::Manifest manifest;
  manifest.set_format_version(kManifestVersion);
  manifest.set_model_name(state.modelName);
  manifest.mutable_config()->insert(state.config.begin(), state.config.end());
  manifest.set_step(state.step);
  manifest.set_tokens_consumed(state.tokensConsumed);
  manifest.set_seed(state.seed);
  manifest.mutable_schedule()->insert(state.schedule.begin(), state.schedule.end());
  manifest.mutable_extra()->insert(state.extra.begin(), state.extra.end());
  manifest.set_wall_time(std::chrono::duration<double>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count());
  manifest.set_tensors_file(kTensorsFile);
  manifest.set_tensors_file_size(scan.size);
  manifest.set_tensors_file_crc32c(scan.crc);
  for (size_t i = 0; i < layout.size(); ++i) {
    auto *entry = manifest.add_tensors();
    entry->set_name(layout[i].name);
    entry->set_dtype(dtypeName(layout[i].dtype));
    for (int64_t d : layout[i].shape)
      entry->add_shape(d);
    entry->set_crc32c(scan.tensorCrcs[i]);
  }
  checkpoint::ManifestFile file;
  file.set_magic(kManifestMagic);
  std::string body, bytes;
  try {
    if (!manifest.SerializeToString(&body))
      return setError(error, tmpDir + ": cannot serialise the manifest");
    file.set_manifest_crc32c(crc32c(body));
    file.set_manifest(std::move(body));
    if (!file.SerializeToString(&bytes))
      return setError(error, tmpDir + ": cannot serialise the manifest");
  } catch (const std::bad_alloc &) {
    return setError(error, tmpDir + ": out of memory serialising the manifest");
  }
  if (!writeFileAtomic(tmpDir + "/" + kManifestFile, bytes, error))
    return false;
  stage("manifest-written");
  if (!syncDirectory(tmpDir, error))
    return false;
  stage("before-rename");

  // Commit: the rename is atomic, and syncing the root makes it durable. A checkpoint of
  // the same step is moved aside first (rename cannot replace a non-empty directory).
  if (pathExists(finalDir)) {
    if (pathExists(replaced) && !removeTree(replaced, error))
      return false;
    if (::rename(finalDir.c_str(), replaced.c_str()) != 0)
      return setError(error, finalDir + ": cannot move the existing checkpoint aside: " +
                                 errnoText(errno));
  }
  if (::rename(tmpDir.c_str(), finalDir.c_str()) != 0) {
    int err = errno;
    if (pathExists(replaced)) // put the old checkpoint back
      ::rename(replaced.c_str(), finalDir.c_str());
    return setError(error, finalDir + ": cannot rename " + tmpDir + " to it: " +
                               errnoText(err));
  }
  guard.armed = false;
  if (!syncDirectory(root, error))
    return false;
  std::string warning;
  if (pathExists(replaced) && !removeTree(replaced, &warning))
    warning = "the replaced checkpoint was not removed: " + warning;
  stage("renamed");

  if (!writeFileAtomic(root + "/" + kLatestFile, name + "\n", error))
    return false;
  stage("latest-updated");

  std::vector<int64_t> pruned;
  std::string pruneError;
  if (!pruneCheckpoints(root, options.keepLast, state.step, &pruned, &pruneError))
    warning += (warning.empty() ? "" : "; ") + std::string("pruning: ") + pruneError;
  if (result) {
    result->directory = finalDir;
    result->pruned = std::move(pruned);
    result->warning = std::move(warning);
  }
  return true;
}

bool verifyCheckpoint(const std::string &dir, std::string *error) {
  checkpoint::Manifest manifest;
  std::vector<TensorLayout> layout;
  return verifyDir(dir, manifest, layout, error);
}

bool loadCheckpoint(const std::string &root, int64_t step, LoadedCheckpoint &out,
                    std::string *error) {
  if (step < 0 && !readLatestStep(root, step, error))
    return false;
  return loadDir(root + "/" + checkpointDirName(step), out, error);
}

bool loadLatestValid(const std::string &root, LoadedCheckpoint &out, std::string *error) {
  struct stat st;
  if (::stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return setError(error, root + ": no checkpoint directory");
  std::vector<int64_t> steps = listCheckpoints(root);
  std::vector<std::string> rejected;
  std::vector<int64_t> candidates;
  int64_t latest = -1;
  std::string latestError;
  if (readLatestStep(root, latest, &latestError)) {
    // `latest` first, then older checkpoints. Newer ones belong to a run that was resumed
    // from an earlier step; they are not this run's state.
    candidates.push_back(latest);
    for (auto it = steps.rbegin(); it != steps.rend(); ++it)
      if (*it < latest)
        candidates.push_back(*it);
  } else {
    if (pathExists(root + "/" + kLatestFile))
      rejected.push_back(latestError);
    candidates.assign(steps.rbegin(), steps.rend());
  }
  for (int64_t step : candidates) {
    std::string dir = root + "/" + checkpointDirName(step);
    std::string err;
    LoadedCheckpoint loaded;
    if (!loadDir(dir, loaded, &err)) {
      rejected.push_back(err);
      continue;
    }
    loaded.rejected = rejected;
    if (!rejected.empty() || latest < 0) {
      loaded.note = "loaded " + checkpointDirName(step) + " (";
      if (latest < 0)
        loaded.note += "no usable 'latest' pointer";
      else if (step != latest)
        loaded.note += "'latest' names " + checkpointDirName(latest) + ", which was rejected";
      else
        loaded.note += "as 'latest' names";
      loaded.note += ")";
      for (const auto &r : rejected)
        loaded.note += "; rejected " + r;
    }
    out = std::move(loaded);
    return true;
  }
  std::string msg = root + ": no valid checkpoint";
  if (candidates.empty() && rejected.empty())
    msg += " (none saved)";
  for (const auto &r : rejected)
    msg += "; rejected " + r;
  return setError(error, msg);
}

} // namespace llamac
