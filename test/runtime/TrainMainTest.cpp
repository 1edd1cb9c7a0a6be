//===- TrainMainTest.cpp - the training driver on a hand-written program ------------===//
//
// trainMain driven exactly as a generated executable drives it, with a ProgramSpec written
// here instead of compiled: a bigram language model whose only weight is a [V, V] table of
// next-token logits, with its gradient and AdamW moments in the parameter region and plain
// C++ entry functions (train_grad, train_update, loss, and `weights`, which returns the
// table so that tests can read the parameters). The tokenizer is trained once for the suite
// on a small repetitive corpus.
//
// Covered: the flag parser, the CPU device and profiler report, falling loss, bit-identical
// losses after --resume from a run that died mid-way, the interpreter's initialisation,
// --run-function round trips, --info, and one check per bad input (exit status, message,
// and untouched files).
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Checkpoint.h"
#include "runtime/Device.h"
#include "runtime/Flags.h"
#include "runtime/Program.h"
#include "runtime/Random.h"
#include "runtime/Safetensors.h"
#include "runtime/Tokenizer.h"
#include "test/runtime/CopyingDevice.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace llamac;
using namespace llamac::rt;
namespace fs = std::filesystem;

namespace {

//===----------------------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------------------===//

void writeBytes(const std::string &file, const std::string &bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << file;
}

std::string readBytes(const std::string &file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Every file under `dir` with its contents, to show that a failed run wrote nothing.
std::map<std::string, std::string> snapshot(const std::string &dir) {
  std::map<std::string, std::string> files;
  std::error_code ec;
  if (!fs::exists(dir, ec))
    return files;
  for (const auto &entry : fs::recursive_directory_iterator(dir))
    files[entry.path().string()] = entry.is_regular_file() ? readBytes(entry.path()) : "<dir>";
  return files;
}

/// Runs trainMain on `args` (argv[0] added), capturing stdout and stderr.
struct RunResult {
  int status = -1;
  std::string out, err;
};

RunResult runMain(const ProgramSpec &program, std::vector<std::string> args) {
  args.insert(args.begin(), "train_test");
  std::vector<char *> argv;
  for (std::string &a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  RunResult r;
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  r.status = trainMain(int(args.size()), argv.data(), program);
  r.err = testing::internal::GetCapturedStderr();
  r.out = testing::internal::GetCapturedStdout();
  if (std::getenv("LLAMAC_TEST_ECHO")) // to see what the driver prints
    std::fprintf(stderr, "--- exit %d\n%s%s", r.status, r.out.c_str(), r.err.c_str());
  return r;
}

/// metrics.csv as columns by name, one map per row; later rows for a step replace earlier
/// ones (a resumed run appends the steps after its checkpoint again).
std::map<int64_t, std::map<std::string, std::string>> readMetrics(const std::string &path) {
  std::map<int64_t, std::map<std::string, std::string>> rows;
  std::istringstream in(readBytes(path));
  std::string line;
  std::vector<std::string> header;
  auto split = [](const std::string &s) {
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream ss(s);
    while (std::getline(ss, cell, ','))
      cells.push_back(cell);
    if (!s.empty() && s.back() == ',')
      cells.push_back("");
    return cells;
  };
  if (!std::getline(in, line))
    return rows;
  header = split(line);
  while (std::getline(in, line)) {
    std::vector<std::string> cells = split(line);
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i)
      row[header[i]] = cells[i];
    rows[std::stoll(cells.at(0))] = row;
  }
  return rows;
}

//===----------------------------------------------------------------------------------===//
// The bigram program
//===----------------------------------------------------------------------------------===//

/// One parameter region: W[V, V] (row a holds the logits of the token after a), then its
/// gradient and AdamW moments.
struct Bigram {
  int64_t V = 0, B = 0, T = 0;
  int64_t tensorBytes = 0;
  /// When >= 0, train_update throws at this (0-based) step: a run that dies mid-way.
  int64_t crashAtStep = -1;

  float *W(Context &c) const { return reinterpret_cast<float *>(c.params); }
  float *G(Context &c) const { return reinterpret_cast<float *>(c.params + tensorBytes); }
  float *M(Context &c) const { return reinterpret_cast<float *>(c.params + 2 * tensorBytes); }
  float *S(Context &c) const { return reinterpret_cast<float *>(c.params + 3 * tensorBytes); }
};
Bigram gBigram; // entry functions are plain function pointers: they read the shapes here

/// Mean cross-entropy of the batch; with `grad`, accumulates d(loss)/dW into grad.W. The
/// softmax row lives in the arena, as a compiled program's scratch would.
float bigramLoss(Context &ctx, const int32_t *tokens, const int32_t *targets, bool grad) {
  const Bigram &b = gBigram;
  float *p = reinterpret_cast<float *>(ctx.arena);
  const float *W = b.W(ctx);
  float *G = b.G(ctx);
  const int64_t n = b.B * b.T;
  float total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float *row = W + int64_t(tokens[i]) * b.V;
    float mx = row[0];
    for (int64_t v = 1; v < b.V; ++v)
      mx = std::max(mx, row[v]);
    float sum = 0;
    for (int64_t v = 0; v < b.V; ++v) {
      p[v] = std::exp(row[v] - mx);
      sum += p[v];
    }
    total += std::log(sum) - (row[targets[i]] - mx);
    if (grad) {
      float *g = G + int64_t(tokens[i]) * b.V;
      for (int64_t v = 0; v < b.V; ++v)
        g[v] += (p[v] / sum - (v == targets[i] ? 1.0f : 0.0f)) / float(n);
    }
  }
  if (ctx.profiler)
    ctx.profiler->add(grad ? "bigram_grad" : "bigram_loss", 1e-6);
  return total / float(n);
}

void trainGradFn(Context &ctx, void *const *in, void *const *out) {
  *static_cast<float *>(out[0]) = bigramLoss(ctx, static_cast<const int32_t *>(in[0]),
                                             static_cast<const int32_t *>(in[1]), true);
}

void lossFn(Context &ctx, void *const *in, void *const *out) {
  *static_cast<float *>(out[0]) = bigramLoss(ctx, static_cast<const int32_t *>(in[0]),
                                             static_cast<const int32_t *>(in[1]), false);
}

/// Cosine-decayed AdamW with gradient clipping at norm 1 and decoupled weight decay.
void trainUpdateFn(Context &ctx, void *const *in, void *const *out) {
  const Bigram &b = gBigram;
  int64_t step = *static_cast<const int64_t *>(in[0]);
  float lr = *static_cast<const float *>(in[1]);
  int64_t total = *static_cast<const int64_t *>(in[2]);
  float micro = *static_cast<const float *>(in[3]);
  if (step == b.crashAtStep)
    throw std::runtime_error("simulated crash at step " + std::to_string(step));
  float *W = b.W(ctx), *G = b.G(ctx), *M = b.M(ctx), *S = b.S(ctx);
  const int64_t n = b.V * b.V;
  float sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    G[i] /= micro;
    sq += G[i] * G[i];
  }
  float norm = std::sqrt(sq);
  float clip = norm > 1.0f ? 1.0f / norm : 1.0f;
  float lrT = lr * 0.5f * (1.0f + std::cos(float(M_PI) * float(step) / float(total)));
  float t = float(step + 1);
  float c1 = 1.0f - std::pow(0.9f, t), c2 = 1.0f - std::pow(0.95f, t);
  for (int64_t i = 0; i < n; ++i) {
    float g = G[i] * clip;
    M[i] = 0.9f * M[i] + 0.1f * g;
    S[i] = 0.95f * S[i] + 0.05f * g * g;
    W[i] -= lrT * ((M[i] / c1) / (std::sqrt(S[i] / c2) + 1e-8f) + 0.01f * W[i]);
    G[i] = 0;
  }
  *static_cast<float *>(out[0]) = lrT;
  *static_cast<float *>(out[1]) = norm;
}

void weightsFn(Context &ctx, void *const *, void *const *out) {
  const Bigram &b = gBigram;
  std::copy(b.W(ctx), b.W(ctx) + b.V * b.V, static_cast<float *>(out[0]));
}

/// A ProgramSpec and the arrays it points into.
struct FakeProgram {
  TensorSpec tokens, targets, scalarLoss, step, lr, total, micro, lrT, gradNorm, table;
  TensorSpec gradIn[2], updateIn[4], updateOut[2], lossOut[1], weightsOut[1];
  ParamSpec params[4];
  FunctionSpec functions[4];
  const char *configKeys[1] = {"pipeline"};
  const char *configValues[1] = {"bigram-test"};
  ProgramSpec spec{};

  FakeProgram(const char *model, int64_t V, int64_t B, int64_t T) {
    gBigram.V = V;
    gBigram.B = B;
    gBigram.T = T;
    gBigram.crashAtStep = -1;
    gBigram.tensorBytes = (V * V * 4 + 63) / 64 * 64;
    tokens = {"tokens", ElemType::I32, 2, {B, T}};
    targets = {"targets", ElemType::I32, 2, {B, T}};
    scalarLoss = {"loss", ElemType::F32, 0, {}};
    step = {"step", ElemType::I64, 0, {}};
    lr = {"lr", ElemType::F32, 0, {}};
    total = {"total", ElemType::I64, 0, {}};
    micro = {"micro_batches", ElemType::F32, 0, {}};
    lrT = {"lr_t", ElemType::F32, 0, {}};
    gradNorm = {"grad_norm", ElemType::F32, 0, {}};
    table = {"table", ElemType::F32, 2, {V, V}};
    gradIn[0] = tokens;
    gradIn[1] = targets;
    updateIn[0] = step;
    updateIn[1] = lr;
    updateIn[2] = total;
    updateIn[3] = micro;
    updateOut[0] = lrT;
    updateOut[1] = gradNorm;
    lossOut[0] = scalarLoss;
    weightsOut[0] = table;
    const char *names[4] = {"tok_embeddings", "grad.tok_embeddings", "adamw.m.tok_embeddings",
                            "adamw.v.tok_embeddings"};
    for (int i = 0; i < 4; ++i)
      params[i] = {names[i],
                   ParamRole(i),
                   i * gBigram.tensorBytes,
                   V * V,
                   2,
                   {V, V},
                   i == 0 ? ParamInit::Normal : ParamInit::Zeros,
                   i == 0 ? 0.02 : 0.0};
    int64_t arena = V * 4;
    functions[0] = {"train_grad", 2, gradIn, 1, lossOut, arena, arena, 1, trainGradFn};
    functions[1] = {"train_update", 4, updateIn, 2, updateOut, 0, 0, 1, trainUpdateFn};
    functions[2] = {"loss", 2, gradIn, 1, lossOut, arena, arena, 1, lossFn};
    functions[3] = {"weights", 0, nullptr, 1, weightsOut, 0, 0, 1, weightsFn};
    spec.modelName = model;
    spec.mode = "train";
    spec.target = "cpu";
    spec.batch = B;
    spec.seq = T;
    spec.vocab = V;
    spec.dim = V;
    spec.layers = 0;
    spec.heads = 1;
    spec.kvHeads = 1;
    spec.headDim = V;
    spec.ffnDim = 0;
    spec.maxSeqLen = T;
    spec.window = 0;
    spec.normEps = 1e-5;
    spec.ropeTheta = 10000;
    spec.trainFlopsPerToken = 6.0 * double(V * V);
    spec.inferFlopsPerToken = 2.0 * double(V * V);
    spec.trainableElements = V * V;
    spec.params = params;
    spec.numParams = 4;
    spec.paramBytes = 4 * gBigram.tensorBytes;
    spec.functions = functions;
    spec.numFunctions = 4;
    spec.arenaBytes = arena;
    spec.cacheBytes = 0;
    spec.configKeys = configKeys;
    spec.configValues = configValues;
    spec.numConfig = 1;
  }
};

constexpr int64_t kVocab = 300, kBatch = 4, kSeq = 16;

//===----------------------------------------------------------------------------------===//
// Fixture: one tokenizer and corpus for the suite, a fresh directory per test
//===----------------------------------------------------------------------------------===//

class TrainMainTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    std::string why;
    if (!tokenizerBackendAvailable(&why)) {
      skipReason_ = "SentencePiece cannot be loaded here: " + why;
      return;
    }
    std::string pattern = ::testing::TempDir() + "train-main-suite-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    suiteDir_ = pattern;
    // Repetitive text a bigram model learns quickly, over few enough characters that a
    // 300-piece vocabulary holds whole words.
    std::string text;
    const char *lines[] = {"the cat sat on the mat.", "the dog ate the bone.",
                           "a cat and a dog sat on a mat.", "the bone is on the mat."};
    for (int i = 0; i < 240; ++i)
      text += std::string(lines[(i * 7 + i / 4) % 4]) + "\n";
    corpus_ = suiteDir_ + "/corpus.txt";
    writeBytes(corpus_, text);
    tokenizer_ = suiteDir_ + "/bigram.model";
    std::string error;
    ASSERT_TRUE(trainTokenizer(corpus_, int32_t(kVocab), tokenizer_, &error)) << error;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!suiteDir_.empty())
      fs::remove_all(suiteDir_, ec);
  }

  void SetUp() override {
    if (!skipReason_.empty())
      GTEST_SKIP() << skipReason_;
    std::string pattern = ::testing::TempDir() + "train-main-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
    // Each test tokenises its own copy, so that no test depends on another's token cache.
    corpus = path("corpus.txt");
    writeBytes(corpus, readBytes(corpus_));
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty())
      fs::remove_all(dir_, ec);
  }

  std::string path(const std::string &name) const { return dir_ + "/" + name; }

  /// The flags every training run here shares, then `extra`.
  std::vector<std::string> trainArgs(std::vector<std::string> extra) const {
    std::vector<std::string> args = {"--data",   corpus,       "--tokenizer",
                                     tokenizer_, "--progress", "never"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  static std::string suiteDir_, corpus_, tokenizer_, skipReason_;
  std::string dir_, corpus;
};

std::string TrainMainTest::suiteDir_, TrainMainTest::corpus_, TrainMainTest::tokenizer_,
    TrainMainTest::skipReason_;

//===----------------------------------------------------------------------------------===//
// Flags
//===----------------------------------------------------------------------------------===//

FlagParser::Result parseArgs(FlagParser &flags, std::vector<std::string> args, std::string *error) {
  args.insert(args.begin(), "prog");
  std::vector<char *> argv;
  for (std::string &a : args)
    argv.push_back(a.data());
  return flags.parse(int(argv.size()), argv.data(), error);
}

FlagParser makeFlags() {
  FlagParser f("prog", "Does things.");
  f.addString("data", "", "corpus", "FILE");
  f.addInt("steps", 10, "steps", 1);
  f.addDouble("lr", 0.5, "learning rate", 0.0, 1.0);
  f.addChoice("progress", "auto", {"auto", "always", "never"}, "bar");
  f.addSwitch("resume", "resume");
  f.addString("output", "", "out", "FILE");
  f.addAlias('o', "output");
  return f;
}

TEST(FlagsTest, ParsesBothSpellingsAliasesAndDefaults) {
  FlagParser f = makeFlags();
  std::string error;
  ASSERT_EQ(
      parseArgs(f, {"--data", "a.txt", "--steps=7", "-o", "x", "--resume", "--lr", "0.25"}, &error),
      FlagParser::Result::Ok)
      << error;
  EXPECT_EQ(f.getString("data"), "a.txt");
  EXPECT_EQ(f.getInt("steps"), 7);
  EXPECT_EQ(f.getString("output"), "x");
  EXPECT_TRUE(f.getSwitch("resume"));
  EXPECT_EQ(f.getDouble("lr"), 0.25);
  EXPECT_EQ(f.getChoice("progress"), "auto");
  EXPECT_TRUE(f.given("steps"));
  EXPECT_FALSE(f.given("progress"));

  FlagParser g = makeFlags();
  ASSERT_EQ(parseArgs(g, {"--resume=false", "--progress=never"}, &error), FlagParser::Result::Ok)
      << error;
  EXPECT_FALSE(g.getSwitch("resume"));
  EXPECT_EQ(g.getInt("steps"), 10);
  EXPECT_EQ(g.getChoice("progress"), "never");
}

TEST(FlagsTest, ErrorsNameTheFlagAndValue) {
  struct Case {
    std::vector<std::string> args;
    std::string fragment;
  };
  std::vector<Case> cases = {
      {{"--bogus", "1"}, "unknown flag '--bogus'"},
      {{"-x"}, "unknown flag '-x'"},
      {{"stray"}, "unexpected argument 'stray'"},
      {{"--steps"}, "--steps: missing value"},
      {{"--data", "--steps", "3"}, "--data: missing value"},
      {{"--steps", "abc"}, "--steps: 'abc' is not an integer"},
      {{"--steps", "12abc"}, "not an integer"},
      {{"--steps", "0"}, "--steps: must be at least 1, got 0"},
      {{"--steps=-3"}, "must be at least 1"},
      {{"--steps", "99999999999999999999"}, "out of range"},
      {{"--lr", "x"}, "--lr: 'x' is not a number"},
      {{"--lr", "nan"}, "not a finite number"},
      {{"--lr", "-1"}, "--lr: must be at least 0"},
      {{"--lr", "2"}, "must be at most 1"},
      {{"--progress", "sometimes"}, "--progress: 'sometimes' is not one of auto|always|never"},
      {{"--resume=maybe"}, "--resume takes no value"},
  };
  for (const Case &c : cases) {
    FlagParser f = makeFlags();
    std::string error;
    EXPECT_EQ(parseArgs(f, c.args, &error), FlagParser::Result::Error) << c.args[0];
    EXPECT_NE(error.find(c.fragment), std::string::npos)
        << "got '" << error << "', expected '" << c.fragment << "'";
  }
}

TEST(FlagsTest, HelpWinsAndUsageListsFlags) {
  FlagParser f = makeFlags();
  std::string error;
  EXPECT_EQ(parseArgs(f, {"--bogus", "--help"}, &error), FlagParser::Result::Help);
  std::string usage = f.usage();
  EXPECT_NE(usage.find("Usage: prog [flags]"), std::string::npos) << usage;
  EXPECT_NE(usage.find("--steps N"), std::string::npos) << usage;
  EXPECT_NE(usage.find("(default: 10)"), std::string::npos) << usage;
  EXPECT_NE(usage.find("-o, --output FILE"), std::string::npos) << usage;
  EXPECT_NE(usage.find("--progress auto|always|never"), std::string::npos) << usage;
}

//===----------------------------------------------------------------------------------===//
// Device, profiler, random numbers
//===----------------------------------------------------------------------------------===//

TEST(CpuDeviceTest, AllocatesAlignedZeroedBuffersAndTimesEvents) {
  std::unique_ptr<Device> device = createCpuDevice(0);
  EXPECT_EQ(device->name().rfind("cpu (", 0), 0u) << device->name();
  std::string error;
  for (size_t bytes : {size_t(0), size_t(1), size_t(100), size_t(4096)}) {
    std::unique_ptr<Buffer> b = device->allocate(bytes, &error);
    ASSERT_TRUE(b) << error;
    EXPECT_EQ(b->size(), bytes);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data()) % 64, 0u);
    for (size_t i = 0; i < bytes; ++i)
      ASSERT_EQ(b->data()[i], std::byte{0}) << i;
  }
  std::unique_ptr<Buffer> huge = device->allocate(size_t(1) << 62, &error);
  EXPECT_FALSE(huge);
  EXPECT_NE(error.find(std::to_string(size_t(1) << 62)), std::string::npos) << error;

  std::unique_ptr<Stream> stream = device->createStream();
  std::unique_ptr<Event> start = device->createEvent(), end = device->createEvent();
  int ran = 0;
  stream->record(*start);
  stream->launch("k", [&] { ++ran; });
  stream->record(*end);
  stream->synchronize();
  EXPECT_EQ(ran, 1) << "a CPU launch runs before returning";
  EXPECT_GE(end->secondsSince(*start), 0.0);
}

TEST(CpuDeviceTest, ProfilerReportSortsByTime) {
  Profiler p;
  p.add("small", 0.001);
  p.add("big", 0.5);
  p.add("big", 0.5);
  std::string r = p.report();
  ASSERT_NE(r.find("big"), std::string::npos) << r;
  EXPECT_LT(r.find("big"), r.find("small")) << r;
  EXPECT_NE(r.find("total"), std::string::npos) << r;
  EXPECT_NE(r.find("99.9%"), std::string::npos) << r;
}

TEST(RandomTest, GaussianIsStandardNormal) {
  uint64_t key = streamKey(7, "x");
  EXPECT_NE(key, streamKey(8, "x"));
  EXPECT_NE(key, streamKey(7, "y"));
  double sum = 0, sq = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    double g = gaussian(key, uint64_t(i));
    sum += g;
    sq += g * g;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.05);
  EXPECT_NEAR(sq / n, 1.0, 0.05);
  EXPECT_EQ(gaussian(key, 3), gaussian(key, 3));
}

//===----------------------------------------------------------------------------------===//
// Training
//===----------------------------------------------------------------------------------===//

TEST_F(TrainMainTest, HelpAndInfo) {
  FakeProgram prog("bigram", kVocab, kBatch, kSeq);
  RunResult help = runMain(prog.spec, {"--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("--grad-accum N"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("--run-function NAME"), std::string::npos) << help.out;

  RunResult info = runMain(prog.spec, {"--info"});
  EXPECT_EQ(info.status, 0) << info.err;
  EXPECT_NE(info.out.find("bigram"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("batch 4 x seq 16"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("train_grad(tokens i32[4x16], targets i32[4x16]) -> (loss f32["),
            std::string::npos)
      << info.out;
  EXPECT_NE(info.out.find("pipeline = bigram-test"), std::string::npos) << info.out;
}

TEST_F(TrainMainTest, LossFalls) {
  FakeProgram prog("bigram", kVocab, kBatch, kSeq);
  RunResult r =
      runMain(prog.spec, trainArgs({"--steps", "30", "--lr", "0.2", "--log-dir", path("logs"),
                                    "--valid-every", "10", "--log-every", "10", "--profile"}));
  ASSERT_EQ(r.status, 0) << r.err;
  auto rows = readMetrics(path("logs/metrics.csv"));
  ASSERT_EQ(rows.size(), 30u);
  double first = std::stod(rows[1]["loss"]), last = std::stod(rows[30]["loss"]);
  EXPECT_NEAR(first, std::log(double(kVocab)), 0.2) << "small initial weights: uniform";
  EXPECT_LT(last, first - 2.0) << "the bigram model should learn the repetitive corpus";
  EXPECT_FALSE(rows[10]["valid_loss"].empty());
  EXPECT_TRUE(rows[11]["valid_loss"].empty());
  EXPECT_LT(std::stod(rows[30]["valid_loss"]), first - 1.0);
  EXPECT_EQ(rows[30]["tokens"], std::to_string(30 * kBatch * kSeq));
  bool events = false;
  for (const auto &e : fs::directory_iterator(path("logs")))
    events |= e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  EXPECT_TRUE(events);
  EXPECT_NE(r.out.find("step 10/30"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tokens/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bigram_grad"), std::string::npos) << "--profile report: " << r.out;
}

TEST_F(TrainMainTest, ProgressBarOnRequest) {
  FakeProgram prog("bigram", kVocab, kBatch, kSeq);
  RunResult r =
      runMain(prog.spec, trainArgs({"--steps", "3", "--progress", "always", "--valid-every", "0"}));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("] 3/3 loss "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tok/s ETA "), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("step 3/3"), std::string::npos) << "no log lines under a bar";
}

TEST_F(TrainMainTest, ResumeAfterACrashGivesBitIdenticalLosses) {
  std::vector<std::string> common = {"--steps",       "12", "--lr",   "0.02", "--grad-accum", "2",
                                     "--valid-every", "4",  "--seed", "5"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = common;
    a.insert(a.end(), extra.begin(), extra.end());
    return trainArgs(a);
  };
  FakeProgram prog("bigram", kVocab, kBatch, kSeq);
  RunResult whole =
      runMain(prog.spec, with({"--log-dir", path("whole"), "--checkpoint-dir", path("whole-ck")}));
  ASSERT_EQ(whole.status, 0) << whole.err;

  // Dies in step 8 (0-based 7), after checkpoints at steps 3 and 6.
  gBigram.crashAtStep = 7;
  RunResult crashed = runMain(prog.spec, with({"--log-dir", path("part"), "--checkpoint-dir",
                                               path("ck"), "--checkpoint-every", "3"}));
  EXPECT_EQ(crashed.status, 1);
  EXPECT_NE(crashed.err.find("simulated crash at step 7"), std::string::npos) << crashed.err;
  gBigram.crashAtStep = -1;
  EXPECT_EQ(listCheckpoints(path("ck")), (std::vector<int64_t>{3, 6}));

  // The resumed run is given a different --seed: the checkpoint's must win.
  std::vector<std::string> resumeArgs = with({"--log-dir", path("part"), "--checkpoint-dir",
                                              path("ck"), "--checkpoint-every", "3", "--resume"});
  resumeArgs.push_back("--seed");
  resumeArgs.push_back("9");
  RunResult resumed = runMain(prog.spec, resumeArgs);
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("resumed from"), std::string::npos) << resumed.err;
  EXPECT_NE(resumed.err.find("--seed 9 is ignored"), std::string::npos) << resumed.err;

  auto a = readMetrics(path("whole/metrics.csv"));
  auto b = readMetrics(path("part/metrics.csv"));
  ASSERT_EQ(a.size(), 12u);
  ASSERT_EQ(b.size(), 12u);
  for (int64_t s = 1; s <= 12; ++s) {
    for (const char *col : {"loss", "lr", "grad_norm", "valid_loss", "tokens"})
      EXPECT_EQ(a[s][col], b[s][col]) << "step " << s << " " << col;
  }
  // The final parameters and optimizer state are identical too.
  LoadedCheckpoint x, y;
  std::string error;
  ASSERT_TRUE(loadCheckpoint(path("whole-ck"), -1, x, &error)) << error;
  ASSERT_TRUE(loadCheckpoint(path("ck"), -1, y, &error)) << error;
  EXPECT_EQ(x.state.step, 12);
  EXPECT_EQ(y.state.step, 12);
  EXPECT_EQ(x.state.tokensConsumed, y.state.tokensConsumed);
  ASSERT_EQ(x.tensors.tensors.size(), 4u);
  for (const auto &[name, t] : x.tensors.tensors) {
    const Tensor *u = y.tensors.find(name);
    ASSERT_TRUE(u) << name;
    EXPECT_TRUE(t.data == u->data) << name;
  }

  // Resuming a finished run has nothing to do.
  RunResult again = runMain(prog.spec, with({"--checkpoint-dir", path("ck"), "--resume"}));
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.err.find("nothing to train"), std::string::npos) << again.err;
}

TEST_F(TrainMainTest, ADeviceBehindCopiesTrainsAndResumesAsTheCpu) {
  std::vector<std::string> common = {"--steps", "12", "--lr", "0.02", "--valid-every", "4",
                                     "--seed", "3"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = common;
    a.insert(a.end(), extra.begin(), extra.end());
    return trainArgs(a);
  };
  FakeProgram cpu("bigram", kVocab, kBatch, kSeq);
  RunResult reference =
      runMain(cpu.spec, with({"--log-dir", path("cpu"), "--checkpoint-dir", path("cpu-ck")}));
  ASSERT_EQ(reference.status, 0) << reference.err;

  FakeProgram dev("bigram", kVocab, kBatch, kSeq);
  dev.spec.createDevice = llamac::test::openCopyingDevice;
  llamac::test::CopyingDevice::resetCounts();
  gBigram.crashAtStep = 7; // dies after the checkpoints of steps 3 and 6
  RunResult crashed = runMain(dev.spec, with({"--log-dir", path("dev"), "--checkpoint-dir",
                                              path("dev-ck"), "--checkpoint-every", "3"}));
  gBigram.crashAtStep = -1;
  EXPECT_EQ(crashed.status, 1);
  EXPECT_NE(crashed.err.find("copying test device"), std::string::npos) << crashed.err;
  RunResult resumed = runMain(dev.spec, with({"--log-dir", path("dev"), "--checkpoint-dir",
                                              path("dev-ck"), "--checkpoint-every", "3",
                                              "--resume"}));
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_GT(llamac::test::CopyingDevice::toDevice, 0);
  EXPECT_GT(llamac::test::CopyingDevice::toHost, 0);

  auto a = readMetrics(path("cpu/metrics.csv"));
  auto b = readMetrics(path("dev/metrics.csv"));
  ASSERT_EQ(a.size(), 12u);
  ASSERT_EQ(b.size(), 12u);
  for (int64_t s = 1; s <= 12; ++s)
    for (const char *col : {"loss", "lr", "grad_norm", "valid_loss"})
      EXPECT_EQ(a[s][col], b[s][col]) << "step " << s << " " << col;
  LoadedCheckpoint x, y;
  std::string error;
  ASSERT_TRUE(loadCheckpoint(path("cpu-ck"), -1, x, &error)) << error;
  ASSERT_TRUE(loadCheckpoint(path("dev-ck"), -1, y, &error)) << error;
  for (const auto &[name, t] : x.tensors.tensors) {
    const Tensor *u = y.tensors.find(name);
    ASSERT_TRUE(u) << name;
    EXPECT_TRUE(t.data == u->data) << name << ": the checkpoint must hold the device's values";
  }
}

TEST_F(TrainMainTest, ADeviceThatCannotOpenFailsBeforeWritingAnything) {
  FakeProgram prog("bigram", kVocab, kBatch, kSeq);
  prog.spec.createDevice = llamac::test::openMissingDevice;
  RunResult r = runMain(prog.spec, trainArgs({"--steps", "3", "--log-dir", path("logs"),
                                              "--checkpoint-dir", path("ck")}));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("no test device here"), std::string::npos) << r.err;
  EXPECT_TRUE(snapshot(path("logs")).empty());
  EXPECT_TRUE(snapshot(path("ck")).empty());
}

TEST_F(TrainMainTest, InitialisesParametersLikeTheInterpreter) {
  FakeProgram prog("bigram", kVocab, kBatch, kSeq);
  writeBytes(path("empty.safetensors"), "");
  std::map<std::string, std::string> none;
  ASSERT_TRUE(writeSafetensors(path("noinputs.safetensors"), {}, none, nullptr));
  RunResult r =
      runMain(prog.spec, {"--run-function", "weights", "--inputs", path("noinputs.safetensors"),
                          "-o", path("w.safetensors"), "--seed", "3"});
  ASSERT_EQ(r.status, 0) << r.err;
  TensorFile out;
  std::string error;
  ASSERT_TRUE(readSafetensors(path("w.safetensors"), out, &error)) << error;
  const Tensor *w = out.find("result0");
  ASSERT_TRUE(w);
  ASSERT_EQ(w->shape, (std::vector<int64_t>{kVocab, kVocab}));
  uint64_t key = streamKey(3, "tok_embeddings");
  for (int64_t i = 0; i < w->numElements(); ++i)
    ASSERT_EQ((*w)[i], double(float(0.02 * gaussian(key, uint64_t(i))))) << i;
  EXPECT_EQ(out.metadata["function"], "weights");
  EXPECT_EQ(out.metadata["model"], "bigram");
}

TEST_F(TrainMainTest, RunFunctionRoundTrips) {
  FakeProgram prog("bigram", kVocab, kBatch, kSeq);
  // Weights and inputs as `llamac run --save-params / --save-inputs` write them.
  Tensor W(DType::F32, {kVocab, kVocab});
  for (int64_t i = 0; i < W.numElements(); ++i)
    W[i] = double(float(std::sin(double(i)) * 0.5));
  Tensor tokens(DType::I32, {kBatch, kSeq}), targets(DType::I32, {kBatch, kSeq});
  for (int64_t i = 0; i < tokens.numElements(); ++i) {
    tokens[i] = double((i * 37) % kVocab);
    targets[i] = double((i * 11 + 5) % kVocab);
  }
  std::string error;
  std::map<std::string, std::string> meta;
  ASSERT_TRUE(writeSafetensors(path("p.safetensors"), {{"tok_embeddings", &W}}, meta, &error))
      << error;
  ASSERT_TRUE(writeSafetensors(path("in.safetensors"), {{"arg0", &tokens}, {"arg1", &targets}},
                               meta, &error))
      << error;
  RunResult r =
      runMain(prog.spec, {"--run-function", "loss", "--inputs", path("in.safetensors"), "--params",
                          path("p.safetensors"), "-o", path("out.safetensors")});
  ASSERT_EQ(r.status, 0) << r.err;
  TensorFile out;
  ASSERT_TRUE(readSafetensors(path("out.safetensors"), out, &error)) << error;
  const Tensor *loss = out.find("result0");
  ASSERT_TRUE(loss);
  EXPECT_EQ(loss->rank(), 0);

  // The same function called directly on the same weights.
  std::vector<float> params(size_t(prog.spec.paramBytes / 4), 0.0f), arena(kVocab);
  Context ctx;
  ctx.params = reinterpret_cast<std::byte *>(params.data());
  ctx.arena = reinterpret_cast<std::byte *>(arena.data());
  for (int64_t i = 0; i < W.numElements(); ++i)
    params[size_t(i)] = float(W[i]);
  std::vector<int32_t> tk(tokens.data.begin(), tokens.data.end()),
      tg(targets.data.begin(), targets.data.end());
  float expected = bigramLoss(ctx, tk.data(), tg.data(), false);
  EXPECT_EQ((*loss)[0], double(expected));

  // Inputs may also be named as the function names them.
  ASSERT_TRUE(writeSafetensors(path("named.safetensors"),
                               {{"tokens", &tokens}, {"targets", &targets}}, meta, &error));
  RunResult named =
      runMain(prog.spec, {"--run-function", "loss", "--inputs", path("named.safetensors"),
                          "--params", path("p.safetensors"), "-o", path("out2.safetensors")});
  ASSERT_EQ(named.status, 0) << named.err;
  TensorFile out2;
  ASSERT_TRUE(readSafetensors(path("out2.safetensors"), out2, &error)) << error;
  EXPECT_EQ(out2.find("result0")->data, loss->data);
}

TEST_F(TrainMainTest, RunFunctionErrors) {
  FakeProgram prog("bigram", kVocab, kBatch, kSeq);
  Tensor tokens(DType::I32, {kBatch, kSeq}), wrong(DType::I32, {2, 2});
  Tensor bad(DType::F32, {kBatch, kSeq}, 0.5);
  std::map<std::string, std::string> meta;
  std::string error;
  ASSERT_TRUE(writeSafetensors(path("one.safetensors"), {{"arg0", &tokens}}, meta, &error));
  ASSERT_TRUE(writeSafetensors(path("shape.safetensors"), {{"arg0", &wrong}, {"arg1", &tokens}},
                               meta, &error));
  ASSERT_TRUE(writeSafetensors(path("extra.safetensors"),
                               {{"arg0", &tokens}, {"arg1", &tokens}, {"arg2", &tokens}}, meta,
                               &error));
  ASSERT_TRUE(writeSafetensors(path("frac.safetensors"), {{"arg0", &bad}, {"arg1", &tokens}}, meta,
                               &error));
  ASSERT_TRUE(writeSafetensors(path("badparam.safetensors"), {{"nope", &tokens}}, meta, &error));
  ASSERT_TRUE(writeSafetensors(path("good.safetensors"), {{"arg0", &tokens}, {"arg1", &tokens}},
                               meta, &error));
  writeBytes(path("out.safetensors"), "precious");
  struct Case {
    std::vector<std::string> args;
    int status;
    std::string fragment;
  };
  std::string out = path("out.safetensors");
  std::vector<Case> cases = {
      {{"--run-function", "nope", "--inputs", path("good.safetensors"), "-o", out},
       1,
       "no function 'nope' (it has train_grad, train_update, loss, weights)"},
      {{"--run-function", "loss", "-o", out}, 2, "--run-function needs --inputs"},
      {{"--run-function", "loss", "--inputs", path("good.safetensors")}, 2, "needs -o"},
      {{"--run-function", "loss", "--inputs", path("one.safetensors"), "-o", out},
       1,
       "has no arg1 (targets i32[4x16])"},
      {{"--run-function", "loss", "--inputs", path("shape.safetensors"), "-o", out},
       1,
       "'arg0' has shape 2x2, the function takes i32[4x16]"},
      {{"--run-function", "loss", "--inputs", path("extra.safetensors"), "-o", out},
       1,
       "'arg2' is not an input of loss("},
      {{"--run-function", "loss", "--inputs", path("frac.safetensors"), "-o", out},
       1,
       "element 0 (0.5) is not a valid i32"},
      {{"--run-function", "loss", "--inputs", path("missing.safetensors"), "-o", out},
       1,
       "missing.safetensors"},
      {{"--run-function", "loss", "--inputs", path("good.safetensors"), "--params",
        path("badparam.safetensors"), "-o", out},
       1,
       "'nope' is not a parameter of bigram"},
  };
  for (const Case &c : cases) {
    RunResult r = runMain(prog.spec, c.args);
    EXPECT_EQ(r.status, c.status) << c.fragment << "\n" << r.err;
    EXPECT_NE(r.err.find(c.fragment), std::string::npos)
        << "expected '" << c.fragment << "' in: " << r.err;
    EXPECT_EQ(readBytes(out), "precious") << c.fragment;
  }
}

TEST_F(TrainMainTest, BadInputsFailWithoutTouchingFiles) {
  FakeProgram prog("bigram", kVocab, kBatch, kSeq);
  writeBytes(path("empty.txt"), "");
  writeBytes(path("short.txt"), "the cat\n");
  writeBytes(path("garbage.model"), "this is not a sentencepiece model");
  // Existing outputs that no failed run may change: a metrics file from an earlier run and a
  // checkpoint directory with a file in it.
  fs::create_directories(path("logs"));
  writeBytes(path("logs/metrics.csv"),
             "step,loss,lr,grad_norm,tokens_per_s,valid_loss,tokens,elapsed_s\n1,5,0,0,0,,64,0\n");
  fs::create_directories(path("ck"));
  writeBytes(path("ck/notes.txt"), "mine");
  fs::create_directories(path("foreign"));
  writeBytes(path("foreign/metrics.csv"), "epoch,accuracy\n1,0.5\n");
  std::map<std::string, std::string> before = snapshot(dir_);

  struct Case {
    std::vector<std::string> args;
    int status;
    std::vector<std::string> fragments;
  };
  std::string tok = tokenizer_;
  std::vector<Case> cases = {
      {{"--bogus"}, 2, {"unknown flag '--bogus'"}},
      {{"--steps", "0"}, 2, {"--steps", "at least 1"}},
      {{"--steps", "-4"}, 2, {"--steps"}},
      {{"--steps", "ten"}, 2, {"--steps", "'ten' is not an integer"}},
      {{"--lr", "-1"}, 2, {"--lr", "positive"}},
      {{"--lr", "0"}, 2, {"--lr", "positive"}},
      {{"--lr", "fast"}, 2, {"--lr", "not a number"}},
      {{"--grad-accum", "0"}, 2, {"--grad-accum"}},
      {{"--valid-fraction", "1"}, 2, {"--valid-fraction", "below 1"}},
      {{"--valid-fraction", "-0.5"}, 2, {"--valid-fraction"}},
      {{"--threads", "-2"}, 2, {"--threads"}},
      {{"--batch", "8"}, 2, {"compiled for batch 4 x seq 16", "llamac compile --batch 8 --seq 16"}},
      {{"--seq", "32"}, 2, {"compiled for batch 4 x seq 16", "--seq 32"}},
      {{"--progress", "sometimes"}, 2, {"--progress"}},
      {{"--keep", "2"}, 2, {"--keep needs --checkpoint-dir"}},
  };
  // Each case above gets valid data, tokenizer and output directories; these replace them.
  for (Case &c : cases) {
    std::vector<std::string> a = {"--data",    corpus,       "--tokenizer",      tok,
                                  "--log-dir", path("logs"), "--checkpoint-dir", path("ck"),
                                  "--steps",   "2"};
    if (c.args[0] == "--keep")
      a.resize(6);
    a.insert(a.end(), c.args.begin(), c.args.end());
    c.args = a;
  }
  auto outputs = std::vector<std::string>{"--log-dir", path("logs"), "--checkpoint-dir",
                                          path("ck"),  "--steps",    "2"};
  auto plus = [&](std::vector<std::string> a) {
    a.insert(a.end(), outputs.begin(), outputs.end());
    return a;
  };
  cases.push_back({{"--tokenizer", tok}, 2, {"--data FILE is required"}});
  cases.push_back({{"--data", corpus}, 2, {"--tokenizer FILE is required"}});
  cases.push_back(
      {{"--data", corpus, "--tokenizer", tok, "--resume"}, 2, {"--resume needs --checkpoint-dir"}});
  cases.push_back({plus({"--data", corpus, "--tokenizer", path("missing.model")}),
                   1,
                   {"--tokenizer", "missing.model"}});
  cases.push_back({plus({"--data", corpus, "--tokenizer", path("garbage.model")}),
                   1,
                   {"--tokenizer", "garbage.model"}});
  cases.push_back(
      {plus({"--data", path("nothing.txt"), "--tokenizer", tok}), 1, {"--data", "nothing.txt"}});
  cases.push_back(
      {plus({"--data", path("empty.txt"), "--tokenizer", tok}), 1, {"empty.txt", "empty"}});
  cases.push_back(
      {plus({"--data", path("short.txt"), "--tokenizer", tok}), 1, {"short.txt", "tokens"}});
  cases.push_back(
      {{"--data", corpus, "--tokenizer", tok, "--log-dir", path("foreign"), "--steps", "2"},
       1,
       {"foreign/metrics.csv", "not a metrics file"}});
  cases.push_back(
      {plus({"--data", corpus, "--tokenizer", tok, "--init-params", path("missing.safetensors")}),
       1,
       {"--init-params", "missing.safetensors"}});

  for (const Case &c : cases) {
    std::string joined;
    for (const std::string &a : c.args)
      joined += a + " ";
    RunResult r = runMain(prog.spec, c.args);
    EXPECT_EQ(r.status, c.status) << joined << "\n" << r.err;
    for (const std::string &f : c.fragments)
      EXPECT_NE(r.err.find(f), std::string::npos)
          << joined << "\nexpected '" << f << "' in: " << r.err;
    // Token caches beside a corpus are the driver's own files; nothing else may change.
    std::map<std::string, std::string> after = snapshot(dir_);
    for (auto it = after.begin(); it != after.end();)
      it = it->first.size() > 7 && it->first.rfind(".tokens") == it->first.size() - 7
               ? after.erase(it)
               : std::next(it);
    EXPECT_EQ(after, before) << joined;
  }

  // A tokenizer larger than the program's vocabulary.
  FakeProgram small("bigram", 280, kBatch, kSeq);
  RunResult r = runMain(small.spec, plus({"--data", corpus, "--tokenizer", tok}));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("has 300 pieces"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("vocabulary of 280"), std::string::npos) << r.err;
}

TEST_F(TrainMainTest, ResumeRefusesOtherModelsAndDamagedCheckpoints) {
  FakeProgram prog("bigram", kVocab, kBatch, kSeq);
  std::vector<std::string> base =
      trainArgs({"--steps", "4", "--checkpoint-dir", path("ck"), "--checkpoint-every", "2",
                 "--keep", "5", "--valid-every", "0"});
  RunResult first = runMain(prog.spec, base);
  ASSERT_EQ(first.status, 0) << first.err;
  ASSERT_EQ(listCheckpoints(path("ck")), (std::vector<int64_t>{2, 4}));

  auto resumeWith = [&](const ProgramSpec &spec, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = base;
    // --steps 8 (the last value given wins): there is work left after the checkpoint.
    a.insert(a.end(), {"--steps", "8", "--resume"});
    a.insert(a.end(), extra.begin(), extra.end());
    return runMain(spec, a);
  };
  std::map<std::string, std::string> before = snapshot(path("ck"));

  FakeProgram other("trigram", kVocab, kBatch, kSeq);
  RunResult r = resumeWith(other.spec);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("is of model 'bigram', this program is 'trigram'"), std::string::npos)
      << r.err;

  FakeProgram wider("bigram", kVocab + 20, kBatch, kSeq);
  r = resumeWith(wider.spec);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("has dim = 300, this program has dim = 320"), std::string::npos) << r.err;

  FakeProgram compiled("bigram", kVocab, kBatch, kSeq);
  compiled.configValues[0] = "other-pipeline";
  r = resumeWith(compiled.spec);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("compile.pipeline = bigram-test"), std::string::npos) << r.err;
  EXPECT_EQ(snapshot(path("ck")), before);

  // A corrupt latest checkpoint falls back to the previous one, and says so; when every
  // checkpoint is damaged the loader's message ends the run.
  FakeProgram same("bigram", kVocab, kBatch, kSeq);
  std::string tensors4 = path("ck/step-4/tensors.safetensors");
  std::string bytes = readBytes(tensors4);
  bytes[bytes.size() / 2] ^= 0x40;
  writeBytes(tensors4, bytes);
  std::string tensors2 = path("ck/step-2/tensors.safetensors");
  std::string bytes2 = readBytes(tensors2);
  writeBytes(tensors2, bytes2.substr(0, bytes2.size() / 2));
  before = snapshot(path("ck"));
  r = resumeWith(same.spec);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("fails its checksum"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("step-2/tensors.safetensors"), std::string::npos) << r.err;
  EXPECT_EQ(snapshot(path("ck")), before);

  writeBytes(tensors2, bytes2);
  r = resumeWith(same.spec);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("resumed from " + path("ck/step-2")), std::string::npos) << r.err;
}

} // namespace
