//===- InferMainTest.cpp - the samplers and the inference driver ----------------------===//
//
// The samplers on hand-made distributions (argmax and its ties, temperature near 0, the
// nucleus cut, top-k, reproducibility by seed and position, draw frequencies), then
// inferMain on a hand-written ProgramSpec: a bigram-like model whose logits at position p
// are table[token p] + 0.5 table[token p-1] + bias. Its prefill and decode read token p-1
// from a fake KV cache (position-tagged slots, modulo the window), counting every read of a
// slot that does not hold the position asked for, so the tests see whether the driver feeds
// positions in order and at the right `pos`; its forward computes the same expression from
// the token array. The tests compare the cached path with --no-kv-cache and with a greedy
// decode computed here, load weights from safetensors files and checkpoints, stream text
// through a trained tokenizer (byte-fallback characters included), and check that every bad
// flag or input exits non-zero with a message naming the problem and prints nothing.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Checkpoint.h"
#include "runtime/Program.h"
#include "runtime/Random.h"
#include "runtime/Safetensors.h"
#include "runtime/Sampler.h"
#include "runtime/Tokenizer.h"
#include "test/runtime/CopyingDevice.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include <stdlib.h>

using namespace llamac;
using namespace llamac::rt;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

std::vector<float> logitsOf(const std::vector<double> &probabilities) {
  std::vector<float> l;
  for (double p : probabilities)
    l.push_back(static_cast<float>(std::log(p)));
  return l;
}

//===----------------------------------------------------------------------------------===//
// Sampler
//===----------------------------------------------------------------------------------===//

TEST(SamplerTest, GreedyIsArgmaxLowestIndexOnTies) {
  std::vector<float> l = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f};
  EXPECT_EQ(argmax(l.data(), 5), 1);
  std::vector<float> withNan = {NAN, -2.0f, -1.0f};
  EXPECT_EQ(argmax(withNan.data(), 3), 2);

  SamplerOptions greedy;
  greedy.greedy = true;
  greedy.temperature = 1.5; // ignored under --greedy
  SamplerOptions zeroT;
  zeroT.temperature = 0;
  for (SamplerOptions o : {greedy, zeroT}) {
    Sampler s(o);
    EXPECT_TRUE(s.isGreedy());
    for (int64_t pos = 0; pos < 50; ++pos)
      EXPECT_EQ(s.sample(l.data(), 5, pos), 1);
    auto c = s.candidates(l.data(), 5);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].first, 1);
  }
}

TEST(SamplerTest, TemperatureNearZeroBehavesAsGreedy) {
  std::vector<float> l(1000);
  uint64_t key = streamKey(7, "logits");
  for (size_t i = 0; i < l.size(); ++i)
    l[i] = static_cast<float>(gaussian(key, i));
  int32_t best = argmax(l.data(), 1000);
  for (double topP : {0.9, 1.0}) {
    SamplerOptions o;
    o.temperature = 1e-4;
    o.topP = topP;
    Sampler s(o);
    EXPECT_FALSE(s.isGreedy());
    for (int64_t pos = 0; pos < 200; ++pos)
      ASSERT_EQ(s.sample(l.data(), 1000, pos), best) << "position " << pos;
  }
  // At temperature 1 the same row is not argmax every time: the test above is not vacuous.
  SamplerOptions warm;
  warm.temperature = 1;
  warm.topP = 1;
  Sampler s(warm);
  int notBest = 0;
  for (int64_t pos = 0; pos < 200; ++pos)
    notBest += s.sample(l.data(), 1000, pos) != best;
  EXPECT_GT(notBest, 100);
}

TEST(SamplerTest, TopPExcludesTheTail) {
  std::vector<float> l = logitsOf({0.6, 0.3, 0.1});
  SamplerOptions o;
  o.temperature = 1;
  o.topP = 0.5;
  Sampler s(o);
  auto c = s.candidates(l.data(), 3);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].first, 0);
  EXPECT_DOUBLE_EQ(c[0].second, 1.0);
  for (int64_t pos = 0; pos < 2000; ++pos)
    ASSERT_EQ(s.sample(l.data(), 3, pos), 0) << "position " << pos;

  // 0.6 + 0.3 reaches 0.85: the nucleus is {0, 1}, renormalised to 2/3 and 1/3.
  o.topP = 0.85;
  Sampler s2(o);
  c = s2.candidates(l.data(), 3);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].first, 0);
  EXPECT_EQ(c[1].first, 1);
  EXPECT_NEAR(c[0].second, 2.0 / 3, 1e-6);
  EXPECT_NEAR(c[1].second, 1.0 / 3, 1e-6);
  int counts[3] = {0, 0, 0};
  for (int64_t pos = 0; pos < 3000; ++pos)
    ++counts[s2.sample(l.data(), 3, pos)];
  EXPECT_EQ(counts[2], 0);
  EXPECT_GT(counts[1], 0);

  o.topP = 1;
  Sampler s3(o);
  EXPECT_EQ(s3.candidates(l.data(), 3).size(), 3u);
}

TEST(SamplerTest, TopKKeepsTheMostProbable) {
  std::vector<float> l = logitsOf({0.1, 0.4, 0.2, 0.3});
  SamplerOptions o;
  o.temperature = 1;
  o.topP = 1;
  o.topK = 2;
  Sampler s(o);
  auto c = s.candidates(l.data(), 4);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].first, 1);
  EXPECT_EQ(c[1].first, 3);
  EXPECT_NEAR(c[0].second, 4.0 / 7, 1e-6);
  for (int64_t pos = 0; pos < 1000; ++pos) {
    int32_t t = s.sample(l.data(), 4, pos);
    ASSERT_TRUE(t == 1 || t == 3) << t;
  }
}

TEST(SamplerTest, DrawsDependOnlyOnSeedAndPosition) {
  std::vector<float> l = logitsOf({0.3, 0.25, 0.2, 0.15, 0.1});
  SamplerOptions o;
  o.temperature = 1;
  o.topP = 1;
  o.seed = 42;
  Sampler a(o), b(o);
  std::vector<int32_t> forward, backward(500);
  for (int64_t pos = 0; pos < 500; ++pos)
    forward.push_back(a.sample(l.data(), 5, pos));
  // Another sampler, positions in reverse order: the same token at each position.
  for (int64_t pos = 499; pos >= 0; --pos)
    backward[pos] = b.sample(l.data(), 5, pos);
  EXPECT_EQ(forward, backward);

  o.seed = 43;
  Sampler c(o);
  int differ = 0;
  for (int64_t pos = 0; pos < 500; ++pos)
    differ += c.sample(l.data(), 5, pos) != forward[pos];
  EXPECT_GT(differ, 100);

  for (uint64_t pos = 0; pos < 1000; ++pos) {
    double u = sampleUniform(1, pos);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

TEST(SamplerTest, FrequenciesMatchProbabilities) {
  const std::vector<double> p = {0.5, 0.25, 0.15, 0.07, 0.03};
  std::vector<float> l = logitsOf(p);
  for (float &x : l)
    x += 3.0f; // only differences matter
  SamplerOptions o;
  o.temperature = 1;
  o.topP = 1;
  o.seed = 9;
  Sampler s(o);
  constexpr int kDraws = 40000;
  std::vector<int> counts(p.size(), 0);
  for (int64_t pos = 0; pos < kDraws; ++pos)
    ++counts[s.sample(l.data(), 5, pos)];
  for (size_t i = 0; i < p.size(); ++i) {
    // Five standard deviations of a binomial proportion: a false failure is negligible.
    double sd = std::sqrt(p[i] * (1 - p[i]) / kDraws);
    EXPECT_NEAR(counts[i] / double(kDraws), p[i], 5 * sd) << "token " << i;
  }

  // Temperature 2 flattens the distribution to p^(1/2), renormalised.
  o.temperature = 2;
  Sampler hot(o);
  std::vector<double> q;
  for (double x : p)
    q.push_back(std::sqrt(x));
  double sum = std::accumulate(q.begin(), q.end(), 0.0);
  std::fill(counts.begin(), counts.end(), 0);
  for (int64_t pos = 0; pos < kDraws; ++pos)
    ++counts[hot.sample(l.data(), 5, pos)];
  for (size_t i = 0; i < q.size(); ++i) {
    double expected = q[i] / sum;
    double sd = std::sqrt(expected * (1 - expected) / kDraws);
    EXPECT_NEAR(counts[i] / double(kDraws), expected, 5 * sd) << "token " << i;
  }
}

//===----------------------------------------------------------------------------------===//
// The fake program
//===----------------------------------------------------------------------------------===//

/// One slot of the fake KV cache: the token stored for a position, and that position.
struct CacheSlot {
  int32_t tokenPlusOne; ///< 0: never written
  int32_t position;
};

/// A hand-written inference program. Entry functions are plain function pointers, so they
/// find the program they belong to through `current`.
struct FakeProgram {
  static FakeProgram *current;

  int64_t V, C, S, window;
  int64_t biasOffset;
  ParamSpec params[2];
  TensorSpec prefillIn[2], prefillOut[1], decodeIn[2], decodeOut[1], forwardIn[1], forwardOut[1];
  FunctionSpec functions[3];
  ProgramSpec spec;
  std::string name = "fake-bigram";

  // What the entry functions saw.
  int cacheFaults = 0; ///< reads of a slot not holding the position asked for
  int inputFaults = 0; ///< token ids outside the vocabulary, null regions
  std::vector<int64_t> prefillPositions, decodePositions;
  int forwardCalls = 0;
  std::vector<float> tableSeen; ///< the table at the first call

  FakeProgram(int64_t vocab, int64_t chunk, int64_t maxSeqLen, int64_t window = 0)
      : V(vocab), C(chunk), S(maxSeqLen), window(window) {
    biasOffset = (V * V * 4 + 63) / 64 * 64;
    params[0] = {"table", ParamRole::Weight, 0, V * V, 2, {V, V, 0, 0}, ParamInit::Normal, 1.0};
    params[1] = {"bias", ParamRole::Weight, biasOffset, V, 1, {V, 0, 0, 0}, ParamInit::Ones, 0};
    prefillIn[0] = {"tokens", ElemType::I32, 2, {1, C}};
    prefillIn[1] = {"pos", ElemType::I64, 0, {}};
    prefillOut[0] = {"logits", ElemType::F32, 3, {1, C, V}};
    decodeIn[0] = {"tokens", ElemType::I32, 2, {1, 1}};
    decodeIn[1] = {"pos", ElemType::I64, 0, {}};
    decodeOut[0] = {"logits", ElemType::F32, 3, {1, 1, V}};
    forwardIn[0] = {"tokens", ElemType::I32, 2, {1, S}};
    forwardOut[0] = {"logits", ElemType::F32, 3, {1, S, V}};
    functions[0] = {"prefill", 2, prefillIn, 1, prefillOut, 256, 256, 1, &prefill};
    functions[1] = {"decode", 2, decodeIn, 1, decodeOut, 256, 256, 1, &decode};
    functions[2] = {"forward", 1, forwardIn, 1, forwardOut, 256, 256, 1, &forward};
    spec = {};
    spec.modelName = name.c_str();
    spec.mode = "infer";
    spec.target = "cpu";
    spec.batch = 1;
    spec.seq = C;
    spec.vocab = V;
    spec.maxSeqLen = S;
    spec.window = window;
    spec.params = params;
    spec.numParams = 2;
    spec.paramBytes = biasOffset + (V * 4 + 63) / 64 * 64;
    spec.functions = functions;
    spec.numFunctions = 3;
    spec.arenaBytes = 256;
    spec.cacheBytes = slots() * static_cast<int64_t>(sizeof(CacheSlot));
    current = this;
  }
  ~FakeProgram() { current = nullptr; }

  int64_t slots() const { return window > 0 ? window : S; }

  /// The row of logits for a token preceded by `prev` (-1: none).
  void row(const Context &ctx, int32_t token, int32_t prev, float *out) {
    const float *table = reinterpret_cast<const float *>(ctx.params);
    const float *bias = reinterpret_cast<const float *>(ctx.params + biasOffset);
    if (tableSeen.empty())
      tableSeen.assign(table, table + V * V);
    if (token < 0 || token >= V || prev >= V) {
      ++inputFaults;
      return;
    }
    for (int64_t v = 0; v < V; ++v)
      out[v] = table[token * V + v] + (prev >= 0 ? 0.5f * table[prev * V + v] : 0.0f) + bias[v];
  }

  /// prefill and decode: C (or 1) tokens at positions pos.., token p-1 from the cache.
  void cached(Context &ctx, const int32_t *tokens, int64_t pos, int64_t count, float *out) {
    if (!ctx.params || !ctx.arena || !ctx.cache) {
      ++inputFaults;
      return;
    }
    CacheSlot *cache = reinterpret_cast<CacheSlot *>(ctx.cache);
    for (int64_t i = 0; i < count; ++i) {
      int64_t p = pos + i;
      int32_t prev = -1;
      if (p > 0) {
        const CacheSlot &slot = cache[(p - 1) % slots()];
        if (slot.tokenPlusOne == 0 || slot.position != p - 1)
          ++cacheFaults;
        else
          prev = slot.tokenPlusOne - 1;
      }
      row(ctx, tokens[i], prev, out + i * V);
      cache[p % slots()] = {tokens[i] + 1, static_cast<int32_t>(p)};
    }
  }

  static void prefill(Context &ctx, void *const *in, void *const *out) {
    int64_t pos = *static_cast<const int64_t *>(in[1]);
    current->prefillPositions.push_back(pos);
    current->cached(ctx, static_cast<const int32_t *>(in[0]), pos, current->C,
                    static_cast<float *>(out[0]));
  }
  static void decode(Context &ctx, void *const *in, void *const *out) {
    int64_t pos = *static_cast<const int64_t *>(in[1]);
    current->decodePositions.push_back(pos);
    current->cached(ctx, static_cast<const int32_t *>(in[0]), pos, 1, static_cast<float *>(out[0]));
  }
  static void forward(Context &ctx, void *const *in, void *const *out) {
    ++current->forwardCalls;
    const int32_t *tokens = static_cast<const int32_t *>(in[0]);
    float *logits = static_cast<float *>(out[0]);
    for (int64_t p = 0; p < current->S; ++p)
      current->row(ctx, tokens[p], p > 0 ? tokens[p - 1] : -1, logits + p * current->V);
  }

  /// The table and bias of a training run's initialisation with `seed`.
  std::vector<float> initialTable(uint64_t seed) const {
    std::vector<float> t(static_cast<size_t>(V * V));
    uint64_t key = streamKey(seed, "table");
    for (size_t i = 0; i < t.size(); ++i)
      t[i] = static_cast<float>(1.0 * gaussian(key, i));
    return t;
  }

  /// Greedy generation computed directly from `table` (bias all ones).
  std::vector<int32_t> greedy(const std::vector<float> &table, std::vector<int32_t> seq,
                              int64_t count, float biasValue = 1.0f) const {
    std::vector<int32_t> out;
    std::vector<float> l(static_cast<size_t>(V));
    while (static_cast<int64_t>(out.size()) < count) {
      int32_t t = seq.back(), prev = seq.size() > 1 ? seq[seq.size() - 2] : -1;
      for (int64_t v = 0; v < V; ++v)
        l[v] = table[t * V + v] + (prev >= 0 ? 0.5f * table[prev * V + v] : 0.0f) + biasValue;
      int32_t next = argmax(l.data(), V);
      out.push_back(next);
      seq.push_back(next);
    }
    return out;
  }
};

FakeProgram *FakeProgram::current = nullptr;

struct RunResult {
  int status;
  std::string out, err;
};

RunResult runInfer(const ProgramSpec &spec, std::vector<std::string> args) {
  args.insert(args.begin(), "infer_fake");
  std::vector<char *> argv;
  for (std::string &a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  RunResult r;
  r.status = inferMain(static_cast<int>(args.size()), argv.data(), spec);
  r.out = testing::internal::GetCapturedStdout();
  r.err = testing::internal::GetCapturedStderr();
  return r;
}

/// The ids printed by --print-ids (the last line of stdout).
std::vector<int32_t> printedIds(const std::string &out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n')
    s.pop_back();
  size_t nl = s.rfind('\n');
  std::string line = nl == std::string::npos ? s : s.substr(nl + 1);
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < line.size()) {
    size_t j = line.find(' ', i);
    if (j == std::string::npos)
      j = line.size();
    ids.push_back(std::stoi(line.substr(i, j - i)));
    i = j + 1;
  }
  return ids;
}

class InferMainTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "infer-main-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string &name) const { return dir_ + "/" + name; }

  /// A table whose row a is all zeros but for 20 at column next(a): decoding then follows
  /// `next` (the previous token adds at most 10 elsewhere), greedy or sampled at the default
  /// temperature, where every other token's probability is below e^-12.
  static Tensor chainTable(int64_t V, const std::map<int32_t, int32_t> &exceptions = {}) {
    Tensor t(DType::F32, {V, V});
    for (int64_t a = 0; a < V; ++a) {
      auto it = exceptions.find(static_cast<int32_t>(a));
      int64_t next = it != exceptions.end() ? it->second : (a + 1) % V;
      t[a * V + next] = 20.0;
    }
    return t;
  }

  std::string dir_;
};

//===----------------------------------------------------------------------------------===//
// Generation
//===----------------------------------------------------------------------------------===//

TEST_F(InferMainTest, GreedyWithCacheEqualsNoCacheAndTheInitialisedModel) {
  FakeProgram fake(/*vocab=*/50, /*chunk=*/3, /*maxSeqLen=*/64);
  std::vector<std::string> common = {"--prompt-ids", "1,2,3,4,5,6,7", "--max-tokens", "40",
                                     "--greedy",     "--print-ids",   "--seed",       "11"};
  RunResult cached = runInfer(fake.spec, common);
  ASSERT_EQ(cached.status, 0) << cached.err;
  EXPECT_EQ(fake.cacheFaults, 0);
  EXPECT_EQ(fake.inputFaults, 0);
  EXPECT_EQ(fake.forwardCalls, 0);
  // Two full chunks at 0 and 3, position 6 alone, then one decode per generated token but
  // the last.
  EXPECT_EQ(fake.prefillPositions, (std::vector<int64_t>{0, 3}));
  ASSERT_EQ(fake.decodePositions.size(), 40u);
  for (size_t i = 0; i < fake.decodePositions.size(); ++i)
    EXPECT_EQ(fake.decodePositions[i], 6 + static_cast<int64_t>(i));
  // Random initialisation: exactly the training run's, std * gaussian(streamKey(seed, name)).
  EXPECT_EQ(fake.tableSeen, fake.initialTable(11));

  std::vector<int32_t> ids = printedIds(cached.out);
  EXPECT_EQ(ids, fake.greedy(fake.initialTable(11), {1, 2, 3, 4, 5, 6, 7}, 40));
  EXPECT_TRUE(contains(cached.err, "prompt: 7 tokens")) << cached.err;
  EXPECT_TRUE(contains(cached.err, "generated: 40 tokens")) << cached.err;
  EXPECT_TRUE(contains(cached.err, "tok/s")) << cached.err;

  common.push_back("--no-kv-cache");
  RunResult reference = runInfer(fake.spec, common);
  ASSERT_EQ(reference.status, 0) << reference.err;
  EXPECT_EQ(fake.forwardCalls, 40);
  EXPECT_EQ(printedIds(reference.out), ids);
  EXPECT_EQ(reference.out, cached.out);
}

TEST_F(InferMainTest, ADeviceBehindCopiesGeneratesAsTheCpu) {
  FakeProgram fake(12, 2, 32);
  Tensor table = chainTable(12);
  Tensor bias(DType::F32, {12}, 0.0);
  std::string error;
  ASSERT_TRUE(writeSafetensors(path("w.safetensors"), {{"table", &table}, {"bias", &bias}}, {},
                               &error))
      << error;
  std::vector<std::string> args = {"--params",     path("w.safetensors"), "--prompt-ids", "3",
                                   "--max-tokens", "12",                  "--print-ids"};
  RunResult cpu = runInfer(fake.spec, args);
  ASSERT_EQ(cpu.status, 0) << cpu.err;
  fake.spec.createDevice = llamac::test::openCopyingDevice;
  llamac::test::CopyingDevice::resetCounts();
  RunResult dev = runInfer(fake.spec, args);
  ASSERT_EQ(dev.status, 0) << dev.err;
  EXPECT_EQ(llamac::test::CopyingDevice::toDevice, 1) << "the weights go over once";
  EXPECT_TRUE(contains(dev.err, "copying test device")) << dev.err;
  EXPECT_EQ(dev.out, cpu.out);
  EXPECT_EQ(printedIds(dev.out), (std::vector<int32_t>{4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3}));

  fake.spec.createDevice = llamac::test::openMissingDevice;
  RunResult none = runInfer(fake.spec, args);
  EXPECT_EQ(none.status, 1);
  EXPECT_TRUE(contains(none.err, "cannot open the device: no test device here")) << none.err;
}

TEST_F(InferMainTest, SampledWithCacheEqualsNoCache) {
  FakeProgram fake(64, 4, 48);
  for (std::string seed : {"1", "2", "3"}) {
    std::vector<std::string> args = {"--prompt-ids",  "5,9,13,2,8", "--max-tokens", "30",
                                     "--temperature", "1.3",        "--top-p",      "0.95",
                                     "--top-k",       "20",         "--seed",       seed,
                                     "--print-ids"};
    RunResult a = runInfer(fake.spec, args);
    args.push_back("--no-kv-cache");
    RunResult b = runInfer(fake.spec, args);
    ASSERT_EQ(a.status, 0) << a.err;
    ASSERT_EQ(b.status, 0) << b.err;
    EXPECT_EQ(printedIds(a.out).size(), 30u);
    EXPECT_EQ(a.out, b.out) << "seed " << seed;
    // The same seed again: the same tokens.
    args.pop_back();
    EXPECT_EQ(runInfer(fake.spec, args).out, a.out);
  }
  EXPECT_EQ(fake.cacheFaults, 0);
  EXPECT_EQ(fake.inputFaults, 0);
}

TEST_F(InferMainTest, PromptOfExactChunksAndShorterThanAChunk) {
  FakeProgram fake(30, 4, 32);
  RunResult r = runInfer(fake.spec, {"--prompt-ids", "1,2,3,4,5,6,7,8", "--max-tokens", "3",
                                     "--greedy", "--print-ids"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(fake.prefillPositions, (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(fake.decodePositions, (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(printedIds(r.out).size(), 3u);

  fake.prefillPositions.clear();
  fake.decodePositions.clear();
  RunResult one =
      runInfer(fake.spec, {"--prompt-ids", "3", "--max-tokens", "1", "--greedy", "--print-ids"});
  ASSERT_EQ(one.status, 0) << one.err;
  EXPECT_TRUE(fake.prefillPositions.empty());
  EXPECT_EQ(fake.decodePositions, (std::vector<int64_t>{0}));
  EXPECT_EQ(printedIds(one.out).size(), 1u);
  EXPECT_EQ(fake.cacheFaults, 0);
}

TEST_F(InferMainTest, SlidingWindowGeneratesPastTheContext) {
  FakeProgram fake(40, 2, 16, /*window=*/4);
  std::vector<std::string> args = {"--prompt-ids", "1,2,3,4,5",   "--max-tokens", "30",
                                   "--greedy",     "--print-ids", "--seed",       "3"};
  RunResult r = runInfer(fake.spec, args);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(fake.cacheFaults, 0);
  std::vector<int32_t> ids = printedIds(r.out);
  EXPECT_EQ(ids, fake.greedy(fake.initialTable(3), {1, 2, 3, 4, 5}, 30));

  // forward holds S = 16 positions whatever the window.
  args.push_back("--no-kv-cache");
  RunResult nc = runInfer(fake.spec, args);
  EXPECT_EQ(nc.status, 2);
  EXPECT_TRUE(contains(nc.err, "16")) << nc.err;
  EXPECT_TRUE(nc.out.empty());
}

TEST_F(InferMainTest, PromptPlusMaxTokensMustFitTheContext) {
  FakeProgram fake(20, 2, 16);
  RunResult r = runInfer(fake.spec, {"--prompt-ids", "1,2,3,4,5", "--max-tokens", "12"});
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.err, "5 tokens")) << r.err;
  EXPECT_TRUE(contains(r.err, "(12)")) << r.err;
  EXPECT_TRUE(contains(r.err, "16")) << r.err;
  EXPECT_TRUE(r.out.empty());
  EXPECT_TRUE(fake.decodePositions.empty());
  // Exactly full is fine.
  RunResult ok =
      runInfer(fake.spec, {"--prompt-ids", "1,2,3,4,5", "--max-tokens", "11", "--print-ids"});
  EXPECT_EQ(ok.status, 0) << ok.err;
}

//===----------------------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------------------===//

TEST_F(InferMainTest, WeightsFromSafetensors) {
  FakeProgram fake(12, 2, 32);
  Tensor table = chainTable(12);
  Tensor bias(DType::F32, {12}, 0.0);
  Tensor extra(DType::F32, {3}, 7.0);
  std::string error;
  ASSERT_TRUE(writeSafetensors(
      path("w.safetensors"), {{"table", &table}, {"bias", &bias}, {"unused", &extra}}, {}, &error))
      << error;
  RunResult r = runInfer(fake.spec, {"--params", path("w.safetensors"), "--prompt-ids", "3",
                                     "--max-tokens", "12", "--print-ids"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(printedIds(r.out), (std::vector<int32_t>{4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3}));

  // Wrong shape: named, with both shapes.
  Tensor wrong(DType::F32, {12, 11});
  ASSERT_TRUE(
      writeSafetensors(path("bad.safetensors"), {{"table", &wrong}, {"bias", &bias}}, {}, &error));
  RunResult bad = runInfer(
      fake.spec, {"--params", path("bad.safetensors"), "--prompt-ids", "3", "--max-tokens", "2"});
  EXPECT_EQ(bad.status, 1);
  EXPECT_TRUE(contains(bad.err, "'table'")) << bad.err;
  EXPECT_TRUE(contains(bad.err, "[12,11]")) << bad.err;
  EXPECT_TRUE(contains(bad.err, "[12,12]")) << bad.err;
  EXPECT_TRUE(bad.out.empty());

  // Missing tensor.
  ASSERT_TRUE(writeSafetensors(path("missing.safetensors"), {{"table", &table}}, {}, &error));
  RunResult missing = runInfer(fake.spec, {"--params", path("missing.safetensors"), "--prompt-ids",
                                           "3", "--max-tokens", "2"});
  EXPECT_EQ(missing.status, 1);
  EXPECT_TRUE(contains(missing.err, "no tensor 'bias'")) << missing.err;

  // Not a file.
  RunResult none = runInfer(
      fake.spec, {"--params", path("nope.safetensors"), "--prompt-ids", "3", "--max-tokens", "2"});
  EXPECT_EQ(none.status, 1);
  EXPECT_TRUE(contains(none.err, "nope.safetensors")) << none.err;
  EXPECT_TRUE(none.out.empty());
}

TEST_F(InferMainTest, WeightsFromCheckpoint) {
  FakeProgram fake(10, 2, 32);
  Tensor table3 = chainTable(10), table5 = chainTable(10, {{3, 7}});
  Tensor bias(DType::F32, {10}, 0.0), moment(DType::F32, {10, 10}, 0.25);
  std::string error;
  CheckpointSaveResult saved;
  CheckpointState state;
  state.modelName = "fake-bigram";
  for (int64_t step : {3, 5}) {
    state.step = step;
    const Tensor *table = step == 3 ? &table3 : &table5;
    ASSERT_TRUE(saveCheckpoint(path("ckpt"), state,
                               {{"table", table}, {"bias", &bias}, {"adamw.m.table", &moment}}, {},
                               &saved, &error))
        << error;
  }
  RunResult latest = runInfer(fake.spec, {"--checkpoint", path("ckpt"), "--prompt-ids", "2",
                                          "--max-tokens", "4", "--print-ids"});
  ASSERT_EQ(latest.status, 0) << latest.err;
  EXPECT_EQ(printedIds(latest.out), (std::vector<int32_t>{3, 7, 8, 9}));
  EXPECT_TRUE(contains(latest.err, "step 5")) << latest.err;

  RunResult step3 = runInfer(fake.spec, {"--checkpoint", path("ckpt"), "--step", "3",
                                         "--prompt-ids", "2", "--max-tokens", "4", "--print-ids"});
  ASSERT_EQ(step3.status, 0) << step3.err;
  EXPECT_EQ(printedIds(step3.out), (std::vector<int32_t>{3, 4, 5, 6}));

  RunResult noStep = runInfer(fake.spec, {"--checkpoint", path("ckpt"), "--step", "4",
                                          "--prompt-ids", "2", "--max-tokens", "2"});
  EXPECT_EQ(noStep.status, 1);
  EXPECT_TRUE(contains(noStep.err, "step-4")) << noStep.err;
  EXPECT_TRUE(noStep.out.empty());

  // Another model's checkpoint.
  state.modelName = "llama-7b";
  state.step = 1;
  ASSERT_TRUE(saveCheckpoint(path("other"), state, {{"table", &table3}, {"bias", &bias}}, {},
                             &saved, &error));
  RunResult other = runInfer(
      fake.spec, {"--checkpoint", path("other"), "--prompt-ids", "2", "--max-tokens", "2"});
  EXPECT_EQ(other.status, 1);
  EXPECT_TRUE(contains(other.err, "'llama-7b'")) << other.err;
  EXPECT_TRUE(contains(other.err, "'fake-bigram'")) << other.err;
  EXPECT_TRUE(other.out.empty());

  // A truncated tensors file: the loader's verification names it.
  std::string tensors = path("ckpt") + "/step-5/tensors.safetensors";
  fs::resize_file(tensors, fs::file_size(tensors) - 16);
  RunResult truncated =
      runInfer(fake.spec, {"--checkpoint", path("ckpt"), "--prompt-ids", "2", "--max-tokens", "2"});
  EXPECT_EQ(truncated.status, 1);
  EXPECT_TRUE(contains(truncated.err, "tensors.safetensors")) << truncated.err;
  EXPECT_TRUE(contains(truncated.err, "cannot load the checkpoint")) << truncated.err;
  EXPECT_TRUE(truncated.out.empty());
}

//===----------------------------------------------------------------------------------===//
// Flags and bad input
//===----------------------------------------------------------------------------------===//

TEST_F(InferMainTest, HelpExitsZero) {
  FakeProgram fake(8, 2, 16);
  RunResult r = runInfer(fake.spec, {"--help"});
  EXPECT_EQ(r.status, 0);
  for (const char *flag :
       {"--checkpoint", "--params", "--tokenizer", "--prompt", "--prompt-ids", "--max-tokens",
        "--temperature", "--top-p", "--greedy", "--seed", "--threads", "--no-kv-cache",
        "--print-ids", "--no-stream", "--bos", "--no-bos", "--ignore-eos", "fake-bigram"})
    EXPECT_TRUE(contains(r.out, flag)) << flag;
}

TEST_F(InferMainTest, BadFlagsExitTwoNamingTheFlag) {
  FakeProgram fake(8, 2, 16);
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"--prompt-ids", "1", "--bogus"}, "--bogus"},
      {{"--prompt-ids", "1", "--max-tokens", "0"}, "--max-tokens"},
      {{"--prompt-ids", "1", "--max-tokens", "-3"}, "--max-tokens"},
      {{"--prompt-ids", "1", "--max-tokens", "many"}, "--max-tokens"},
      {{"--prompt-ids", "1", "--top-p", "0"}, "--top-p"},
      {{"--prompt-ids", "1", "--top-p", "1.5"}, "--top-p"},
      {{"--prompt-ids", "1", "--temperature", "-0.5"}, "--temperature"},
      {{"--prompt-ids", "1", "--threads", "-1"}, "--threads"},
      {{"--prompt-ids", "1,x"}, "'x'"},
      {{"--prompt-ids", ""}, "--prompt-ids"},
      {{"--prompt-ids", "1,8"}, "8"},
      {{"--prompt-ids", "-1"}, "-1"},
      {{}, "no prompt"},
      {{"--prompt", "hello"}, "--tokenizer"},
      {{"--prompt", "", "--tokenizer", "t.model"}, "empty"},
      {{"--prompt", "a", "--prompt-ids", "1", "--tokenizer", "t.model"}, "--prompt-ids"},
      {{"--prompt-ids", "1", "--params", "a", "--checkpoint", "b"}, "--checkpoint"},
      {{"--prompt-ids", "1", "--step", "2"}, "--step"},
      {{"--prompt-ids", "1", "--bos", "--no-bos"}, "--no-bos"},
      {{"--prompt-ids", "1", "stray"}, "stray"},
  };
  for (const Case &c : cases) {
    RunResult r = runInfer(fake.spec, c.args);
    std::string cmd;
    for (const std::string &a : c.args)
      cmd += a + " ";
    EXPECT_EQ(r.status, 2) << cmd << "\n" << r.err;
    EXPECT_TRUE(contains(r.err, c.expected)) << cmd << "\n" << r.err;
    EXPECT_TRUE(contains(r.err, "error")) << cmd << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << cmd;
  }
  EXPECT_TRUE(fake.decodePositions.empty());
  EXPECT_TRUE(fake.prefillPositions.empty());
}

TEST_F(InferMainTest, BadTokenizerFiles) {
  FakeProgram fake(8, 2, 16);
  RunResult missing =
      runInfer(fake.spec, {"--tokenizer", path("absent.model"), "--prompt", "hello"});
  EXPECT_EQ(missing.status, 1);
  EXPECT_TRUE(contains(missing.err, "absent.model")) << missing.err;
  EXPECT_TRUE(missing.out.empty());

  std::ofstream(path("garbage.model")) << "this is not a SentencePiece model";
  RunResult corrupt =
      runInfer(fake.spec, {"--tokenizer", path("garbage.model"), "--prompt", "hello"});
  EXPECT_EQ(corrupt.status, 1);
  EXPECT_TRUE(contains(corrupt.err, "tokenizer")) << corrupt.err;
  EXPECT_TRUE(corrupt.out.empty());
}

TEST_F(InferMainTest, ProgramOfTheWrongKind) {
  FakeProgram fake(8, 2, 16);
  fake.spec.mode = "train";
  RunResult train = runInfer(fake.spec, {"--prompt-ids", "1"});
  EXPECT_EQ(train.status, 1);
  EXPECT_TRUE(contains(train.err, "--mode infer")) << train.err;

  fake.spec.mode = "infer";
  fake.decodeOut[0].shape[2] = 9;
  RunResult shape = runInfer(fake.spec, {"--prompt-ids", "1"});
  EXPECT_EQ(shape.status, 1);
  EXPECT_TRUE(contains(shape.err, "'decode'")) << shape.err;
  EXPECT_TRUE(contains(shape.err, "[1,1,9]")) << shape.err;
  EXPECT_TRUE(shape.out.empty());
}

//===----------------------------------------------------------------------------------===//
// Text through a trained tokenizer
//===----------------------------------------------------------------------------------===//

class InferTokenizerTest : public InferMainTest {
protected:
  void SetUp() override {
    std::string why;
    if (!tokenizerBackendAvailable(&why))
      GTEST_SKIP() << "SentencePiece cannot be loaded here: " << why;
    InferMainTest::SetUp();
    std::string corpus;
    const char *words[] = {"the",  "river", "light",  "stone",  "garden", "water", "morning",
                           "café", "naïve", "letter", "number", "of",     "and",   "a"};
    uint64_t state = 1;
    for (int line = 0; line < 800; ++line) {
      for (int w = 0; w < 9; ++w) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        corpus += std::string(w ? " " : "") + words[(state >> 33) % 14];
      }
      corpus += ".\n";
    }
    std::ofstream(path("corpus.txt")) << corpus;
    std::string error;
    ASSERT_TRUE(trainTokenizer(path("corpus.txt"), 300, path("t.model"), &error)) << error;
    ASSERT_TRUE(tokenizer_.load(path("t.model"), &error)) << error;
  }

  Tokenizer tokenizer_;
};

TEST_F(InferTokenizerTest, StreamsTheDecodedTextAndStopsAtEos) {
  const int64_t V = tokenizer_.vocabSize();
  FakeProgram fake(V, 4, 64);
  std::vector<int32_t> prompt;
  std::string error;
  ASSERT_TRUE(tokenizer_.encode("the river", true, prompt, &error)) << error;
  // Chain from the prompt's last token through "é" as two byte pieces (byte fallback:
  // <0xC3> then <0xA9>), two word pieces, then EOS.
  auto byteId = [&](int b) {
    char piece[8];
    std::snprintf(piece, sizeof(piece), "<0x%02X>", b);
    for (int32_t id = 0; id < V; ++id)
      if (tokenizer_.piece(id) == piece)
        return id;
    return -1;
  };
  int32_t c3 = byteId(0xC3), a9 = byteId(0xA9);
  ASSERT_GE(c3, 0);
  ASSERT_GE(a9, 0);
  // Two word pieces ("▁garden"-like: a leading space the decoder must keep mid-text).
  std::vector<int32_t> words;
  for (int32_t id = 0; id < V && words.size() < 2; ++id)
    if (tokenizer_.pieceKind(id) == Tokenizer::PieceKind::Normal &&
        tokenizer_.piece(id).rfind("\xE2\x96\x81", 0) == 0 && tokenizer_.piece(id).size() > 4)
      words.push_back(id);
  ASSERT_EQ(words.size(), 2u);
  std::vector<int32_t> garden = {words[0]}, light = {words[1]};
  std::map<int32_t, int32_t> chain = {{prompt.back(), c3},
                                      {c3, a9},
                                      {a9, garden[0]},
                                      {garden[0], light[0]},
                                      {light[0], tokenizer_.eosId()}};
  Tensor table = chainTable(V, chain);
  Tensor bias(DType::F32, {V}, 0.0);
  ASSERT_TRUE(
      writeSafetensors(path("w.safetensors"), {{"table", &table}, {"bias", &bias}}, {}, &error))
      << error;

  std::vector<int32_t> expected = {c3, a9, garden[0], light[0], tokenizer_.eosId()};
  std::string prefix, full;
  ASSERT_TRUE(tokenizer_.decode(prompt, prefix, &error));
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), expected.begin(), expected.end() - 1);
  ASSERT_TRUE(tokenizer_.decode(all, full, &error));
  const std::string text = full.substr(prefix.size());
  EXPECT_EQ(text.substr(0, 3), "é ") << text;

  for (bool stream : {true, false}) {
    std::vector<std::string> args = {
        "--tokenizer", path("t.model"), "--params", path("w.safetensors"), "--prompt",
        "the river",   "--max-tokens",  "20",       "--print-ids"};
    if (!stream)
      args.push_back("--no-stream");
    RunResult r = runInfer(fake.spec, args);
    ASSERT_EQ(r.status, 0) << r.err;
    std::string idsLine;
    for (int32_t id : expected)
      idsLine += (idsLine.empty() ? "" : " ") + std::to_string(id);
    // The text, held back while "é" was half decoded, then the ids.
    EXPECT_EQ(r.out, text + "\n" + idsLine + "\n");
    EXPECT_TRUE(contains(r.err, "stopped at EOS")) << r.err;
    EXPECT_TRUE(contains(r.err, "prompt: " + std::to_string(prompt.size()) + " tokens")) << r.err;
  }

  // --ignore-eos goes on after it; --no-bos drops BOS from the prompt.
  RunResult on = runInfer(fake.spec, {"--tokenizer", path("t.model"), "--params",
                                      path("w.safetensors"), "--prompt", "the river",
                                      "--max-tokens", "8", "--print-ids", "--ignore-eos"});
  ASSERT_EQ(on.status, 0) << on.err;
  EXPECT_EQ(printedIds(on.out).size(), 8u);
  RunResult noBos =
      runInfer(fake.spec, {"--tokenizer", path("t.model"), "--params", path("w.safetensors"),
                           "--prompt", "the river", "--max-tokens", "2", "--no-bos"});
  ASSERT_EQ(noBos.status, 0) << noBos.err;
  EXPECT_TRUE(contains(noBos.err, "prompt: " + std::to_string(prompt.size() - 1) + " tokens"))
      << noBos.err;
}

TEST_F(InferTokenizerTest, TokenizerLargerThanTheModelVocabulary) {
  FakeProgram fake(tokenizer_.vocabSize() - 1, 4, 64);
  RunResult r = runInfer(fake.spec, {"--tokenizer", path("t.model"), "--prompt", "the"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, std::to_string(tokenizer_.vocabSize()))) << r.err;
  EXPECT_TRUE(r.out.empty());
}

} // namespace
