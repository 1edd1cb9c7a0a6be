//===- Tokenizer.h - SentencePiece tokenizers: loading, encoding, training -*- C++ -*-===//
//
// A thin class over SentencePiece's processor, as LLaMA uses it: load a .model file,
// encode text to ids (optionally preceded by BOS), decode ids, and the vocabulary's size,
// special ids and pieces. trainTokenizer() trains a byte-fallback BPE model with LLaMA's
// options on a bounded sample of a corpus.
//
// SentencePiece runs in a private link-map namespace (SentencePieceShim.h says why), so
// this header exposes none of its types. Every failure, from a missing file to a corrupt
// model or a corpus too small for the vocabulary, is reported as a message; none aborts.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_TOKENIZER_H
#define LLAMAC_RUNTIME_TOKENIZER_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llamac {

/// False, with the reason in *error, when SentencePiece cannot be loaded in this process
/// (the library is not installed, or the process cannot create a link-map namespace).
bool tokenizerBackendAvailable(std::string *error);

class Tokenizer {
public:
  enum class PieceKind { Normal, Unknown, Control, Byte, Unused };

  Tokenizer() = default;
  ~Tokenizer();
  Tokenizer(Tokenizer &&other) noexcept;
  Tokenizer &operator=(Tokenizer &&other) noexcept;
  Tokenizer(const Tokenizer &) = delete;
  Tokenizer &operator=(const Tokenizer &) = delete;

  /// Loads a SentencePiece .model file. On failure the tokenizer is left empty and *error
  /// names the file and the problem (missing, not a model, a model without <unk>, ...).
  bool load(const std::string &path, std::string *error);
  /// Loads a serialized model held in memory; `name` is used in messages.
  bool loadFromBytes(std::string_view bytes, const std::string &name, std::string *error);
  bool isLoaded() const { return processor_ != nullptr; }

  /// The ids of `text`, preceded by BOS when `addBos`. Thread-safe.
  bool encode(std::string_view text, bool addBos, std::vector<int32_t> &ids,
              std::string *error) const;
  /// The text of `ids`; BOS, EOS and other control pieces decode to nothing. An id outside
  /// the vocabulary is an error naming its position. Thread-safe.
  bool decode(const std::vector<int32_t> &ids, std::string &text, std::string *error) const;

  /// The number of pieces; ids are in [0, vocabSize()).
  int32_t vocabSize() const { return vocabSize_; }
  /// Special ids; -1 when the model has no such piece.
  int32_t bosId() const { return bosId_; }
  int32_t eosId() const { return eosId_; }
  int32_t unkId() const { return unkId_; }
  int32_t padId() const { return padId_; }
  /// The piece of `id` ("▁the", "<0x0A>", "<s>"), or "" when `id` is out of range.
  std::string piece(int32_t id) const;
  /// The kind of piece `id`; Unused for an id out of range.
  PieceKind pieceKind(int32_t id) const;

  /// FNV-1a 64 of the model's bytes: identifies the tokenizer in token caches.
  uint64_t checksum() const { return checksum_; }
  /// The file loaded (or the name given to loadFromBytes).
  const std::string &name() const { return name_; }

private:
  void reset();

  void *processor_ = nullptr;
  std::string name_;
  uint64_t checksum_ = 0;
  int32_t vocabSize_ = 0, bosId_ = -1, eosId_ = -1, unkId_ = -1, padId_ = -1;
};

struct TokenizerTrainOptions {
  /// At most this many bytes of the corpus are used: the whole corpus when it is smaller,
  /// otherwise whole lines from 64 evenly spaced stripes, so that a long corpus is sampled
  /// throughout and not only at its start.
  uint64_t maxCorpusBytes = 4u << 20;
  /// SentencePiece's character_coverage; 0 picks 1.0 for samples under 1 MiB (where every
  /// character is frequent enough to keep) and LLaMA's 0.99995 otherwise.
  double characterCoverage = 0;
  /// Lines longer than this are left out (SentencePiece's max_sentence_length).
  uint32_t maxLineBytes = 16384;
};

/// The smallest vocabulary trainTokenizer accepts: 256 byte pieces, <unk>, <s>, </s> and at
/// least one learnt piece.
constexpr int32_t kMinTrainVocabSize = 256 + 3 + 1;
/// The largest it accepts.
constexpr int32_t kMaxTrainVocabSize = 1 << 20;

/// Trains a SentencePiece BPE model with LLaMA's options (byte fallback, split digits,
/// identity normalisation, dummy prefix, whitespace kept as is; unk 0, bos 1, eos 2, no pad)
/// on `corpusPath` and writes it to `outputPath` atomically: an existing file there is
/// replaced only by a complete, loadable model. Training is deterministic: the same corpus
/// and options give the same model bytes. Fails with a message for a missing or empty corpus
/// and for a vocabulary too small or too large for the corpus.
bool trainTokenizer(const std::string &corpusPath, int32_t vocabSize,
                    const std::string &outputPath, std::string *error,
                    const TokenizerTrainOptions &options = {});

} // namespace llamac

#endif
