//===- SentencePieceShim.cpp - SentencePiece behind a C interface -------------------===//
//
// Built as its own shared library, linked with SentencePiece and nothing of llamac, and
// loaded by Tokenizer.cpp into a private namespace (see SentencePieceShim.h for why). Every
// entry point catches everything: an exception must not unwind into the other namespace.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/SentencePieceShim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <exception>
#include <new>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

using sentencepiece::SentencePieceProcessor;

void send(LlamacSpmSink sink, std::string_view bytes) {
  if (sink.fn)
    sink.fn(sink.ctx, bytes.data(), bytes.size());
}

int fail(LlamacSpmSink error, std::string_view message) {
  send(error, message);
  return 0;
}

int failStatus(LlamacSpmSink error, const sentencepiece::util::Status &status) {
  return fail(error, status.ToString());
}

/// Feeds the trainer sentences held in memory, so that the caller decides which part of the
/// corpus is read and how much.
class VectorSentenceIterator : public sentencepiece::SentenceIterator {
public:
  explicit VectorSentenceIterator(const std::vector<std::string> &sentences)
      : sentences_(sentences) {}
  bool done() const override { return next_ >= sentences_.size(); }
  void Next() override { ++next_; }
  const std::string &value() const override { return sentences_[next_]; }
  sentencepiece::util::Status status() const override { return {}; }

private:
  const std::vector<std::string> &sentences_;
  size_t next_ = 0;
};

void *create() {
  try {
    return new SentencePieceProcessor();
  } catch (...) {
    return nullptr;
  }
}

void destroy(void *processor) { delete static_cast<SentencePieceProcessor *>(processor); }

int load(void *processor, const char *bytes, size_t size, LlamacSpmSink error) {
  try {
    auto *sp = static_cast<SentencePieceProcessor *>(processor);
    auto status = sp->LoadFromSerializedProto(std::string_view(bytes, size));
    return status.ok() ? 1 : failStatus(error, status);
  } catch (const std::bad_alloc &) {
    return fail(error, "out of memory");
  } catch (const std::exception &e) {
    return fail(error, e.what());
  } catch (...) {
    return fail(error, "unknown exception");
  }
}

int encode(const void *processor, const char *text, size_t size, LlamacSpmSink ids,
           LlamacSpmSink error) {
  try {
    const auto *sp = static_cast<const SentencePieceProcessor *>(processor);
    std::vector<int> out;
    auto status = sp->Encode(std::string_view(text, size), &out);
    if (!status.ok())
      return failStatus(error, status);
    static_assert(sizeof(int) == sizeof(int32_t), "ids are sent as int32_t");
    if (ids.fn)
      ids.fn(ids.ctx, out.data(), out.size() * sizeof(int));
    return 1;
  } catch (const std::bad_alloc &) {
    return fail(error, "out of memory");
  } catch (const std::exception &e) {
    return fail(error, e.what());
  } catch (...) {
    return fail(error, "unknown exception");
  }
}

int decode(const void *processor, const int32_t *ids, size_t count, LlamacSpmSink text,
           LlamacSpmSink error) {
  try {
    const auto *sp = static_cast<const SentencePieceProcessor *>(processor);
    std::vector<int> in(ids, ids + count);
    std::string out;
    auto status = sp->Decode(in, &out);
    if (!status.ok())
      return failStatus(error, status);
    send(text, out);
    return 1;
  } catch (const std::bad_alloc &) {
    return fail(error, "out of memory");
  } catch (const std::exception &e) {
    return fail(error, e.what());
  } catch (...) {
    return fail(error, "unknown exception");
  }
}

int info(const void *processor, int32_t out[5]) {
  try {
    const auto *sp = static_cast<const SentencePieceProcessor *>(processor);
    if (!sp->status().ok())
      return 0;
    out[0] = sp->GetPieceSize();
    out[1] = sp->bos_id();
    out[2] = sp->eos_id();
    out[3] = sp->unk_id();
    out[4] = sp->pad_id();
    return 1;
  } catch (...) {
    return 0;
  }
}

int piece(const void *processor, int32_t id, LlamacSpmSink text, int32_t *kind) {
  try {
    const auto *sp = static_cast<const SentencePieceProcessor *>(processor);
    // IdToPiece does not check the range in release builds.
    if (!sp->status().ok() || id < 0 || id >= sp->GetPieceSize())
      return 0;
    send(text, sp->IdToPiece(id));
    if (kind)
      *kind = sp->IsUnknown(id)   ? LLAMAC_SPM_UNKNOWN
              : sp->IsControl(id) ? LLAMAC_SPM_CONTROL
              : sp->IsByte(id)    ? LLAMAC_SPM_BYTE
              : sp->IsUnused(id)  ? LLAMAC_SPM_UNUSED
                                  : LLAMAC_SPM_NORMAL;
    return 1;
  } catch (...) {
    return 0;
  }
}

int train(const char *const *keys, const char *const *values, size_t numOptions,
          const char *sentences, size_t size, LlamacSpmSink model, LlamacSpmSink error) {
  try {
    std::unordered_map<std::string, std::string> options;
    for (size_t i = 0; i < numOptions; ++i)
      options[keys[i]] = values[i];
    std::vector<std::string> lines;
    std::string_view all(sentences, size);
    while (!all.empty()) {
      size_t nl = all.find('\n');
      lines.emplace_back(all.substr(0, nl));
      all.remove_prefix(nl == std::string_view::npos ? all.size() : nl + 1);
    }
    VectorSentenceIterator iterator(lines);
    std::string serialized;
    auto status = sentencepiece::SentencePieceTrainer::Train(options, &iterator, &serialized);
    if (!status.ok())
      return failStatus(error, status);
    send(model, serialized);
    return 1;
  } catch (const std::bad_alloc &) {
    return fail(error, "out of memory");
  } catch (const std::exception &e) {
    return fail(error, e.what());
  } catch (...) {
    return fail(error, "unknown exception");
  }
}

const LlamacSpmApi kApi = {LLAMAC_SPM_API_VERSION, create, destroy, load, encode, decode,
                           info, piece, train};

} // namespace

extern "C" __attribute__((visibility("default"))) const LlamacSpmApi *
llamac_sentencepiece_api(void) {
  return &kApi;
}
