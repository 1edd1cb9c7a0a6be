//===- Sampler.cpp - choosing the next token from a row of logits -------------------===//
//
// Probabilities are computed in double from the f32 logits, relative to the largest logit so
// that exp() cannot overflow and a temperature close to 0 turns into argmax smoothly (every
// other token's probability underflows to 0). Candidates are ordered by probability, ties by
// index, so that the token a given uniform number selects is well defined.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Sampler.h"

#include "runtime/Checksum.h"

#include <algorithm>
#include <cmath>

namespace llamac::rt {

int32_t argmax(const float *values, int64_t n) {
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(values[i]))
      continue;
    // Strictly greater keeps the lowest index on ties.
    if (best < 0 || values[i] > values[best])
      best = i;
  }
  return static_cast<int32_t>(best < 0 ? 0 : best);
}

double sampleUniform(uint64_t seed, uint64_t position) {
  // Hashing the seed first keeps (seed, position) and (seed + 1, position - 1) apart.
  uint64_t bits = splitmix64(splitmix64(seed) ^ position);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

std::vector<std::pair<int32_t, double>> Sampler::candidates(const float *logits, int64_t vocab) {
  std::vector<std::pair<int32_t, double>> &c = scratch_;
  c.clear();
  if (vocab <= 0)
    return c;
  int32_t best = argmax(logits, vocab);
  float maxLogit = logits[best];
  // Greedy, or a row without a finite maximum (all NaN, or +inf somewhere), where
  // probabilities are not defined: the argmax is the only sensible answer.
  if (isGreedy() || !std::isfinite(maxLogit)) {
    c.emplace_back(best, 1.0);
    return c;
  }

  const double invT = 1.0 / options_.temperature;
  double total = 0;
  std::vector<double> weights(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) {
    double l = logits[i];
    double w = std::isnan(l) ? 0.0 : std::exp((l - maxLogit) * invT);
    weights[i] = w;
    total += w;
  }

  // A token whose probability is below (1 - topP) / (vocab - 1) cannot be in the nucleus:
  // all such tokens together hold less than 1 - topP, so the tokens above the bound already
  // reach topP. Skipping them before the sort keeps a 32000-token row cheap. The bound only
  // holds for the full distribution, so it is not used when top-k renormalises first.
  double floor = 0;
  if (options_.topP < 1 && options_.topK <= 0 && vocab > 1)
    floor = (1 - options_.topP) / static_cast<double>(vocab - 1) * total;
  for (int64_t i = 0; i < vocab; ++i)
    if (weights[i] > 0 && weights[i] >= floor)
      c.emplace_back(static_cast<int32_t>(i), weights[i]);

  std::sort(c.begin(), c.end(), [](const auto &a, const auto &b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });

  // Top-k first, then the nucleus of the renormalised top-k distribution (what Hugging
  // Face's generate does when both are set).
  if (options_.topK > 0 && static_cast<int64_t>(c.size()) > options_.topK) {
    c.resize(static_cast<size_t>(options_.topK));
    total = 0;
    for (const auto &[token, w] : c)
      total += w;
  }
  if (options_.topP < 1) {
    // The relative slack absorbs rounding in the sum, so that probabilities adding up to
    // exactly topP on paper stop the nucleus where they should.
    double target = options_.topP * total * (1 - 1e-9);
    double cumulative = 0;
    size_t keep = 0;
    while (keep < c.size()) {
      cumulative += c[keep++].second;
      if (cumulative >= target)
        break;
    }
    c.resize(keep);
  }

  double kept = 0;
  for (const auto &[token, w] : c)
    kept += w;
  for (auto &[token, w] : c)
    w /= kept;
  return c;
}

int32_t Sampler::sample(const float *logits, int64_t vocab, int64_t position) {
  if (isGreedy())
    return argmax(logits, vocab);
  const std::vector<std::pair<int32_t, double>> &c = candidates(logits, vocab);
  if (c.empty())
    return 0;
  double u = sampleUniform(options_.seed, static_cast<uint64_t>(position));
  double cumulative = 0;
  for (const auto &[token, p] : c) {
    cumulative += p;
    if (u < cumulative)
      return token;
  }
  // u is below 1 and the probabilities sum to 1 up to rounding: only rounding gets here.
  return c.back().first;
}

} // namespace llamac::rt
