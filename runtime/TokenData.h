//===- TokenData.h - tokenised corpora, splits and batch sampling ---------*- C++ -*-===//
//
// A raw text corpus is tokenised once into a binary cache beside it and reused while the
// corpus and the tokenizer are unchanged. The token stream is split into training and
// validation parts (the validation part is the last fraction of the tokens), and batches of
// [B, T] input windows with their next-token targets are drawn from them.
//
// Which training windows a batch holds depends only on (seed, step, micro-batch, rank, row),
// through a counter-based hash, never on a generator's state: a run resumed at step k sees
// exactly the batches an uninterrupted run sees, and ranks draw independently without
// communicating. Validation batches are one fixed set of non-overlapping windows.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_TOKENDATA_H
#define LLAMAC_RUNTIME_TOKENDATA_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace llamac {

class Tokenizer;

/// A view of token ids owned elsewhere (a TokenData, a vector).
struct TokenSpan {
  const uint32_t *data = nullptr;
  size_t size = 0;
};

struct TokenDataOptions {
  /// The cache file; empty means "<corpus>.tokens".
  std::string cachePath;
  /// Never read or write a cache.
  bool useCache = true;
  /// Each non-empty line of the corpus is a document: its ids are preceded by BOS and, when
  /// eosPerLine, followed by EOS, as LLaMA's pretraining data marks documents.
  bool bosPerLine = true;
  bool eosPerLine = false;
};

/// The cache format. All integers little-endian.
///   0  char[8] "LLTOKENS"        32 u64 corpus size in bytes
///   8  u32 format version (1)    40 i64 corpus mtime, nanoseconds since the epoch
///   12 u32 bytes per id (2 or 4) 48 u64 number of ids
///   16 u32 vocabulary size       56 u32 CRC32C of the ids
///   20 u32 flags (bit 0 BOS, bit 1 EOS per line)
///   24 u64 tokenizer checksum    60 u32 CRC32C of bytes 0..59
/// then the ids, 2 bytes each when the vocabulary has at most 65536 pieces, else 4.
constexpr size_t kTokenCacheHeaderSize = 64;
constexpr uint32_t kTokenCacheVersion = 1;

class TokenData {
public:
  /// Loads the tokens of `corpusPath`: from the cache when its header matches the corpus's
  /// size and modification time, the tokenizer's checksum and vocabulary size and the
  /// options, otherwise by tokenising the corpus and rewriting the cache atomically. A cache
  /// that cannot be written is not an error (see note()). Fails for a missing or empty
  /// corpus, or one without any token.
  bool load(const std::string &corpusPath, const Tokenizer &tokenizer,
            const TokenDataOptions &options, std::string *error);

  const std::vector<uint32_t> &tokens() const { return tokens_; }
  TokenSpan span() const { return {tokens_.data(), tokens_.size()}; }
  uint32_t vocabSize() const { return vocabSize_; }
  /// True when the tokens came from the cache.
  bool fromCache() const { return fromCache_; }
  const std::string &cachePath() const { return cachePath_; }
  /// Why the cache was rebuilt, or why it could not be written; empty when it was reused.
  const std::string &note() const { return note_; }

private:
  std::vector<uint32_t> tokens_;
  uint32_t vocabSize_ = 0;
  bool fromCache_ = false;
  std::string cachePath_, note_;
};

/// Splits `all` into training tokens (the first part) and validation tokens (the last
/// `validFraction` of them, rounded down). Each part that is used must hold a window of
/// `seq` inputs and its targets (seq + 1 tokens); the validation part is not used when
/// validFraction is 0.
bool splitTokens(TokenSpan all, double validFraction, int64_t seq, TokenSpan &train,
                 TokenSpan &valid, std::string *error);

/// A batch of `batch` windows of `seq` tokens: targets[i] is the token after inputs[i].
struct Batch {
  int64_t batch = 0, seq = 0;
  /// [batch, seq], row-major.
  std::vector<int32_t> inputs, targets;
};

/// Draws training batches: row r of micro-batch m of step s on rank k is the window starting
/// at a position hashed from (seed, s, m, k, r), uniformly over every window of the span.
class BatchSampler {
public:
  /// Fails when batch or seq is not positive or the span holds fewer than seq + 1 tokens.
  bool init(TokenSpan tokens, int64_t batch, int64_t seq, uint64_t seed, std::string *error);

  Batch get(uint64_t step, uint64_t microBatch, uint64_t rank) const;
  /// Writes the same batch into caller-provided [batch * seq] arrays.
  void fill(uint64_t step, uint64_t microBatch, uint64_t rank, int32_t *inputs,
            int32_t *targets) const;
  /// The first token of row `row`'s window.
  uint64_t windowStart(uint64_t step, uint64_t microBatch, uint64_t rank, uint64_t row) const;

  int64_t batch() const { return batch_; }
  int64_t seq() const { return seq_; }
  /// The number of distinct windows (span size - seq).
  uint64_t numWindows() const { return tokens_.size - static_cast<uint64_t>(seq_); }

private:
  TokenSpan tokens_;
  int64_t batch_ = 0, seq_ = 0;
  uint64_t seed_ = 0;
};

/// The fixed validation set: the span cut into non-overlapping windows of `seq` tokens
/// (targets included), grouped `batch` at a time. When `maxBatches` limits the set, the
/// windows used are spread evenly over the span; the last batch wraps around to the first
/// windows when the windows do not fill it.
class ValidationBatches {
public:
  /// `maxBatches` 0 means as many batches as it takes to cover every window once.
  bool init(TokenSpan tokens, int64_t batch, int64_t seq, uint64_t maxBatches,
            std::string *error);

  uint64_t size() const { return numBatches_; }
  /// Batch `index` in [0, size()).
  Batch get(uint64_t index) const;
  void fill(uint64_t index, int32_t *inputs, int32_t *targets) const;
  /// The number of non-overlapping windows in the span.
  uint64_t numWindows() const { return numWindows_; }
  /// The window (0-based, in span order) that row `row` of batch `index` holds.
  uint64_t windowOf(uint64_t index, uint64_t row) const;

private:
  TokenSpan tokens_;
  int64_t batch_ = 0, seq_ = 0;
  uint64_t numWindows_ = 0, numBatches_ = 0;
};

} // namespace llamac

#endif
