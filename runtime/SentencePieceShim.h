//===- SentencePieceShim.h - the C interface to the isolated SentencePiece ----*- C++ -*-===//
//
// Debian's libsentencepiece carries its own copy of protobuf-lite 3.14 and exports its
// symbols; a process that also links libprotobuf 3.21 (the event and checkpoint formats)
// binds one library's calls to the other's implementation and crashes at start-up or on the
// first model load, whichever library comes first on the link line. So SentencePiece is never
// linked into the runtime: a small shim library (SentencePieceShim.cpp) links it, its image
// is embedded in LlamacRuntime, and Tokenizer.cpp loads it with dlmopen() into a private
// link-map namespace, where it and its protobuf copy see only each other.
//
// Across the namespace boundary only this C interface passes: plain pointers and sizes in,
// results out through sinks that the caller's code runs. No allocation, C++ object or
// exception crosses it, because each namespace has its own C and C++ runtimes.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_SENTENCEPIECESHIM_H
#define LLAMAC_RUNTIME_SENTENCEPIECESHIM_H

#include <stddef.h>
#include <stdint.h>

extern "C" {

/// Receives a result: `fn(ctx, data, size)` copies what it needs before returning.
struct LlamacSpmSink {
  void (*fn)(void *ctx, const void *data, size_t size);
  void *ctx;
};

/// Piece kinds reported by `piece`.
enum LlamacSpmPieceKind {
  LLAMAC_SPM_NORMAL = 0,
  LLAMAC_SPM_UNKNOWN = 1,
  LLAMAC_SPM_CONTROL = 2,
  LLAMAC_SPM_BYTE = 3,
  LLAMAC_SPM_UNUSED = 4,
};

enum { LLAMAC_SPM_API_VERSION = 1 };

/// Every function returns 1 on success and 0 on failure, when it sends a message to `error`.
/// Functions taking a const processor may run concurrently on one processor.
struct LlamacSpmApi {
  uint32_t version;
  /// A new, empty processor, or null when out of memory.
  void *(*create)(void);
  void (*destroy)(void *processor);
  /// Loads a serialized ModelProto.
  int (*load)(void *processor, const char *bytes, size_t size, LlamacSpmSink error);
  /// Sends the ids of `text` to `ids` as one array of int32_t.
  int (*encode)(const void *processor, const char *text, size_t size, LlamacSpmSink ids,
                LlamacSpmSink error);
  /// Sends the text of `ids` to `text`. The caller checks the ids' range first.
  int (*decode)(const void *processor, const int32_t *ids, size_t count, LlamacSpmSink text,
                LlamacSpmSink error);
  /// out = {piece count, bos id, eos id, unk id, pad id}; absent special pieces are -1.
  int (*info)(const void *processor, int32_t out[5]);
  /// Sends the text of piece `id` to `text` and sets *kind; 0 when `id` is out of range.
  int (*piece)(const void *processor, int32_t id, LlamacSpmSink text, int32_t *kind);
  /// Trains a model with SentencePieceTrainer on the '\n'-separated `sentences`, with the
  /// trainer options `keys[i]=values[i]`, and sends the serialized ModelProto to `model`.
  int (*train)(const char *const *keys, const char *const *values, size_t numOptions,
               const char *sentences, size_t size, LlamacSpmSink model, LlamacSpmSink error);
};

/// The one symbol the shim exports.
#define LLAMAC_SPM_API_SYMBOL "llamac_sentencepiece_api"
typedef const LlamacSpmApi *(*LlamacSpmApiFunction)(void);

} // extern "C"

#endif
