//===- Tokenizer.cpp - SentencePiece tokenizers: loading, encoding, training ---------===//
//
// SentencePiece is reached only through the shim's C interface. The shim's image is
// embedded in this library (SentencePieceShimImage.cpp); the first tokenizer operation
// copies it to an anonymous memory file and dlmopen()s it into a new link-map namespace,
// once per process. Results come back through sinks that copy into this side's containers
// and never throw across the boundary.
//
// SentencePiece's own checks abort the process on a few inputs (LOG(FATAL)); everything it
// is handed here is validated first, and its util::Status messages are passed on, stripped
// of the source locations they carry.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Tokenizer.h"

#include "runtime/Checksum.h"
#include "runtime/FileUtil.h"
#include "runtime/SentencePieceShim.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

extern "C" {
extern const unsigned char llamac_spm_shim_begin[];
extern const unsigned char llamac_spm_shim_end[];
}

namespace llamac {

namespace {

//===----------------------------------------------------------------------------------===//
// Loading the shim
//===----------------------------------------------------------------------------------===//

struct Backend {
  const LlamacSpmApi *api = nullptr;
  std::string error;
};

bool writeAllFd(int fd, const unsigned char *p, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

/// dlmopen()s the shim image written to `path`.
void *openImage(const std::string &path, std::string &error) {
  // LM_ID_NEWLM: a namespace of its own, so the shim's libsentencepiece (and the protobuf
  // copy inside it) neither sees nor is seen by the libprotobuf this process links.
  void *handle = ::dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *msg = ::dlerror();
    error = msg ? msg : "dlmopen failed";
  }
  return handle;
}

Backend loadBackend() {
  Backend backend;
  const unsigned char *image = llamac_spm_shim_begin;
  size_t size = static_cast<size_t>(llamac_spm_shim_end - llamac_spm_shim_begin);
  void *handle = nullptr;
  std::string error;

  // An anonymous memory file needs no writable, executable directory.
  int fd = ::memfd_create("llamac-sentencepiece", MFD_CLOEXEC);
  if (fd >= 0) {
    if (writeAllFd(fd, image, size))
      handle = openImage("/proc/self/fd/" + std::to_string(fd), error);
    else
      error = "cannot write the memory file: " + errnoText(errno);
    ::close(fd);
  }
  if (!handle) {
    // Without memfd_create or /proc: a temporary file, removed once mapped.
    const char *tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/llamac-spm-XXXXXX";
    int tfd = ::mkstemp(pattern.data());
    if (tfd >= 0) {
      bool written = writeAllFd(tfd, image, size);
      ::close(tfd);
      std::string fileError;
      if (written)
        handle = openImage(pattern, fileError);
      else
        fileError = "cannot write " + pattern + ": " + errnoText(errno);
      ::unlink(pattern.c_str());
      if (!handle)
        error += (error.empty() ? "" : "; ") + fileError;
    } else if (error.empty()) {
      error = "cannot create a temporary file in " + pattern + ": " + errnoText(errno);
    }
  }
  if (!handle) {
    backend.error = "cannot load SentencePiece (is the libsentencepiece0 package installed?): " +
                    error;
    return backend;
  }
  auto entry = reinterpret_cast<LlamacSpmApiFunction>(::dlsym(handle, LLAMAC_SPM_API_SYMBOL));
  const LlamacSpmApi *api = entry ? entry() : nullptr;
  if (!api || api->version != LLAMAC_SPM_API_VERSION) {
    backend.error = "the embedded SentencePiece shim has the wrong interface";
    return backend;
  }
  // The handle stays open for the life of the process: tokenizers may be destroyed by static
  // destructors, and unloading a namespace buys nothing.
  backend.api = api;
  return backend;
}

const Backend &backend() {
  static const Backend instance = loadBackend();
  return instance;
}

/// Collects bytes sent through a sink. Sinks run inside the shim's calls, so they must not
/// throw; an allocation failure is recorded instead.
struct ByteSink {
  std::string bytes;
  bool failed = false;

  static void append(void *ctx, const void *data, size_t size) noexcept {
    auto *self = static_cast<ByteSink *>(ctx);
    try {
      self->bytes.append(static_cast<const char *>(data), size);
    } catch (...) {
      self->failed = true;
    }
  }
  LlamacSpmSink sink() { return {&ByteSink::append, this}; }
};

struct IdSink {
  std::vector<int32_t> *ids;
  bool failed = false;

  static void append(void *ctx, const void *data, size_t size) noexcept {
    auto *self = static_cast<IdSink *>(ctx);
    size_t count = size / sizeof(int32_t);
    if (count == 0) // memcpy's pointers must be valid even for no bytes
      return;
    try {
      size_t old = self->ids->size();
      self->ids->resize(old + count);
      std::memcpy(self->ids->data() + old, data, count * sizeof(int32_t));
    } catch (...) {
      self->failed = true;
    }
  }
  LlamacSpmSink sink() { return {&IdSink::append, this}; }
};

/// SentencePiece's status text without its source location: "Internal: ./src/x.cc(12)
/// [cond] message" becomes "message" (or "cond" when there is no message).
std::string cleanStatus(const std::string &status) {
  size_t loc = status.find(".cc(");
  if (loc == std::string::npos)
    return status;
  size_t open = status.find(") [", loc);
  if (open == std::string::npos)
    return status;
  size_t i = open + 3;
  int depth = 1;
  for (; i < status.size() && depth > 0; ++i) {
    if (status[i] == '[')
      ++depth;
    else if (status[i] == ']')
      --depth;
  }
  std::string condition = status.substr(open + 3, i - open - 4);
  std::string rest = status.substr(std::min(i, status.size()));
  size_t start = rest.find_first_not_of(' ');
  rest = start == std::string::npos ? "" : rest.substr(start);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\n'))
    rest.pop_back();
  return rest.empty() ? "check failed: " + condition : rest;
}

bool setError(std::string *error, std::string message) {
  if (error)
    *error = std::move(message);
  return false;
}

} // namespace

bool tokenizerBackendAvailable(std::string *error) {
  const Backend &b = backend();
  if (b.api)
    return true;
  return setError(error, b.error);
}

//===----------------------------------------------------------------------------------===//
// Tokenizer
//===----------------------------------------------------------------------------------===//

Tokenizer::~Tokenizer() { reset(); }

Tokenizer::Tokenizer(Tokenizer &&other) noexcept { *this = std::move(other); }

Tokenizer &Tokenizer::operator=(Tokenizer &&other) noexcept {
  if (this != &other) {
    reset();
    processor_ = std::exchange(other.processor_, nullptr);
    name_ = std::move(other.name_);
    checksum_ = other.checksum_;
    vocabSize_ = other.vocabSize_;
    bosId_ = other.bosId_;
    eosId_ = other.eosId_;
    unkId_ = other.unkId_;
    padId_ = other.padId_;
    other.reset();
  }
  return *this;
}

void Tokenizer::reset() {
  if (processor_)
    backend().api->destroy(processor_);
  processor_ = nullptr;
  name_.clear();
  checksum_ = 0;
  vocabSize_ = 0;
  bosId_ = eosId_ = unkId_ = padId_ = -1;
}

bool Tokenizer::load(const std::string &path, std::string *error) {
  reset();
  // A real model is under a few megabytes; the bound keeps a wrong path (a corpus, a
  // checkpoint) from being read whole.
  constexpr uint64_t kMaxModelBytes = uint64_t(1) << 30;
  std::string bytes;
  if (!readFileBytes(path, bytes, kMaxModelBytes, error))
    return false;
  return loadFromBytes(bytes, path, error);
}

bool Tokenizer::loadFromBytes(std::string_view bytes, const std::string &name,
                              std::string *error) {
  reset();
  auto fail = [&](const std::string &msg) { return setError(error, name + ": " + msg); };
  if (bytes.empty())
    return fail("empty file, not a SentencePiece model");
  const Backend &b = backend();
  if (!b.api)
    return fail(b.error);
  void *processor = b.api->create();
  if (!processor)
    return fail("out of memory");
  ByteSink err;
  if (!b.api->load(processor, bytes.data(), bytes.size(), err.sink())) {
    b.api->destroy(processor);
    if (err.bytes.find("ParseFromArray") != std::string::npos)
      return fail("not a SentencePiece model (the bytes do not parse as a ModelProto; is the "
                  "file truncated or of another kind?)");
    return fail("not a usable SentencePiece model: " + cleanStatus(err.bytes));
  }
  int32_t info[5];
  if (!b.api->info(processor, info) || info[0] <= 0) {
    b.api->destroy(processor);
    return fail("the SentencePiece model has no pieces");
  }
  processor_ = processor;
  name_ = name;
  checksum_ = fnv1a64(bytes);
  vocabSize_ = info[0];
  bosId_ = info[1];
  eosId_ = info[2];
  unkId_ = info[3];
  padId_ = info[4];
  return true;
}

bool Tokenizer::encode(std::string_view text, bool addBos, std::vector<int32_t> &ids,
                       std::string *error) const {
  ids.clear();
  if (!processor_)
    return setError(error, "encode: no tokenizer loaded");
  if (addBos) {
    if (bosId_ < 0)
      return setError(error, name_ + ": the tokenizer has no BOS piece");
    ids.push_back(bosId_);
  }
  IdSink out{&ids};
  ByteSink err;
  if (!backend().api->encode(processor_, text.data(), text.size(), out.sink(), err.sink()))
    return setError(error, name_ + ": cannot encode: " + cleanStatus(err.bytes));
  if (out.failed)
    return setError(error, name_ + ": out of memory encoding " +
                               std::to_string(text.size()) + " bytes");
  return true;
}

bool Tokenizer::decode(const std::vector<int32_t> &ids, std::string &text,
                       std::string *error) const {
  text.clear();
  if (!processor_)
    return setError(error, "decode: no tokenizer loaded");
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocabSize_)
      return setError(error, name_ + ": token id " + std::to_string(ids[i]) + " at position " +
                                 std::to_string(i) + " is outside the vocabulary [0, " +
                                 std::to_string(vocabSize_) + ")");
  ByteSink out, err;
  if (!backend().api->decode(processor_, ids.data(), ids.size(), out.sink(), err.sink()))
    return setError(error, name_ + ": cannot decode: " + cleanStatus(err.bytes));
  if (out.failed)
    return setError(error, name_ + ": out of memory decoding");
  text = std::move(out.bytes);
  return true;
}

std::string Tokenizer::piece(int32_t id) const {
  if (!processor_ || id < 0 || id >= vocabSize_)
    return "";
  ByteSink out;
  int32_t kind = 0;
  if (!backend().api->piece(processor_, id, out.sink(), &kind))
    return "";
  return out.bytes;
}

Tokenizer::PieceKind Tokenizer::pieceKind(int32_t id) const {
  if (!processor_ || id < 0 || id >= vocabSize_)
    return PieceKind::Unused;
  int32_t kind = LLAMAC_SPM_UNUSED;
  if (!backend().api->piece(processor_, id, LlamacSpmSink{nullptr, nullptr}, &kind))
    return PieceKind::Unused;
  switch (kind) {
  case LLAMAC_SPM_NORMAL: return PieceKind::Normal;
  case LLAMAC_SPM_UNKNOWN: return PieceKind::Unknown;
  case LLAMAC_SPM_CONTROL: return PieceKind::Control;
  case LLAMAC_SPM_BYTE: return PieceKind::Byte;
  default: return PieceKind::Unused;
  }
}

//===----------------------------------------------------------------------------------===//
// Training
//===----------------------------------------------------------------------------------===//

namespace {

struct SampleStats {
  uint64_t lines = 0;
  uint64_t tooLong = 0;
  uint64_t binary = 0;
};

/// Appends the usable lines of `chunk` to `sample`, '\n'-separated. `dropFirst` and
/// `dropLast` drop the partial lines at a stripe's ends.
void addLines(std::string_view chunk, bool dropFirst, bool dropLast, uint32_t maxLineBytes,
              std::string &sample, SampleStats &stats) {
  if (dropFirst) {
    size_t nl = chunk.find('\n');
    chunk.remove_prefix(nl == std::string_view::npos ? chunk.size() : nl + 1);
  }
  if (dropLast) {
    size_t nl = chunk.rfind('\n');
    chunk = chunk.substr(0, nl == std::string_view::npos ? 0 : nl + 1);
  }
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    std::string_view line = chunk.substr(0, nl);
    chunk.remove_prefix(nl == std::string_view::npos ? chunk.size() : nl + 1);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (line.empty())
      continue;
    if (line.size() > maxLineBytes) {
      ++stats.tooLong;
      continue;
    }
    // A NUL byte means binary data, which only teaches the model noise.
    if (line.find('\0') != std::string_view::npos) {
      ++stats.binary;
      continue;
    }
    sample.append(line);
    sample.push_back('\n');
    ++stats.lines;
  }
}

bool readTrainingSample(const std::string &path, const TokenizerTrainOptions &options,
                        std::string &sample, SampleStats &stats, std::string *error) {
  auto fail = [&](const std::string &msg) {
    return setError(error, "corpus " + path + ": " + msg);
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail("cannot open: " + errnoText(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("not a regular file");
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return fail("the file is empty");
  }
  // Whole corpus, or kStripes evenly spaced stripes of whole lines.
  constexpr uint64_t kStripes = 64;
  bool whole = size <= options.maxCorpusBytes;
  uint64_t stripes = whole ? 1 : kStripes;
  uint64_t stripeBytes = whole ? size : options.maxCorpusBytes / kStripes;
  std::string chunk;
  try {
    for (uint64_t s = 0; s < stripes; ++s) {
      uint64_t offset = whole ? 0 : s * (size / kStripes);
      uint64_t want = std::min(stripeBytes, size - offset);
      chunk.resize(static_cast<size_t>(want));
      size_t got = 0;
      while (got < chunk.size()) {
        ssize_t n = ::pread(fd, chunk.data() + got, chunk.size() - got,
                            static_cast<off_t>(offset + got));
        if (n < 0 && errno == EINTR)
          continue;
        if (n < 0) {
          int err = errno;
          ::close(fd);
          return fail("read error: " + errnoText(err));
        }
        if (n == 0)
          break;
        got += static_cast<size_t>(n);
      }
      chunk.resize(got);
      bool atEnd = offset + got >= size;
      addLines(chunk, /*dropFirst=*/offset > 0, /*dropLast=*/!atEnd, options.maxLineBytes,
               sample, stats);
    }
  } catch (const std::bad_alloc &) {
    ::close(fd);
    return fail("out of memory reading the training sample");
  }
  ::close(fd);
  if (stats.lines == 0) {
    std::string why = "no non-empty line to train on";
    if (stats.tooLong)
      why += " (" + std::to_string(stats.tooLong) + " lines longer than " +
             std::to_string(options.maxLineBytes) + " bytes were left out)";
    if (stats.binary)
      why += " (" + std::to_string(stats.binary) + " lines with NUL bytes were left out)";
    return fail(why);
  }
  return true;
}

} // namespace

bool trainTokenizer(const std::string &corpusPath, int32_t vocabSize,
                    const std::string &outputPath, std::string *error,
                    const TokenizerTrainOptions &options) {
  std::string what = "cannot train a " + std::to_string(vocabSize) + "-piece tokenizer on " +
                     corpusPath + ": ";
  if (vocabSize < kMinTrainVocabSize)
    return setError(error, what + "the vocabulary is too small: byte fallback needs 256 byte "
                                  "pieces plus <unk>, <s> and </s>, so at least " +
                                  std::to_string(kMinTrainVocabSize) + " pieces");
  if (vocabSize > kMaxTrainVocabSize)
    return setError(error, what + "the vocabulary is larger than the " +
                               std::to_string(kMaxTrainVocabSize) + " pieces supported");
  if (options.maxCorpusBytes == 0)
    return setError(error, what + "maxCorpusBytes is 0");
  if (options.maxLineBytes == 0)
    return setError(error, what + "maxLineBytes is 0");
  if (!(options.characterCoverage >= 0 && options.characterCoverage <= 1))
    return setError(error, what + "character coverage must be in (0, 1] (or 0 for automatic)");

  // Check the destination before spending time on training.
  std::string outDir = parentDirectory(outputPath);
  struct stat st;
  if (::stat(outDir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return setError(error, outputPath + ": cannot write the model: directory " + outDir +
                               " does not exist");
  struct stat corpusStat, outStat;
  if (::stat(corpusPath.c_str(), &corpusStat) == 0 &&
      ::stat(outputPath.c_str(), &outStat) == 0 && corpusStat.st_dev == outStat.st_dev &&
      corpusStat.st_ino == outStat.st_ino)
    return setError(error, outputPath + ": the model would overwrite the corpus");

  std::string sample;
  SampleStats stats;
  if (!readTrainingSample(corpusPath, options, sample, stats, error))
    return false;
  const Backend &b = backend();
  if (!b.api)
    return setError(error, what + b.error);

  double coverage = options.characterCoverage > 0       ? options.characterCoverage
                    : sample.size() < (uint64_t(1) << 20) ? 1.0
                                                          : 0.99995;
  char coverageText[32];
  std::snprintf(coverageText, sizeof coverageText, "%.17g", coverage);
  // LLaMA's trainer options (as recorded in its tokenizer.model), with a single thread and
  // no shuffling so that training is deterministic, and the sample bounded here.
  const std::vector<std::pair<std::string, std::string>> spec = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(vocabSize)},
      {"character_coverage", coverageText},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"split_by_unicode_script", "true"},
      {"split_by_whitespace", "true"},
      {"split_by_number", "true"},
      {"max_sentencepiece_length", "16"},
      {"add_dummy_prefix", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"remove_extra_whitespaces", "false"},
      {"normalization_rule_name", "identity"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"hard_vocab_limit", "true"},
      {"input_sentence_size", std::to_string(stats.lines)},
      {"shuffle_input_sentence", "false"},
      {"max_sentence_length", std::to_string(options.maxLineBytes)},
      {"num_threads", "1"},
      {"minloglevel", "2"},
  };
  std::vector<const char *> keys, values;
  for (const auto &[k, v] : spec) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  ByteSink model, err;
  if (!b.api->train(keys.data(), values.data(), spec.size(), sample.data(), sample.size(),
                    model.sink(), err.sink()))
    return setError(error, what + cleanStatus(err.bytes));
  if (model.failed)
    return setError(error, what + "out of memory");

  // Only a model that loads and has the requested size replaces the output.
  Tokenizer check;
  std::string checkError;
  if (!check.loadFromBytes(model.bytes, outputPath, &checkError))
    return setError(error, what + "the trained model does not load: " + checkError);
  if (check.vocabSize() != vocabSize)
    return setError(error, what + "the trained model has " +
                               std::to_string(check.vocabSize()) + " pieces");
  return writeFileAtomic(outputPath, model.bytes, error);
}

} // namespace llamac
