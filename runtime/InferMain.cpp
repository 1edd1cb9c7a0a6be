//===- InferMain.cpp - the driver of `llamac compile --mode infer` programs -----------===//
//
// Parses the flags, checks the compiled program's entry signatures, loads the weights (a
// training checkpoint, a safetensors file, or the seeded initialisation training starts
// from), encodes the prompt, then generates:
//
//   with the KV cache   the prompt goes through `prefill` in chunks of C = ProgramSpec::seq
//                       tokens at positions 0, C, 2C, ..., its remainder and every
//                       generated token through `decode`, one position at a time;
//   --no-kv-cache       every step runs `forward` on the whole sequence so far, padded to
//                       maxSeqLen, and takes the logits at the last real position. The model
//                       is causal, so the padding cannot change them: this is the reference
//                       the cached path must reproduce.
//
// Every check that can fail (flags, program, tokenizer, weights, prompt, lengths) runs
// before anything is written to stdout, so a failed run prints exactly one message on
// stderr. The sampler draws depend only on (seed, position), so the two paths give the same
// tokens for the same seed, not only under greedy decoding.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Checkpoint.h"
#include "runtime/Device.h"
#include "runtime/Flags.h"
#include "runtime/Program.h"
#include "runtime/Random.h"
#include "runtime/Safetensors.h"
#include "runtime/Sampler.h"
#include "runtime/Tokenizer.h"
#include "runtime/cpu/Quantize.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

namespace llamac::rt {

namespace {

/// Exit statuses: a command line that cannot be parsed or makes no sense is a usage error
/// (2, as GNU tools do); anything that fails after that (files, the model) is 1.
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

/// Thrown inside the driver and caught in inferMain: one message, one exit status.
struct Failure {
  std::string message;
  int status;
};

[[noreturn]] void fail(std::string message, int status = kExitFailure) {
  throw Failure{std::move(message), status};
}

std::string shapeText(int32_t rank, const int64_t *shape) {
  std::string s = "[";
  for (int32_t i = 0; i < rank; ++i)
    s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string shapeText(const std::vector<int64_t> &shape) {
  return shapeText(static_cast<int32_t>(shape.size()), shape.data());
}

const char *typeName(ElemType t) {
  switch (t) {
  case ElemType::F32:
    return "f32";
  case ElemType::I32:
    return "i32";
  case ElemType::I64:
    return "i64";
  }
  return "?";
}

struct Expected {
  ElemType type;
  std::vector<int64_t> shape;
};

/// The entry function `name` with exactly the given signature. A generated program always
/// matches; this guards against a driver paired with a program of another mode or version,
/// whose entry points would otherwise be called with buffers of the wrong size.
const FunctionSpec &requireFunction(const ProgramSpec &program, const char *name,
                                    const std::vector<Expected> &inputs,
                                    const std::vector<Expected> &outputs) {
  const FunctionSpec *fn = findFunction(program, name);
  if (!fn || !fn->fn)
    fail(std::string("the program has no entry function '") + name +
         "' (was it compiled with --mode infer?)");
  auto check = [&](const char *what, int32_t count, const TensorSpec *specs,
                   const std::vector<Expected> &want) {
    if (count != static_cast<int32_t>(want.size()))
      fail(std::string("entry function '") + name + "' has " + std::to_string(count) + " " + what +
           "s, expected " + std::to_string(want.size()));
    for (int32_t i = 0; i < count; ++i) {
      const TensorSpec &s = specs[i];
      const Expected &w = want[i];
      bool same = s.type == w.type && s.rank == static_cast<int32_t>(w.shape.size()) &&
                  std::equal(w.shape.begin(), w.shape.end(), s.shape);
      if (!same)
        fail(std::string("entry function '") + name + "' " + what + " " + std::to_string(i) +
             " is " + typeName(s.type) + shapeText(s.rank, s.shape) + ", expected " +
             typeName(w.type) + shapeText(w.shape));
    }
  };
  check("input", fn->numInputs, fn->inputs, inputs);
  check("output", fn->numOutputs, fn->outputs, outputs);
  return *fn;
}

/// "1,2, 3" -> ids, each in [0, vocab).
std::vector<int32_t> parsePromptIds(const std::string &text, int64_t vocab) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size())
      fail("--prompt-ids: '" + item + "' is not a token id (expected e.g. \"1,2,3\")", kExitUsage);
    if (v < 0 || v >= vocab)
      fail("--prompt-ids: token id " + item + " is outside the vocabulary [0, " +
               std::to_string(vocab) + ")",
           kExitUsage);
    ids.push_back(static_cast<int32_t>(v));
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  return ids;
}

/// Writes a weight's f32 values into its slot: as they are, or quantised to int8 rows with
/// per-row scales where the program stores it so (`llamac compile --weights int8`).
void storeWeight(const ParamSpec &p, const float *values, std::byte *params) {
  if (p.storage == ElemType::I8) {
    int64_t rows = p.rank > 0 ? p.shape[0] : 1;
    quantizeRowsQ8(values, rows, p.elements / rows, reinterpret_cast<int8_t *>(params + p.offset),
                   reinterpret_cast<float *>(params + p.scaleOffset));
    return;
  }
  std::copy(values, values + p.elements, reinterpret_cast<float *>(params + p.offset));
}

/// Copies the Weight-role parameters from `tensors` (a checkpoint's or a safetensors
/// file's) into the parameter region, checking every name and shape first. `source` names
/// the file or directory in messages.
void loadWeights(const ProgramSpec &program, const TensorFile &tensors, const std::string &source,
                 std::byte *params) {
  for (int32_t i = 0; i < program.numParams; ++i) {
    const ParamSpec &p = program.params[i];
    if (p.role != ParamRole::Weight)
      continue;
    const Tensor *t = tensors.find(p.name);
    if (!t)
      fail(source + " has no tensor '" + p.name + "' (a weight of model '" + program.modelName +
           "')");
    std::vector<int64_t> want(p.shape, p.shape + p.rank);
    if (t->shape != want)
      fail(source + ": tensor '" + p.name + "' has shape " + shapeText(t->shape) + ", the model '" +
           program.modelName + "' expects " + shapeText(want));
    if (!isFloat(t->dtype))
      fail(source + ": tensor '" + p.name + "' is " + dtypeName(t->dtype) +
           ", expected a floating-point type");
  }
  for (int32_t i = 0; i < program.numParams; ++i) {
    const ParamSpec &p = program.params[i];
    if (p.role != ParamRole::Weight)
      continue;
    const Tensor &t = *tensors.find(p.name);
    std::vector<float> values(p.elements);
    for (int64_t j = 0; j < p.elements; ++j)
      values[j] = static_cast<float>(t.data[j]);
    storeWeight(p, values.data(), params);
  }
}

/// The initial weights of a training run with `seed` (what TrainMain writes at step 0).
void initWeights(const ProgramSpec &program, uint64_t seed, std::byte *params) {
  for (int32_t i = 0; i < program.numParams; ++i) {
    const ParamSpec &p = program.params[i];
    if (p.role != ParamRole::Weight)
      continue;
    std::vector<float> values(p.elements);
    float *dst = values.data();
    switch (p.init) {
    case ParamInit::Zeros:
      std::fill(dst, dst + p.elements, 0.0f);
      break;
    case ParamInit::Ones:
      std::fill(dst, dst + p.elements, 1.0f);
      break;
    case ParamInit::Normal: {
      uint64_t key = streamKey(seed, p.name);
      for (int64_t j = 0; j < p.elements; ++j)
        dst[j] = static_cast<float>(p.std * gaussian(key, static_cast<uint64_t>(j)));
      break;
    }
    }
    storeWeight(p, dst, params);
  }
}

/// Whether `s` ends in the middle of a character: an incomplete UTF-8 sequence, or the
/// replacement character SentencePiece writes for bytes that do not form one yet.
bool endsIncomplete(const std::string &s) {
  if (s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0)
    return true;
  // Look back over at most three continuation bytes for the lead byte.
  size_t n = s.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    unsigned char c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80)
      continue;
    size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : 4;
    return length > back;
  }
  return false;
}

/// Turns generated ids into text as they come. Decoding tokens one at a time is wrong for
/// SentencePiece (a piece's leading "▁" is dropped at the start of a decode, and byte-fallback
/// pieces make sense only in groups), so each step decodes the new tokens together with a
/// few tokens of context and emits what they add. Text is held back while it ends inside a
/// UTF-8 character.
class TextStream {
public:
  TextStream(const Tokenizer &tokenizer, const std::vector<int32_t> &prompt, bool stream)
      : tokenizer_(tokenizer), ids_(prompt), printed_(prompt.size()), stream_(stream) {}

  void push(int32_t id) {
    ids_.push_back(id);
    emit(/*final=*/false);
  }
  /// Emits whatever is held back and returns the whole generated text.
  const std::string &finish() {
    emit(/*final=*/true);
    return text_;
  }
  bool wroteAnything() const { return !text_.empty(); }

private:
  void emit(bool final) {
    if (printed_ == ids_.size())
      return;
    // A few tokens of context carry the spacing; more would only cost time.
    constexpr size_t kContext = 8;
    size_t from = printed_ > kContext ? printed_ - kContext : 0;
    std::vector<int32_t> context(ids_.begin() + from, ids_.begin() + printed_);
    std::vector<int32_t> all(ids_.begin() + from, ids_.end());
    std::string before, after, error;
    if (!tokenizer_.decode(context, before, &error) || !tokenizer_.decode(all, after, &error))
      fail(error);
    // A UTF-8 character spans at most 4 byte pieces: past that, the text will not improve.
    if (!final && endsIncomplete(after) && ids_.size() - printed_ < 4)
      return;
    size_t common = 0;
    while (common < before.size() && common < after.size() && before[common] == after[common])
      ++common;
    std::string added = after.substr(common);
    printed_ = ids_.size();
    text_ += added;
    if (stream_ && !added.empty()) {
      std::fwrite(added.data(), 1, added.size(), stdout);
      std::fflush(stdout);
    }
  }

  const Tokenizer &tokenizer_;
  std::vector<int32_t> ids_;
  size_t printed_;
  bool stream_;
  std::string text_;
};

std::string programName(int argc, char **argv) {
  if (argc < 1 || !argv[0])
    return "infer";
  std::string_view p = argv[0];
  size_t slash = p.rfind('/');
  return std::string(slash == std::string_view::npos ? p : p.substr(slash + 1));
}

int run(int argc, char **argv, const ProgramSpec &program) {
  const std::string name = programName(argc, argv);
  FlagParser flags(name, std::string("Generates text with the compiled model '") +
                             program.modelName + "'.");
  flags.addSection("Weights (default: the seeded initialisation of a training run)");
  flags.addString("checkpoint", "", "a training checkpoint directory (its `latest` step)", "DIR");
  flags.addInt("step", -1, "with --checkpoint: this step, not the one `latest` names", 0);
  flags.addString("params", "", "weights by name from a safetensors file", "FILE");
  // Training's default seed, so that a run without weights starts from the same model.
  flags.addInt("seed", 1, "seed of sampling and of the weights' initialisation", 0);
  flags.addSection("Prompt");
  flags.addString("tokenizer", "", "SentencePiece model (required unless --prompt-ids)", "FILE");
  flags.addString("prompt", "", "the prompt text", "TEXT");
  flags.addString("prompt-ids", "", "the prompt as token ids, used as given (no BOS added)", "IDS");
  flags.addSwitch("bos", "prepend BOS to --prompt (the default)");
  flags.addSwitch("no-bos", "do not prepend BOS to --prompt");
  flags.addSection("Generation");
  flags.addInt("max-tokens", 256,
               "tokens to generate at most (by default no further than the context)", 1);
  flags.addDouble("temperature", 0.8, "sampling temperature; 0 means greedy", 0);
  flags.addDouble("top-p", 0.9,
                  "nucleus: keep the most probable tokens up to this mass, in (0, 1]");
  flags.addInt("top-k", 0, "keep at most this many most probable tokens (0: all)", 0);
  flags.addSwitch("greedy", "always take the most probable token");
  flags.addSwitch("ignore-eos", "go on after EOS (the tokenizer's; without one there is none)");
  flags.addSwitch("no-kv-cache",
                  "run `forward` over the whole sequence at each step (the KV cache's reference)");
  flags.addInt("threads", 0, "CPU threads (0: the OpenMP default)", 0, 4096);
  flags.addSection("Output");
  flags.addSwitch("no-stream", "print the text when generation ends, not token by token");
  flags.addSwitch("echo", "print the prompt text before the generated text");
  flags.addSwitch("print-ids", "print the generated token ids on one line");
  flags.addSwitch("profile", "print the time spent per kernel kind at the end (stderr)");

  std::string error;
  switch (flags.parse(argc, argv, &error)) {
  case FlagParser::Result::Help:
    std::fputs(flags.usage().c_str(), stdout);
    return 0;
  case FlagParser::Result::Error:
    fail(error, kExitUsage);
  case FlagParser::Result::Ok:
    break;
  }

  // --- flags that only make sense together -------------------------------------------------
  const std::string checkpointDir = flags.getString("checkpoint");
  const std::string paramsFile = flags.getString("params");
  const std::string tokenizerFile = flags.getString("tokenizer");
  if (flags.given("checkpoint") && checkpointDir.empty())
    fail("--checkpoint: empty directory name", kExitUsage);
  if (flags.given("params") && paramsFile.empty())
    fail("--params: empty file name", kExitUsage);
  if (flags.given("tokenizer") && tokenizerFile.empty())
    fail("--tokenizer: empty file name", kExitUsage);
  if (!checkpointDir.empty() && !paramsFile.empty())
    fail("--checkpoint and --params both give the weights; use one", kExitUsage);
  if (flags.given("step") && checkpointDir.empty())
    fail("--step needs --checkpoint", kExitUsage);
  if (flags.getSwitch("bos") && flags.getSwitch("no-bos"))
    fail("--bos and --no-bos contradict each other", kExitUsage);
  const bool hasPrompt = flags.given("prompt"), hasPromptIds = flags.given("prompt-ids");
  if (hasPrompt && hasPromptIds)
    fail("--prompt and --prompt-ids both give the prompt; use one", kExitUsage);
  if (!hasPrompt && !hasPromptIds)
    fail("no prompt: give --prompt TEXT (with --tokenizer) or --prompt-ids IDS", kExitUsage);
  if (hasPrompt && flags.getString("prompt").empty())
    fail("--prompt: the prompt is empty", kExitUsage);
  if (hasPrompt && tokenizerFile.empty())
    fail("--prompt needs --tokenizer FILE to encode it (or give --prompt-ids)", kExitUsage);
  const double topP = flags.getDouble("top-p");
  if (!(topP > 0 && topP <= 1)) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", topP);
    fail(std::string("--top-p: must be in (0, 1], got ") + text, kExitUsage);
  }

  int64_t maxTokens = flags.getInt("max-tokens");
  const bool useCache = !flags.getSwitch("no-kv-cache");
  SamplerOptions samplerOptions;
  samplerOptions.temperature = flags.getDouble("temperature");
  samplerOptions.topP = topP;
  samplerOptions.topK = flags.getInt("top-k");
  samplerOptions.greedy = flags.getSwitch("greedy");
  samplerOptions.seed = static_cast<uint64_t>(flags.getInt("seed"));

  // --- the program -------------------------------------------------------------------------
  if (std::string_view(program.mode) != "infer")
    fail(std::string("this program was compiled with --mode ") + program.mode +
         "; inference needs --mode infer");
  // Entry functions take host pointers on every target (a device program stages them), so
  // only the device itself differs: a program for anything but the CPU brings its own.
  if (std::string_view(program.target) != "cpu" && !program.createDevice)
    fail(std::string("the program targets ") + program.target + " but carries no device");
  const int64_t V = program.vocab, C = program.seq, S = program.maxSeqLen;
  if (V < 1 || C < 1 || S < 1 || program.batch != 1)
    fail("the program's shapes are not those of an inference program (batch " +
         std::to_string(program.batch) + ", chunk " + std::to_string(C) + ", vocab " +
         std::to_string(V) + ", max_seq_len " + std::to_string(S) + ")");
  const FunctionSpec *prefillFn = nullptr, *decodeFn = nullptr, *forwardFn = nullptr;
  if (useCache) {
    prefillFn = &requireFunction(program, "prefill", {{ElemType::I32, {1, C}}, {ElemType::I64, {}}},
                                 {{ElemType::F32, {1, C, V}}});
    decodeFn = &requireFunction(program, "decode", {{ElemType::I32, {1, 1}}, {ElemType::I64, {}}},
                                {{ElemType::F32, {1, 1, V}}});
  } else {
    forwardFn = &requireFunction(program, "forward", {{ElemType::I32, {1, S}}},
                                 {{ElemType::F32, {1, S, V}}});
  }

  // --- tokenizer and prompt ----------------------------------------------------------------
  Tokenizer tokenizer;
  if (!tokenizerFile.empty()) {
    if (!tokenizer.load(tokenizerFile, &error))
      fail("cannot load the tokenizer: " + error);
    if (tokenizer.vocabSize() > V)
      fail("the tokenizer " + tokenizerFile + " has " + std::to_string(tokenizer.vocabSize()) +
           " pieces but the model's vocabulary has only " + std::to_string(V));
  }
  std::vector<int32_t> prompt;
  if (hasPromptIds) {
    // With a tokenizer the prompt is decoded too (the context of the streamed text), so
    // its ids must be pieces of the tokenizer as well as tokens of the model.
    prompt = parsePromptIds(flags.getString("prompt-ids"),
                            tokenizer.isLoaded() ? tokenizer.vocabSize() : V);
  } else {
    if (!tokenizer.encode(flags.getString("prompt"), !flags.getSwitch("no-bos"), prompt, &error))
      fail("cannot encode the prompt: " + error);
    if (prompt.empty())
      fail("--prompt: the prompt encodes to no tokens", kExitUsage);
  }
  const int64_t P = static_cast<int64_t>(prompt.size());
  // Without a sliding window the cache holds maxSeqLen positions; `forward` always takes
  // at most S tokens.
  // The default length stops at the end of the context; an explicit one must fit.
  if ((!useCache || program.window == 0) && !flags.given("max-tokens") && P < S)
    maxTokens = std::min(maxTokens, S - P);
  if ((!useCache || program.window == 0) && P + maxTokens > S)
    fail("the prompt (" + std::to_string(P) + " tokens) plus --max-tokens (" +
             std::to_string(maxTokens) + ") exceeds the model's context of " + std::to_string(S) +
             " tokens",
         kExitUsage);
  // Generated ids beyond the tokenizer's pieces could not be printed: a model vocabulary
  // padded past the tokenizer's never samples them.
  const int64_t sampleVocab = tokenizer.isLoaded() ? tokenizer.vocabSize() : V;
  const int32_t eos = tokenizer.isLoaded() ? tokenizer.eosId() : -1;
  const bool stopAtEos = eos >= 0 && !flags.getSwitch("ignore-eos");

  // --- device, memory, weights -------------------------------------------------------------
  std::unique_ptr<Device> device =
      createProgramDevice(program, static_cast<int>(flags.getInt("threads")), &error);
  if (!device)
    fail("cannot open the device: " + error);
  auto allocate = [&](int64_t bytes, const char *what) -> std::unique_ptr<Buffer> {
    if (bytes <= 0)
      return nullptr;
    std::unique_ptr<Buffer> b = device->allocate(static_cast<size_t>(bytes), &error);
    if (!b)
      fail(std::string("cannot allocate the ") + what + ": " + error);
    return b;
  };
  std::unique_ptr<Buffer> paramsBuf = allocate(program.paramBytes, "parameters");
  std::unique_ptr<Buffer> arenaBuf = allocate(program.arenaBytes, "arena");
  std::unique_ptr<Buffer> cacheBuf = useCache ? allocate(program.cacheBytes, "KV cache") : nullptr;
  Context ctx;
  ctx.params = paramsBuf ? paramsBuf->data() : nullptr;
  ctx.arena = arenaBuf ? arenaBuf->data() : nullptr;
  ctx.cache = cacheBuf ? cacheBuf->data() : nullptr;
  ctx.backend = device->backend();
  // Weights are written on the host: into the region itself on the CPU, else into a host
  // copy that goes to the device once they are all there.
  std::vector<std::byte> hostParams;
  if (!device->hostAccessible() && ctx.params)
    hostParams.assign(static_cast<size_t>(program.paramBytes), std::byte{0});
  std::byte *weightsAt = hostParams.empty() ? ctx.params : hostParams.data();
  Profiler profiler;
  if (flags.getSwitch("profile"))
    ctx.profiler = &profiler;

  std::string weightsFrom;
  if (!checkpointDir.empty()) {
    LoadedCheckpoint loaded;
    if (!loadCheckpoint(checkpointDir, flags.getInt("step"), loaded, &error))
      fail("cannot load the checkpoint: " + error);
    if (loaded.state.modelName != program.modelName)
      fail("the checkpoint " + loaded.directory + " is of model '" + loaded.state.modelName +
           "', this program runs '" + program.modelName + "'");
    // A checkpoint records the tokenizer its run trained with (TrainMain); another one
    // still runs but produces nonsense, which deserves a warning, not a refusal.
    auto recorded = loaded.state.extra.find("tokenizer_checksum");
    if (tokenizer.isLoaded() && recorded != loaded.state.extra.end()) {
      char mine[32];
      std::snprintf(mine, sizeof(mine), "%016llx",
                    static_cast<unsigned long long>(tokenizer.checksum()));
      if (recorded->second != mine)
        std::fprintf(stderr,
                     "%s: warning: the checkpoint was trained with another tokenizer "
                     "(checksum %s, %s has %s)\n",
                     name.c_str(), recorded->second.c_str(), tokenizerFile.c_str(), mine);
    }
    loadWeights(program, loaded.tensors, loaded.directory, weightsAt);
    weightsFrom = loaded.directory + " (step " + std::to_string(loaded.state.step) + ")";
  } else if (!paramsFile.empty()) {
    TensorFile file;
    if (!readSafetensors(paramsFile, file, &error))
      fail("cannot read the parameters: " + error);
    loadWeights(program, file, paramsFile, weightsAt);
    weightsFrom = paramsFile;
  } else {
    initWeights(program, samplerOptions.seed, weightsAt);
    weightsFrom = "random initialisation, seed " + std::to_string(samplerOptions.seed);
  }

  if (!hostParams.empty() &&
      !device->copyToDevice(ctx.params, hostParams.data(), hostParams.size(), &error))
    fail("cannot copy the weights to the device: " + error);

  // --- generation --------------------------------------------------------------------------
  // Nothing has been written so far; from here on only the model can fail, and it does not.
  std::fprintf(stderr, "%s: model '%s' on %s, weights from %s, %s\n", name.c_str(),
               program.modelName, device->name().c_str(), weightsFrom.c_str(),
               useCache ? "KV cache" : "no KV cache (forward over the whole sequence)");
  std::unique_ptr<Stream> stream = device->createStream();
  auto call = [&](const FunctionSpec &fn, std::vector<void *> inputs, void *output) {
    void *outputs[1] = {output};
    stream->launch(fn.name, [&] { fn.fn(ctx, inputs.data(), outputs); });
  };

  Sampler sampler(samplerOptions);
  const bool printText = tokenizer.isLoaded();
  const bool streamText = printText && !flags.getSwitch("no-stream");
  std::unique_ptr<TextStream> text =
      printText ? std::make_unique<TextStream>(tokenizer, prompt, streamText) : nullptr;
  if (printText && flags.getSwitch("echo") && flags.given("prompt")) {
    std::fputs(flags.getString("prompt").c_str(), stdout);
    std::fflush(stdout);
  }

  std::vector<int32_t> sequence = prompt;
  std::vector<float> logits; // the row for the next position is `next`
  const float *next = nullptr;
  std::vector<int32_t> window; // --no-kv-cache: the padded input of `forward`
  int64_t decodePos = 0;       // with the cache: positions already in it

  // Brings `next` to the logits of position sequence.size(), given that the cache (if
  // used) holds every position before `decodePos`.
  auto advance = [&]() {
    const int64_t n = static_cast<int64_t>(sequence.size());
    if (!useCache) {
      window.assign(static_cast<size_t>(S), 0);
      std::copy(sequence.begin(), sequence.end(), window.begin());
      logits.resize(static_cast<size_t>(S * V));
      call(*forwardFn, {window.data()}, logits.data());
      next = logits.data() + (n - 1) * V;
      return;
    }
    while (n - decodePos >= C) {
      int64_t pos = decodePos;
      logits.resize(static_cast<size_t>(C * V));
      call(*prefillFn, {sequence.data() + pos, &pos}, logits.data());
      decodePos += C;
      next = logits.data() + (C - 1) * V;
    }
    while (decodePos < n) {
      int64_t pos = decodePos;
      logits.resize(static_cast<size_t>(V));
      call(*decodeFn, {sequence.data() + pos, &pos}, logits.data());
      ++decodePos;
      next = logits.data();
    }
  };

  Timer timer;
  advance();
  stream->synchronize();
  const double prefillSeconds = timer.seconds();

  timer.reset();
  std::vector<int32_t> generated;
  bool sawEos = false;
  while (static_cast<int64_t>(generated.size()) < maxTokens) {
    int32_t token = sampler.sample(next, sampleVocab, static_cast<int64_t>(sequence.size()));
    generated.push_back(token);
    sequence.push_back(token);
    if (stopAtEos && token == eos) {
      sawEos = true;
      break;
    }
    if (text)
      text->push(token);
    if (static_cast<int64_t>(generated.size()) < maxTokens)
      advance();
  }
  stream->synchronize();
  const double decodeSeconds = timer.seconds();

  if (text) {
    const std::string &all = text->finish();
    if (!streamText)
      std::fwrite(all.data(), 1, all.size(), stdout);
    std::fputs("\n", stdout);
  }
  if (flags.getSwitch("print-ids")) {
    std::string line;
    for (size_t i = 0; i < generated.size(); ++i)
      line += (i ? " " : "") + std::to_string(generated[i]);
    std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);

  auto rate = [](double tokens, double seconds) { return seconds > 0 ? tokens / seconds : 0.0; };
  std::fprintf(stderr, "prompt: %lld tokens, prefill %.3f s (%.1f tok/s)\n",
               static_cast<long long>(P), prefillSeconds, rate(double(P), prefillSeconds));
  std::fprintf(stderr, "generated: %zu tokens%s, decode %.3f s (%.1f tok/s)\n", generated.size(),
               sawEos ? " (stopped at EOS)" : "", decodeSeconds,
               rate(double(generated.size()), decodeSeconds));
  if (ctx.profiler)
    std::fprintf(stderr, "%s", profiler.report().c_str());
  return 0;
}

} // namespace

int inferMain(int argc, char **argv, const ProgramSpec &program) {
  std::string name = programName(argc, argv);
  try {
    return run(argc, argv, program);
  } catch (const Failure &f) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s: error: %s\n", name.c_str(), f.message.c_str());
    return f.status;
  } catch (const std::bad_alloc &) {
    std::fprintf(stderr, "%s: error: out of memory\n", name.c_str());
  } catch (const std::exception &e) {
    std::fprintf(stderr, "%s: error: %s\n", name.c_str(), e.what());
  }
  return kExitFailure;
}

} // namespace llamac::rt
