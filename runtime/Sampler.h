//===- Sampler.h - choosing the next token from a row of logits ------------*- C++ -*-===//
//
// The token samplers of the inference driver: greedy (argmax), and temperature sampling
// restricted to the top-k tokens and/or the top-p nucleus. A draw uses no generator state:
// the uniform number behind it is a hash of (seed, position), position being the index in
// the sequence of the token being chosen. The same seed therefore gives the same tokens
// whichever way the logits were computed (with the KV cache or without, in one run or in
// several), and each draw can be tested on its own.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_SAMPLER_H
#define LLAMAC_RUNTIME_SAMPLER_H

#include <cstdint>
#include <utility>
#include <vector>

namespace llamac::rt {

struct SamplerOptions {
  /// Logits are divided by it; 0 means greedy.
  double temperature = 0.8;
  /// The nucleus: the smallest set of most probable tokens whose probability reaches topP,
  /// in (0, 1]; 1 keeps every token.
  double topP = 0.9;
  /// At most this many most probable tokens are kept; 0 keeps all.
  int64_t topK = 0;
  /// Argmax whatever the temperature.
  bool greedy = false;
  uint64_t seed = 0;
};

/// The index of the largest of `n` values, the lowest index on ties. NaN never wins unless
/// every value is NaN (then 0).
int32_t argmax(const float *values, int64_t n);

/// The uniform number in [0, 1) behind the draw at `position` for `seed`.
double sampleUniform(uint64_t seed, uint64_t position);

class Sampler {
public:
  explicit Sampler(SamplerOptions options) : options_(options) {}

  const SamplerOptions &options() const { return options_; }
  bool isGreedy() const { return options_.greedy || options_.temperature <= 0; }

  /// The token chosen from `vocab` logits for the sequence position `position`.
  int32_t sample(const float *logits, int64_t vocab, int64_t position);

  /// The candidates a draw chooses from and their probabilities (renormalised to sum to 1),
  /// most probable first, lower index first on ties: one token for greedy decoding. For
  /// tests and for inspecting a distribution.
  std::vector<std::pair<int32_t, double>> candidates(const float *logits, int64_t vocab);

private:
  SamplerOptions options_;
  /// Scratch reused across calls: (token, probability).
  std::vector<std::pair<int32_t, double>> scratch_;
};

} // namespace llamac::rt

#endif
