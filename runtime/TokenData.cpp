//===- TokenData.cpp - tokenised corpora, splits and batch sampling ------------------===//
//
// The corpus is read in 1 MiB chunks and encoded line by line, so memory holds the ids and
// one chunk, never the text. The cache is written through AtomicFileWriter: its header is
// completed (count and CRCs) only after every id is written, then the file is synced and
// renamed into place, so a crash leaves either the old cache or none.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/TokenData.h"

#include "runtime/Checksum.h"
#include "runtime/FileUtil.h"
#include "runtime/Tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <new>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace llamac {

namespace {

constexpr char kMagic[8] = {'L', 'L', 'T', 'O', 'K', 'E', 'N', 'S'};
constexpr uint32_t kFlagBos = 1, kFlagEos = 2;

bool setError(std::string *error, std::string message) {
  if (error)
    *error = std::move(message);
  return false;
}

void storeLE(unsigned char *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    p[i] = static_cast<unsigned char>(v >> (8 * i));
}

uint64_t loadLE(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

/// What identifies the tokens a cache must hold.
struct CacheKey {
  uint64_t corpusSize = 0;
  int64_t corpusMtimeNs = 0;
  uint64_t tokenizerChecksum = 0;
  uint32_t vocabSize = 0;
  uint32_t flags = 0;
};

bool statCorpus(const std::string &path, CacheKey &key, std::string *error) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return setError(error, "corpus " + path + ": cannot open: " + errnoText(errno));
  if (!S_ISREG(st.st_mode))
    return setError(error, "corpus " + path + ": not a regular file");
  key.corpusSize = static_cast<uint64_t>(st.st_size);
  key.corpusMtimeNs = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return true;
}

/// Reads the cache when it matches `key`; otherwise returns false with `reason` saying why it
/// cannot be used.
bool readCache(const std::string &path, const CacheKey &key, std::vector<uint32_t> &tokens,
               std::string &reason) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    reason = errno == ENOENT ? "there was no cache yet" : "cannot stat it: " + errnoText(errno);
    return false;
  }
  // A cache holds at most a few ids per corpus byte (byte fallback, BOS and EOS per line).
  uint64_t limit = kTokenCacheHeaderSize + 4 * (3 * key.corpusSize + 16);
  std::string bytes, readError;
  if (!readFileBytes(path, bytes, limit, &readError)) {
    reason = readError;
    return false;
  }
  if (bytes.size() < kTokenCacheHeaderSize) {
    reason = "it is truncated (" + std::to_string(bytes.size()) + " bytes)";
    return false;
  }
  const auto *h = reinterpret_cast<const unsigned char *>(bytes.data());
  if (std::memcmp(h, kMagic, 8) != 0) {
    reason = "it is not a llamac token cache";
    return false;
  }
  if (crc32c(std::string_view(bytes.data(), 60)) != loadLE(h + 60, 4)) {
    reason = "its header is corrupt (CRC mismatch)";
    return false;
  }
  uint32_t version = static_cast<uint32_t>(loadLE(h + 8, 4));
  uint32_t idBytes = static_cast<uint32_t>(loadLE(h + 12, 4));
  uint32_t vocab = static_cast<uint32_t>(loadLE(h + 16, 4));
  uint32_t flags = static_cast<uint32_t>(loadLE(h + 20, 4));
  uint64_t tokenizer = loadLE(h + 24, 8);
  uint64_t corpusSize = loadLE(h + 32, 8);
  int64_t mtime = static_cast<int64_t>(loadLE(h + 40, 8));
  uint64_t count = loadLE(h + 48, 8);
  uint32_t idsCrc = static_cast<uint32_t>(loadLE(h + 56, 4));
  if (version != kTokenCacheVersion) {
    reason = "it has format version " + std::to_string(version) + ", not " +
             std::to_string(kTokenCacheVersion);
    return false;
  }
  if (corpusSize != key.corpusSize || mtime != key.corpusMtimeNs) {
    reason = "the corpus changed since it was built";
    return false;
  }
  if (tokenizer != key.tokenizerChecksum || vocab != key.vocabSize) {
    reason = "it was built with another tokenizer";
    return false;
  }
  if (flags != key.flags) {
    reason = "it was built with other BOS/EOS options";
    return false;
  }
  if ((idBytes != 2 && idBytes != 4) || (idBytes == 2 && vocab > 65536)) {
    reason = "its header names " + std::to_string(idBytes) + "-byte ids";
    return false;
  }
  uint64_t payload = bytes.size() - kTokenCacheHeaderSize;
  if (payload % idBytes != 0 || payload / idBytes != count) {
    reason = "it is truncated or has extra bytes (" + std::to_string(payload) +
             " bytes of ids for " + std::to_string(count) + " ids)";
    return false;
  }
  if (crc32c(std::string_view(bytes.data() + kTokenCacheHeaderSize, payload)) != idsCrc) {
    reason = "its ids are corrupt (CRC mismatch)";
    return false;
  }
  std::vector<uint32_t> ids(static_cast<size_t>(count));
  const unsigned char *p = h + kTokenCacheHeaderSize;
  for (uint64_t i = 0; i < count; ++i, p += idBytes) {
    uint32_t id = static_cast<uint32_t>(loadLE(p, static_cast<int>(idBytes)));
    if (id >= vocab) {
      reason = "it holds id " + std::to_string(id) + " outside the vocabulary";
      return false;
    }
    ids[i] = id;
  }
  tokens.swap(ids);
  return true;
}

bool writeCache(const std::string &path, const CacheKey &key,
                const std::vector<uint32_t> &tokens, std::string *error) {
  uint32_t idBytes = key.vocabSize <= 65536 ? 2 : 4;
  AtomicFileWriter writer;
  if (!writer.open(path, error))
    return false;
  unsigned char header[kTokenCacheHeaderSize] = {};
  if (!writer.write(header, sizeof header, error))
    return false;
  // Ids in 1 MiB blocks, with the CRC computed over exactly the bytes written.
  std::vector<unsigned char> block;
  block.reserve(1 << 20);
  uint32_t crc = 0;
  auto flush = [&]() {
    crc = crc32cExtend(crc, block.data(), block.size());
    bool ok = writer.write(block.data(), block.size(), error);
    block.clear();
    return ok;
  };
  for (uint32_t id : tokens) {
    unsigned char b[4];
    storeLE(b, id, static_cast<int>(idBytes));
    block.insert(block.end(), b, b + idBytes);
    if (block.size() >= (1 << 20) && !flush())
      return false;
  }
  if (!flush())
    return false;
  std::memcpy(header, kMagic, 8);
  storeLE(header + 8, kTokenCacheVersion, 4);
  storeLE(header + 12, idBytes, 4);
  storeLE(header + 16, key.vocabSize, 4);
  storeLE(header + 20, key.flags, 4);
  storeLE(header + 24, key.tokenizerChecksum, 8);
  storeLE(header + 32, key.corpusSize, 8);
  storeLE(header + 40, static_cast<uint64_t>(key.corpusMtimeNs), 8);
  storeLE(header + 48, tokens.size(), 8);
  storeLE(header + 56, crc, 4);
  storeLE(header + 60, crc32c(std::string_view(reinterpret_cast<char *>(header), 60)), 4);
  return writer.writeAt(0, header, sizeof header, error) && writer.commit(error);
}

/// Encodes every non-empty line of the corpus.
bool tokenizeCorpus(const std::string &path, const Tokenizer &tokenizer, bool bos, bool eos,
                    std::vector<uint32_t> &out, std::string *error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return setError(error, "corpus " + path + ": cannot open: " + errnoText(errno));
  std::vector<int32_t> ids;
  std::string buffer, encodeError;
  uint64_t lineNumber = 0;
  auto encodeLine = [&](std::string_view line) {
    ++lineNumber;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (line.empty())
      return true;
    if (!tokenizer.encode(line, bos, ids, &encodeError))
      return setError(error, "corpus " + path + ": line " + std::to_string(lineNumber) +
                                 ": " + encodeError);
    out.insert(out.end(), ids.begin(), ids.end());
    if (eos)
      out.push_back(static_cast<uint32_t>(tokenizer.eosId()));
    return true;
  };
  bool ok = true;
  try {
    constexpr size_t kChunk = 1 << 20;
    std::string chunk(kChunk, '\0');
    for (;;) {
      ssize_t n = ::read(fd, chunk.data(), kChunk);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        ok = setError(error, "corpus " + path + ": read error: " + errnoText(errno));
        break;
      }
      if (n == 0) {
        ok = buffer.empty() || encodeLine(buffer);
        break;
      }
      buffer.append(chunk.data(), static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; ok && (nl = buffer.find('\n', start)) != std::string::npos;
           start = nl + 1)
        ok = encodeLine(std::string_view(buffer).substr(start, nl - start));
      if (!ok)
        break;
      buffer.erase(0, start);
    }
  } catch (const std::bad_alloc &) {
    ok = setError(error, "corpus " + path + ": out of memory after " +
                             std::to_string(out.size()) + " tokens");
  }
  ::close(fd);
  return ok;
}

uint64_t mulHigh(uint64_t a, uint64_t b) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
}

} // namespace

//===----------------------------------------------------------------------------------===//
// TokenData
//===----------------------------------------------------------------------------------===//

bool TokenData::load(const std::string &corpusPath, const Tokenizer &tokenizer,
                     const TokenDataOptions &options, std::string *error) {
  tokens_.clear();
  fromCache_ = false;
  note_.clear();
  cachePath_ = options.useCache
                   ? (options.cachePath.empty() ? corpusPath + ".tokens" : options.cachePath)
                   : "";
  if (!tokenizer.isLoaded())
    return setError(error, "corpus " + corpusPath + ": no tokenizer loaded");
  if (options.bosPerLine && tokenizer.bosId() < 0)
    return setError(error, tokenizer.name() + ": the tokenizer has no BOS piece");
  if (options.eosPerLine && tokenizer.eosId() < 0)
    return setError(error, tokenizer.name() + ": the tokenizer has no EOS piece");

  CacheKey key;
  if (!statCorpus(corpusPath, key, error))
    return false;
  if (key.corpusSize == 0)
    return setError(error, "corpus " + corpusPath + " is empty");
  key.tokenizerChecksum = tokenizer.checksum();
  key.vocabSize = static_cast<uint32_t>(tokenizer.vocabSize());
  key.flags = (options.bosPerLine ? kFlagBos : 0) | (options.eosPerLine ? kFlagEos : 0);
  vocabSize_ = key.vocabSize;

  if (options.useCache) {
    struct stat corpusStat, cacheStat;
    if (::stat(corpusPath.c_str(), &corpusStat) == 0 &&
        ::stat(cachePath_.c_str(), &cacheStat) == 0 && corpusStat.st_dev == cacheStat.st_dev &&
        corpusStat.st_ino == cacheStat.st_ino)
      return setError(error, "token cache " + cachePath_ + " is the corpus itself");
    std::string reason;
    if (readCache(cachePath_, key, tokens_, reason)) {
      fromCache_ = true;
      return true;
    }
    note_ = "rebuilt the token cache " + cachePath_ + ": " + reason;
  }

  std::vector<uint32_t> tokens;
  if (!tokenizeCorpus(corpusPath, tokenizer, options.bosPerLine, options.eosPerLine, tokens,
                      error))
    return false;
  // A corpus rewritten while it was read would give a cache that matches neither version.
  CacheKey after = key;
  if (!statCorpus(corpusPath, after, error))
    return false;
  if (after.corpusSize != key.corpusSize || after.corpusMtimeNs != key.corpusMtimeNs)
    return setError(error, "corpus " + corpusPath + " changed while it was being tokenised");
  if (tokens.empty())
    return setError(error, "corpus " + corpusPath + " has no tokens (every line is empty)");
  tokens_.swap(tokens);

  if (options.useCache) {
    std::string writeError;
    if (!writeCache(cachePath_, key, tokens_, &writeError))
      note_ += (note_.empty() ? "" : "; ") + std::string("could not write the token cache: ") +
               writeError;
  }
  return true;
}

bool splitTokens(TokenSpan all, double validFraction, int64_t seq, TokenSpan &train,
                 TokenSpan &valid, std::string *error) {
  if (!(validFraction >= 0 && validFraction < 1))
    return setError(error, "the validation fraction must be in [0, 1), not " +
                               std::to_string(validFraction));
  if (seq <= 0)
    return setError(error, "the sequence length must be positive, not " + std::to_string(seq));
  uint64_t need = static_cast<uint64_t>(seq) + 1;
  if (all.size < need)
    return setError(error, "corpus has " + std::to_string(all.size) +
                               " tokens, fewer than seq+1 = " + std::to_string(need));
  auto validSize = static_cast<size_t>(std::floor(static_cast<double>(all.size) * validFraction));
  size_t trainSize = all.size - validSize;
  if (trainSize < need)
    return setError(error, "the training split has " + std::to_string(trainSize) +
                               " tokens, fewer than seq+1 = " + std::to_string(need) +
                               "; lower the validation fraction or the sequence length");
  if (validFraction > 0 && validSize < need)
    return setError(error, "the validation split (the last " + std::to_string(validFraction) +
                               " of " + std::to_string(all.size) + " tokens) has " +
                               std::to_string(validSize) + " tokens, fewer than seq+1 = " +
                               std::to_string(need) +
                               "; use a larger corpus or validation fraction, or a shorter "
                               "sequence");
  train = {all.data, trainSize};
  valid = {all.data + trainSize, validSize};
  return true;
}

//===----------------------------------------------------------------------------------===//
// Batches
//===----------------------------------------------------------------------------------===//

namespace {

bool checkShape(TokenSpan tokens, int64_t batch, int64_t seq, const char *what,
                std::string *error) {
  if (batch <= 0)
    return setError(error, "the batch size must be positive, not " + std::to_string(batch));
  if (seq <= 0)
    return setError(error, "the sequence length must be positive, not " + std::to_string(seq));
  uint64_t need = static_cast<uint64_t>(seq) + 1;
  if (tokens.size < need)
    return setError(error, std::string(what) + " has " + std::to_string(tokens.size) +
                               " tokens, fewer than seq+1 = " + std::to_string(need));
  if (!tokens.data)
    return setError(error, std::string(what) + " has no data");
  return true;
}

void copyWindow(const uint32_t *src, int64_t seq, int32_t *inputs, int32_t *targets) {
  for (int64_t t = 0; t < seq; ++t) {
    inputs[t] = static_cast<int32_t>(src[t]);
    targets[t] = static_cast<int32_t>(src[t + 1]);
  }
}

Batch makeBatch(int64_t batch, int64_t seq) {
  Batch b;
  b.batch = batch;
  b.seq = seq;
  b.inputs.resize(static_cast<size_t>(batch * seq));
  b.targets.resize(static_cast<size_t>(batch * seq));
  return b;
}

} // namespace

bool BatchSampler::init(TokenSpan tokens, int64_t batch, int64_t seq, uint64_t seed,
                        std::string *error) {
  if (!checkShape(tokens, batch, seq, "the training data", error))
    return false;
  tokens_ = tokens;
  batch_ = batch;
  seq_ = seq;
  seed_ = seed;
  return true;
}

uint64_t BatchSampler::windowStart(uint64_t step, uint64_t microBatch, uint64_t rank,
                                   uint64_t row) const {
  // One splitmix64 round per coordinate: each round is a bijection, so distinct coordinates
  // give unrelated hashes, and no state carries from one batch to the next.
  uint64_t h = splitmix64(seed_);
  h = splitmix64(h ^ step);
  h = splitmix64(h ^ microBatch);
  h = splitmix64(h ^ rank);
  h = splitmix64(h ^ row);
  // Lemire's multiply-shift maps the hash onto [0, numWindows) without a division; its bias
  // is below numWindows / 2^64.
  return mulHigh(h, numWindows());
}

void BatchSampler::fill(uint64_t step, uint64_t microBatch, uint64_t rank, int32_t *inputs,
                        int32_t *targets) const {
  for (int64_t r = 0; r < batch_; ++r) {
    uint64_t start = windowStart(step, microBatch, rank, static_cast<uint64_t>(r));
    copyWindow(tokens_.data + start, seq_, inputs + r * seq_, targets + r * seq_);
  }
}

Batch BatchSampler::get(uint64_t step, uint64_t microBatch, uint64_t rank) const {
  Batch b = makeBatch(batch_, seq_);
  fill(step, microBatch, rank, b.inputs.data(), b.targets.data());
  return b;
}

bool ValidationBatches::init(TokenSpan tokens, int64_t batch, int64_t seq,
                             uint64_t maxBatches, std::string *error) {
  if (!checkShape(tokens, batch, seq, "the validation split", error))
    return false;
  tokens_ = tokens;
  batch_ = batch;
  seq_ = seq;
  numWindows_ = (tokens.size - 1) / static_cast<uint64_t>(seq);
  uint64_t b = static_cast<uint64_t>(batch);
  numBatches_ = (numWindows_ + b - 1) / b;
  if (maxBatches > 0)
    numBatches_ = std::min(numBatches_, maxBatches);
  return true;
}

uint64_t ValidationBatches::windowOf(uint64_t index, uint64_t row) const {
  uint64_t rows = numBatches_ * static_cast<uint64_t>(batch_);
  uint64_t r = index * static_cast<uint64_t>(batch_) + row;
  if (rows < numWindows_) // a limited set: spread over the whole split
    return static_cast<uint64_t>((static_cast<unsigned __int128>(r) * numWindows_) / rows);
  return r % numWindows_;
}

void ValidationBatches::fill(uint64_t index, int32_t *inputs, int32_t *targets) const {
  if (numBatches_ == 0)
    return;
  index %= numBatches_; // out of range: wrap rather than read outside the split
  for (int64_t r = 0; r < batch_; ++r) {
    uint64_t start = windowOf(index, static_cast<uint64_t>(r)) * static_cast<uint64_t>(seq_);
    copyWindow(tokens_.data + start, seq_, inputs + r * seq_, targets + r * seq_);
  }
}

Batch ValidationBatches::get(uint64_t index) const {
  Batch b = makeBatch(batch_, seq_);
  fill(index, b.inputs.data(), b.targets.data());
  return b;
}

} // namespace llamac
