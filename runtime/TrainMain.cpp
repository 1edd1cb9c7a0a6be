//===- TrainMain.cpp - the training driver of compiled llamac programs ---------------===//
//
// trainMain is the whole of a generated training executable except the compiled functions:
// flags, tokenizer and token data, parameter initialisation, the step loop (gradient
// accumulation over micro-batches, then one optimizer update), validation, metrics,
// checkpoints and resumption, and a harness that runs one entry function on inputs from a
// file (for comparing a compiled program with `llamac run`).
//
// Order of work: every flag and input is validated, and the tokenizer, data, parameters and
// any checkpoint are loaded, before anything is written (only the token cache beside the
// corpus may be written earlier, and it is never a user file); so a bad command line or a bad
// input never touches the log or checkpoint directories or the harness's output.
//
// Resumption is exact: the batch of step s micro-batch m depends only on (seed, s, m) (see
// TokenData.h), the learning-rate schedule is computed inside train_update from the step,
// and every other piece of state (parameters, accumulated gradients, AdamW moments, step,
// tokens consumed, seed) is in the checkpoint. Nothing else carries from step to step, so
// the losses after a resume are bit-identical to those of an uninterrupted run.
//
// Exit status: 0 success, 1 a failure (bad input file, checkpoint mismatch, I/O error),
// 2 a usage error (unknown flag, bad value).
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Checkpoint.h"
#include "runtime/Communicator.h"
#include "runtime/Device.h"
#include "runtime/Events.h"
#include "runtime/FileUtil.h"
#include "runtime/Flags.h"
#include "runtime/Program.h"
#include "runtime/Random.h"
#include "runtime/Safetensors.h"
#include "runtime/TokenData.h"
#include "runtime/Tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <thread>
#include <exception>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace llamac::rt {

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

/// The metrics.csv header; one row per optimizer step. Values of f32 quantities are printed
/// with %.9g, which reads back to the same float, so runs can be compared bit for bit.
const char *const kTrainCsvHeader =
    "step,loss,lr,grad_norm,tokens_per_s,valid_loss,tokens,elapsed_s";

/// Run settings recorded in checkpoints that may legitimately change on resume (a longer
/// run, a new peak learning rate); a change is reported but not refused.
const char *const kRunConfigKeys[] = {"grad_accum", "lr", "steps", "valid_fraction"};

std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char *fmt, ...) {
  char buf[1024];
  va_list args;
  va_start(args, fmt);
  int n = std::vsnprintf(buf, sizeof(buf), fmt, args);
  va_end(args);
  if (n < 0)
    return "";
  if (size_t(n) < sizeof(buf))
    return std::string(buf, size_t(n));
  std::string big(size_t(n) + 1, '\0');
  va_start(args, fmt);
  std::vsnprintf(big.data(), big.size(), fmt, args);
  va_end(args);
  big.resize(size_t(n));
  return big;
}

std::string formatBytes(double bytes) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? format("%.0f B", bytes) : format("%.2f %s", bytes, units[u]);
}

/// 1.23G, 45.6k: counts and rates with a decimal prefix.
std::string formatSi(double v) {
  const char *units[] = {"", "k", "M", "G", "T", "P", "E"};
  int u = 0;
  while (std::fabs(v) >= 1000 && u < 6) {
    v /= 1000;
    ++u;
  }
  return format("%.3g%s", v, units[u]);
}

std::string formatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0)
    return "?";
  auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600)
    return format("%" PRId64 ":%02d:%02d", s / 3600, int(s / 60 % 60), int(s % 60));
  return format("%d:%02d", int(s / 60), int(s % 60));
}

const char *elemTypeName(ElemType t) {
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

size_t elemSize(ElemType t) { return t == ElemType::I64 ? 8 : 4; }

DType toDType(ElemType t) {
  switch (t) {
  case ElemType::F32:
    return DType::F32;
  case ElemType::I32:
    return DType::I32;
  case ElemType::I64:
    return DType::I64;
  }
  return DType::F32;
}

std::vector<int64_t> specShape(const TensorSpec &t) {
  return std::vector<int64_t>(t.shape, t.shape + std::max(0, t.rank));
}
std::vector<int64_t> paramShape(const ParamSpec &p) {
  return std::vector<int64_t>(p.shape, p.shape + std::max(0, p.rank));
}
int64_t product(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// "f32[4x64]", "f32[]" for a scalar.
std::string describe(const TensorSpec &t) {
  return std::string(elemTypeName(t.type)) + "[" + (t.rank > 0 ? shapeString(specShape(t)) : "") +
         "]";
}

std::string signature(const FunctionSpec &f) {
  std::string s = std::string(f.name) + "(";
  for (int32_t i = 0; i < f.numInputs; ++i)
    s += (i ? ", " : "") + std::string(f.inputs[i].name) + " " + describe(f.inputs[i]);
  s += ") -> (";
  for (int32_t i = 0; i < f.numOutputs; ++i)
    s += (i ? ", " : "") + std::string(f.outputs[i].name) + " " + describe(f.outputs[i]);
  return s + ")";
}


/// The checkpoint (and --info) form of a double: exact round trip.
std::string exactText(double v) { return format("%.17g", v); }

/// The expected tensor signature of an entry function, checked once at start-up so that a
/// mismatched program fails with a message instead of corrupting memory.
struct Expect {
  ElemType type;
  std::vector<int64_t> shape;
};

bool checkSignature(const FunctionSpec &f, const std::vector<Expect> &inputs,
                    const std::vector<Expect> &outputs, std::string *error) {
  auto matches = [](const TensorSpec &t, const Expect &e) {
    return t.type == e.type && specShape(t) == e.shape;
  };
  bool ok =
      f.fn && f.numInputs == int32_t(inputs.size()) && f.numOutputs == int32_t(outputs.size());
  for (size_t i = 0; ok && i < inputs.size(); ++i)
    ok = matches(f.inputs[i], inputs[i]);
  for (size_t i = 0; ok && i < outputs.size(); ++i)
    ok = matches(f.outputs[i], outputs[i]);
  if (ok)
    return true;
  auto list = [](const std::vector<Expect> &v) {
    std::string s;
    for (const Expect &e : v)
      s += (s.empty() ? "" : ", ") + std::string(elemTypeName(e.type)) + "[" +
           (e.shape.empty() ? "" : shapeString(e.shape)) + "]";
    return s;
  };
  *error = "the program's entry function has an unexpected signature: " + signature(f) +
           "; the driver expects (" + list(inputs) + ") -> (" + list(outputs) + ")" +
           (f.fn ? "" : " and a function pointer");
  return false;
}

/// The tensor `t` written into a buffer laid out as `spec`: shapes must be equal; values
/// are converted to the spec's element type (integers must be integral and in range).
bool tensorToBuffer(const Tensor &t, const TensorSpec &spec, std::vector<std::byte> &out,
                    std::string *error) {
  std::vector<int64_t> shape = specShape(spec);
  if (t.shape != shape) {
    *error = "has shape " + shapeString(t.shape) + ", the function takes " + describe(spec);
    return false;
  }
  int64_t n = product(shape);
  out.assign(size_t(n) * elemSize(spec.type), std::byte{0});
  for (int64_t i = 0; i < n; ++i) {
    double v = t[i];
    switch (spec.type) {
    case ElemType::F32:
      reinterpret_cast<float *>(out.data())[i] = float(v);
      break;
    case ElemType::I32:
    case ElemType::I64: {
      double lo = spec.type == ElemType::I32 ? -2147483648.0 : -9223372036854775808.0;
      double hi = spec.type == ElemType::I32 ? 2147483647.0 : 9223372036854775807.0;
      if (!(v == std::floor(v) && v >= lo && v <= hi)) {
        *error =
            format("element %" PRId64 " (%.17g) is not a valid %s", i, v, elemTypeName(spec.type));
        return false;
      }
      if (spec.type == ElemType::I32)
        reinterpret_cast<int32_t *>(out.data())[i] = int32_t(v);
      else
        reinterpret_cast<int64_t *>(out.data())[i] = int64_t(v);
      break;
    }
    }
  }
  return true;
}

Tensor bufferToTensor(const std::vector<std::byte> &in, const TensorSpec &spec) {
  Tensor t(toDType(spec.type), specShape(spec));
  for (int64_t i = 0; i < t.numElements(); ++i) {
    switch (spec.type) {
    case ElemType::F32:
      t[i] = reinterpret_cast<const float *>(in.data())[i];
      break;
    case ElemType::I32:
      t[i] = reinterpret_cast<const int32_t *>(in.data())[i];
      break;
    case ElemType::I64:
      t[i] = double(reinterpret_cast<const int64_t *>(in.data())[i]);
      break;
    }
  }
  return t;
}

/// Appends rows to metrics.csv, one write() per row so that a crash leaves whole rows.
class MetricsCsv {
public:
  ~MetricsCsv() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  /// Checks that an existing file was written by this driver (before anything is written
  /// anywhere); open() then appends to it.
  static bool check(const std::string &path, std::string *error) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0)
      return true; // created by open()
    if (!S_ISREG(st.st_mode)) {
      *error = path + ": not a regular file";
      return false;
    }
    const std::string header = std::string(kTrainCsvHeader) + "\n";
    std::string start(header.size(), '\0');
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      *error = path + ": cannot open: " + errnoText(errno);
      return false;
    }
    ssize_t n = ::pread(fd, start.data(), start.size(), 0);
    ::close(fd);
    if (n != 0 && (n != ssize_t(start.size()) || start != header)) {
      *error = path +
               " exists and is not a metrics file of this driver (its first line is "
               "not '" +
               std::string(kTrainCsvHeader) + "'); choose another --log-dir";
      return false;
    }
    return true;
  }
  bool open(const std::string &path, std::string *error) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      *error = path + ": cannot open: " + errnoText(errno);
      return false;
    }
    path_ = path;
    off_t size = ::lseek(fd_, 0, SEEK_END);
    if (size == 0)
      return writeRaw(std::string(kTrainCsvHeader) + "\n", error);
    // A row left incomplete by a crash is terminated, so that the next row starts a line.
    char last = '\n';
    if (size > 0 && ::pread(fd_, &last, 1, size - 1) == 1 && last != '\n')
      return writeRaw("\n", error);
    return true;
  }
  bool writeRow(const std::string &row, std::string *error) { return writeRaw(row + "\n", error); }

private:
  bool writeRaw(const std::string &s, std::string *error) {
    size_t done = 0;
    while (done < s.size()) {
      ssize_t n = ::write(fd_, s.data() + done, s.size() - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        *error = path_ + ": write failed: " + errnoText(errno);
        return false;
      }
      done += size_t(n);
    }
    return true;
  }
  int fd_ = -1;
  std::string path_;
};

class TrainDriver {
public:
  TrainDriver(const ProgramSpec &program, const char *argv0, Communicator *comm)
      : program_(program), flags_(programName(argv0), summary(program)), comm_(comm) {
    name_ = programName(argv0);
    declareFlags();
  }

  int run(int argc, char **argv);

private:
  int runUnguarded(int argc, char **argv);
  static std::string programName(const char *argv0) {
    std::string p = argv0 && *argv0 ? argv0 : "train";
    size_t slash = p.rfind('/');
    return slash == std::string::npos ? p : p.substr(slash + 1);
  }
  static std::string summary(const ProgramSpec &p) {
    return format("Trains %s, compiled for %s with batch %" PRId64 " x seq %" PRId64
                  ". --run-function runs one entry function instead.",
                  p.modelName ? p.modelName : "?", p.target ? p.target : "?", p.batch, p.seq);
  }

  void declareFlags();
  int fail(int status, const std::string &message) const {
    clearProgress();
    std::fprintf(stderr, "%s: error: %s\n", name_.c_str(), message.c_str());
    return status;
  }
  void warn(const std::string &message) const {
    clearProgress();
    std::fprintf(stderr, "%s: warning: %s\n", name_.c_str(), message.c_str());
  }
  void note(const std::string &message) const {
    clearProgress();
    std::fprintf(stderr, "%s\n", message.c_str());
  }

  int checkUsage();
  void printInfo() const;
  bool setUpDevice(std::string *error);
  /// The host's view of parameter `p`: the region itself on the CPU, else its host copy,
  /// which pushParams / pullParams move to and from the device.
  float *hostParam(const ParamSpec &p) {
    return reinterpret_cast<float *>(
        (hostParams_.empty() ? ctx_.params : hostParams_.data()) + p.offset);
  }
  bool moveParams(bool toDevice, std::string *error, ParamRole only);
  bool pushParams(std::string *error, ParamRole only = ParamRole(-1)) {
    return moveParams(true, error, only);
  }
  bool pullParams(std::string *error, ParamRole only = ParamRole(-1)) {
    return moveParams(false, error, only);
  }
  /// The tensors that checkpoints, --init-params and --params hold: the parameters of the
  /// region, except that an FSDP unit's shard stands for its members (weights, gradients or
  /// moments, by the shard's role), each a whole tensor of which this rank stores a part.
  struct LogicalTensor {
    std::string name;
    ParamRole role;
    std::vector<int64_t> shape;
    int64_t elements;
    ParamInit init;
    double std;
    const ParamSpec *storage;
    int64_t unitOffset; ///< where it starts in its unit's flat buffer; -1: not sharded
  };
  void describeTensors();
  const LogicalTensor *findTensor(const std::string &name) const;
  /// Calls `write(j, k)` for each element j of `t` that this rank stores, at element k of
  /// its storage.
  template <class F> void forEachLocal(const LogicalTensor &t, F write) const;
  /// Every tensor, whole (gathered from the ranks' shards: a collective when sharded).
  std::vector<Tensor> gatherTensors(std::string *error);
  void initParams(uint64_t seed);
  bool loadParamFile(const std::string &path, bool requireAllWeights, std::string *error);
  std::map<std::string, std::string> modelConfig() const;
  std::map<std::string, std::string> runConfig() const;
  int resume(const std::string &root, bool &nothingToDo);
  bool saveCheckpointAt(int64_t step, std::string *error);
  double validate();
  /// Fault injection for the multi-rank tests: LLAMAC_TEST_FAULT="<rank>:<step>:hang|exit"
  /// makes that rank hang, or exit, before the collectives of that step.
  void testFault(int64_t step) const;
  int runFunction();
  int train();
  void drawProgress(int64_t done, double loss, double lr, double tokensPerS,
                    double etaSeconds) const;
  void clearProgress() const {
    if (progressShown_) {
      std::fputs("\r\033[K", stderr);
      progressShown_ = false;
    }
  }

  const ProgramSpec &program_;
  FlagParser flags_;
  std::string name_;

  // Settings, from the flags.
  int64_t steps_ = 0, gradAccum_ = 1, validEvery_ = 0, validBatches_ = 0, logEvery_ = 1,
          checkpointEvery_ = 0, keep_ = 0;
  double lr_ = 0, validFraction_ = 0;
  uint64_t seed_ = 0;
  bool progress_ = false;

  // The machine and the program's memory.
  std::unique_ptr<Device> device_;
  std::unique_ptr<Buffer> params_, arena_, cache_;
  /// The parameter region's host copy on devices the host cannot address (empty otherwise).
  std::vector<std::byte> hostParams_;
  Context ctx_;
  Profiler profiler_;
  /// The processes of a data-parallel run (one, or MPI ranks): rank r computes micro-batches
  /// r*A..r*A+A-1 of each step, so that W ranks with --grad-accum A train exactly as one
  /// process with W*A; gradients and losses are summed over ranks before the update.
  Communicator *comm_;
  /// Hybrid sharding: this rank's replicas (grid axis 0) and shard group (axis 1), split
  /// from comm_. `shardGroup_` is the group a unit is sharded over (comm_ for plain FSDP).
  std::unique_ptr<Communicator> replicaComm_, shardComm_;
  Communicator *shardGroup_ = nullptr;

  // Data.
  Tokenizer tokenizer_;
  TokenData data_;
  TokenSpan trainSpan_, validSpan_;
  BatchSampler sampler_;
  ValidationBatches validation_;
  bool validationOn_ = false;

  // Progress through training.
  int64_t step_ = 0; ///< completed optimizer steps
  uint64_t tokensConsumed_ = 0;

  std::vector<LogicalTensor> tensors_;

  const FunctionSpec *trainGrad_ = nullptr, *trainUpdate_ = nullptr, *loss_ = nullptr;
  mutable bool progressShown_ = false;
};

void TrainDriver::declareFlags() {
  FlagParser &f = flags_;
  f.addSection("Data");
  f.addString("data", "", "raw UTF-8 text corpus (required for training)", "FILE");
  f.addString("tokenizer", "", "SentencePiece .model file (required for training)", "FILE");
  f.addDouble("valid-fraction", 0.05, "last fraction of the tokens held out for validation", 0.0);
  f.addInt("valid-every", 100, "validate every N steps and at the end; 0 = never", 0);
  f.addInt("valid-batches", 8, "validation batches; 0 = every validation window once", 0);
  f.addSection("Training");
  f.addInt("steps", 1000, "optimizer steps", 1);
  f.addDouble("lr", 3e-4, "peak learning rate");
  f.addInt("grad-accum", 1, "micro-batches accumulated per optimizer step, on each rank", 1);
  f.addInt("global-batch", 0,
           "sequences per optimizer step over all ranks, instead of --grad-accum: a multiple "
           "of ranks x the micro-batch",
           1);
  f.setDefaultText("global-batch", "ranks x batch x grad-accum");
  f.addInt("batch", 0, "micro-batch size; must equal the compiled one", 1);
  f.setDefaultText("batch", std::to_string(program_.batch));
  f.addInt("seq", 0, "sequence length; must equal the compiled one", 1);
  f.setDefaultText("seq", std::to_string(program_.seq));
  f.addInt("seed", 1, "seed of the parameter initialisation and of the data order", 0);
  f.addString("init-params", "",
              "initial weights instead of random ones: a safetensors file holding every "
              "weight by name",
              "FILE");
  f.addInt("threads", 0, "CPU threads; 0 = the OpenMP default", 0);
  f.addSection("Logging and checkpoints");
  f.addString("log-dir", "", "write metrics.csv and TensorBoard event files here", "DIR");
  f.addInt("log-every", 10, "print a log line every N steps (without a progress bar)", 1);
  f.addChoice("progress", "auto", {"auto", "always", "never"},
              "progress bar on stderr; auto = when stderr is a terminal");
  f.addString("checkpoint-dir", "", "save checkpoints here", "DIR");
  f.addInt("checkpoint-every", 0, "save every N steps; 0 = only at the end", 0);
  f.addInt("keep", 0, "keep the N newest checkpoints; 0 = all", 0);
  f.addSwitch("resume", "continue from the latest valid checkpoint in --checkpoint-dir");
  f.addDouble("collective-timeout", 300,
              "multi-rank runs: seconds a collective may take before the run is aborted as "
              "stalled; 0 = wait forever",
              0);
  f.addSwitch("info", "print the program (model, shapes, memory, functions) and exit");
  f.addSwitch("profile", "print the time spent per kernel kind at the end");
  f.addSection("Test harness (instead of training)");
  f.addString("run-function", "", "run entry function NAME once", "NAME");
  f.addString("inputs", "",
              "its inputs (arg0, arg1, ... as `llamac run --save-inputs` "
              "writes them, or by input name)",
              "FILE");
  f.addString("params", "",
              "weights by name (as `llamac run --save-params` writes them); "
              "others keep their seeded initial values",
              "FILE");
  f.addString("output", "", "write the outputs (result0, result1, ...) here", "FILE");
  f.addAlias('o', "output");
}

/// Checks the flags against each other and the program; 0 when they are fine.
int TrainDriver::checkUsage() {
  const FlagParser &f = flags_;
  steps_ = f.getInt("steps");
  gradAccum_ = f.getInt("grad-accum");
  lr_ = f.getDouble("lr");
  validFraction_ = f.getDouble("valid-fraction");
  validEvery_ = f.getInt("valid-every");
  validBatches_ = f.getInt("valid-batches");
  logEvery_ = f.getInt("log-every");
  checkpointEvery_ = f.getInt("checkpoint-every");
  keep_ = f.getInt("keep");
  seed_ = uint64_t(f.getInt("seed"));

  if (program_.fsdpRanks && comm_->size() != program_.fsdpRanks)
    return fail(kExitUsage,
                format("this program was compiled for %d ranks (llamac compile --fsdp %d) and "
                       "was started on %d; run it with mpirun -np %d, or recompile %s "
                       "(checkpoints load on any number of ranks)",
                       program_.fsdpRanks, program_.fsdpRanks, comm_->size(),
                       program_.fsdpRanks,
                       comm_->size() == 1 ? "without --fsdp"
                                          : format("with --fsdp %d", comm_->size()).c_str()));
  if (f.given("global-batch")) {
    const int64_t global = f.getInt("global-batch"), perStep = comm_->size() * program_.batch;
    if (global % perStep != 0)
      return fail(kExitUsage,
                  format("--global-batch %" PRId64 " is not a multiple of %d rank%s x the "
                         "micro-batch of %" PRId64 " (= %" PRId64 "): each rank accumulates "
                         "whole micro-batches",
                         global, comm_->size(), comm_->size() == 1 ? "" : "s", program_.batch,
                         perStep));
    if (f.given("grad-accum") && gradAccum_ != global / perStep)
      return fail(kExitUsage, format("--grad-accum %" PRId64 " and --global-batch %" PRId64
                                     " disagree: on %d rank%s the global batch needs "
                                     "--grad-accum %" PRId64,
                                     gradAccum_, global, comm_->size(),
                                     comm_->size() == 1 ? "" : "s", global / perStep));
    gradAccum_ = global / perStep;
  }
  shardGroup_ = comm_;
  if (program_.fsdpReplicas > 1) {
    // Ranks g G .. g G + G-1 form shard group g; rank r's replicas are those with its r mod G.
    const int G = program_.fsdpRanks / program_.fsdpReplicas, r = comm_->rank();
    shardComm_ = comm_->split(r / G, r % G);
    replicaComm_ = comm_->split(r % G, r / G);
    if (!shardComm_ || !replicaComm_)
      return fail(kExitFailure, "could not split the ranks into shard groups");
    shardGroup_ = shardComm_.get();
  }
  if (!(lr_ > 0))
    return fail(kExitUsage, format("--lr: must be positive, got %g", lr_));
  if (validFraction_ >= 1)
    return fail(kExitUsage, format("--valid-fraction: must be below 1, got %g", validFraction_));
  for (const char *dim : {"batch", "seq"}) {
    int64_t compiled = std::string(dim) == "batch" ? program_.batch : program_.seq;
    if (f.given(dim) && f.getInt(dim) != compiled)
      return fail(kExitUsage,
                  format("--%s %" PRId64 ": this program was compiled for batch %" PRId64
                         " x seq %" PRId64 "; recompile with `llamac compile --batch %" PRId64
                         " --seq %" PRId64 "` to train with other shapes",
                         dim, f.getInt(dim), program_.batch, program_.seq,
                         f.given("batch") ? f.getInt("batch") : program_.batch,
                         f.given("seq") ? f.getInt("seq") : program_.seq));
  }
  if (!f.getString("run-function").empty()) {
    if (f.getString("inputs").empty())
      return fail(kExitUsage, "--run-function needs --inputs FILE");
    if (f.getString("output").empty())
      return fail(kExitUsage, "--run-function needs -o FILE for its outputs");
    return 0;
  }
  for (const char *h : {"inputs", "params", "output"})
    if (f.given(h))
      return fail(kExitUsage, std::string("--") + h + " is only for --run-function");
  if (f.getString("data").empty())
    return fail(kExitUsage, "--data FILE is required (the training corpus)");
  if (f.getString("tokenizer").empty())
    return fail(kExitUsage, "--tokenizer FILE is required (a SentencePiece .model)");
  if (f.getSwitch("resume") && f.getString("checkpoint-dir").empty())
    return fail(kExitUsage, "--resume needs --checkpoint-dir DIR");
  for (const char *c : {"checkpoint-every", "keep"})
    if (f.given(c) && f.getString("checkpoint-dir").empty())
      return fail(kExitUsage, std::string("--") + c + " needs --checkpoint-dir DIR");
  return 0;
}

void TrainDriver::printInfo() const {
  const ProgramSpec &p = program_;
  std::printf("model       %s (%s mode, target %s)\n", p.modelName, p.mode, p.target);
  std::printf("shapes      batch %" PRId64 " x seq %" PRId64 "\n", p.batch, p.seq);
  std::printf("config      vocab %" PRId64 ", dim %" PRId64 ", layers %" PRId64 ", heads %" PRId64
              " (kv %" PRId64 ", head dim %" PRId64 "), ffn %" PRId64 ", max seq %" PRId64
              ", window %s, norm eps %g, rope theta %g\n",
              p.vocab, p.dim, p.layers, p.heads, p.kvHeads, p.headDim, p.ffnDim, p.maxSeqLen,
              p.window ? std::to_string(p.window).c_str() : "none", p.normEps, p.ropeTheta);
  int counts[4] = {0, 0, 0, 0};
  for (int32_t i = 0; i < p.numParams; ++i)
    ++counts[std::clamp(int(p.params[i].role), 0, 3)];
  std::printf("params      %" PRId64 " trainable elements (%s) in %d weight tensors; "
              "gradients %d, AdamW moments %d + %d\n",
              p.trainableElements, formatSi(double(p.trainableElements)).c_str(), counts[0],
              counts[1], counts[2], counts[3]);
  std::printf("memory      params %s, arena %s, KV cache %s\n",
              formatBytes(double(p.paramBytes)).c_str(), formatBytes(double(p.arenaBytes)).c_str(),
              formatBytes(double(p.cacheBytes)).c_str());
  if (p.fsdpRanks) {
    int units = 0;
    for (int32_t i = 0; i < p.numParams; ++i)
      units += p.params[i].shard && p.params[i].role == ParamRole::Weight;
    std::printf("fsdp        sharded over %d ranks (mpirun -np %d), %d units", p.fsdpRanks,
                p.fsdpRanks, units);
    if (p.fsdpReplicas > 1)
      std::printf("; hybrid: %d replicas of shard groups of %d", p.fsdpReplicas,
                  p.fsdpRanks / p.fsdpReplicas);
    std::printf("\n");
  }
  std::printf("flops       %s per trained token, %s per generated token\n",
              formatSi(p.trainFlopsPerToken).c_str(), formatSi(p.inferFlopsPerToken).c_str());
  for (int32_t i = 0; i < p.numConfig; ++i)
    std::printf("compile     %s = %s\n", p.configKeys[i], p.configValues[i]);
  for (int32_t i = 0; i < p.numFunctions; ++i) {
    const FunctionSpec &fn = p.functions[i];
    std::printf("function    %s\n            arena %s (%s without reuse), %d launches\n",
                signature(fn).c_str(), formatBytes(double(fn.arenaBytes)).c_str(),
                formatBytes(double(fn.buffersBytes)).c_str(), fn.numLaunches);
  }
}

bool TrainDriver::setUpDevice(std::string *error) {
  device_ = createProgramDevice(
      program_, int(std::min<int64_t>(flags_.getInt("threads"), 1 << 20)), error);
  if (!device_)
    return false;
  auto alloc = [&](int64_t bytes, const char *what, std::unique_ptr<Buffer> &out) {
    if (bytes < 0) {
      *error = format("the program's %s size is negative (%" PRId64 ")", what, bytes);
      return false;
    }
    std::string why;
    out = device_->allocate(size_t(bytes), &why);
    if (!out) {
      *error = std::string(what) + ": " + why;
      return false;
    }
    return true;
  };
  if (!alloc(program_.paramBytes, "parameter region", params_) ||
      !alloc(program_.arenaBytes, "arena", arena_) ||
      !alloc(program_.cacheBytes, "KV cache", cache_))
    return false;
  ctx_.params = params_->data();
  ctx_.arena = arena_->data();
  ctx_.cache = cache_->data();
  ctx_.backend = device_->backend();
  ctx_.comm = comm_;
  ctx_.grid[0] = program_.fsdpReplicas > 1 ? replicaComm_.get() : comm_;
  ctx_.grid[1] = shardComm_.get();
  describeTensors();
  if (!device_->hostAccessible())
    hostParams_.assign(size_t(program_.paramBytes), std::byte{0});
  for (int32_t i = 0; i < program_.numParams; ++i) {
    const ParamSpec &p = program_.params[i];
    if (p.offset < 0 || p.elements < 0 || p.offset % 64 != 0 ||
        p.offset + p.elements * 4 > program_.paramBytes || product(paramShape(p)) != p.elements) {
      *error = format("the program's parameter '%s' does not fit its region (offset %" PRId64
                      ", %" PRId64 " elements, region %" PRId64 " bytes)",
                      p.name, p.offset, p.elements, program_.paramBytes);
      return false;
    }
  }
  return true;
}

/// Copies the host's parameters (those of role `only`, or all) to the device, or back;
/// nothing to do on the CPU.
bool TrainDriver::moveParams(bool toDevice, std::string *error, ParamRole only) {
  if (hostParams_.empty())
    return true;
  for (int32_t i = 0; i < program_.numParams; ++i) {
    const ParamSpec &p = program_.params[i];
    if (only != ParamRole(-1) && p.role != only)
      continue;
    std::byte *device = ctx_.params + p.offset;
    size_t bytes = size_t(p.elements) * 4;
    if (!(toDevice ? device_->copyToDevice(device, hostParam(p), bytes, error)
                   : device_->copyToHost(hostParam(p), device, bytes, error)))
      return false;
  }
  return true;
}

void TrainDriver::describeTensors() {
  tensors_.clear();
  static const char *const prefix[] = {"", "grad.", "adamw.m.", "adamw.v."};
  for (int32_t i = 0; i < program_.numParams; ++i) {
    const ParamSpec &p = program_.params[i];
    if (!p.shard) {
      tensors_.push_back({p.name, p.role, paramShape(p), p.elements, p.init, p.std, &p, -1});
      continue;
    }
    for (int32_t k = 0; k < p.shard->numMembers; ++k) {
      const ShardMember &m = p.shard->members[k];
      std::vector<int64_t> shape(m.shape, m.shape + std::clamp(m.rank, 0, 4));
      bool weight = p.role == ParamRole::Weight;
      tensors_.push_back({prefix[std::clamp(int(p.role), 0, 3)] + std::string(m.name), p.role,
                          shape, m.elements, weight ? m.init : ParamInit::Zeros,
                          weight ? m.std : 0.0, &p, m.offset});
    }
  }
}

const TrainDriver::LogicalTensor *TrainDriver::findTensor(const std::string &name) const {
  for (const LogicalTensor &t : tensors_)
    if (t.name == name)
      return &t;
  return nullptr;
}

template <class F> void TrainDriver::forEachLocal(const LogicalTensor &t, F write) const {
  if (t.unitOffset < 0) {
    for (int64_t j = 0; j < t.elements; ++j)
      write(j, j);
    return;
  }
  // Rank r holds elements [r S, (r+1) S) of the unit, S = the shard's size.
  const int64_t S = t.storage->elements, first = shardGroup_->rank() * S;
  const int64_t from = std::max<int64_t>(0, first - t.unitOffset),
                to = std::min<int64_t>(t.elements, first + S - t.unitOffset);
  for (int64_t j = from; j < to; ++j)
    write(j, t.unitOffset + j - first);
}

std::vector<Tensor> TrainDriver::gatherTensors(std::string *error) {
  std::vector<Tensor> out(tensors_.size());
  if (!pullParams(error))
    return {};
  std::vector<float> unit;
  const ParamSpec *gathered = nullptr;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const LogicalTensor &t = tensors_[i];
    const float *d = hostParam(*t.storage);
    if (t.unitOffset >= 0) {
      if (gathered != t.storage) { // members of one unit come together
        unit.resize(size_t(t.storage->elements * shardGroup_->size()));
        shardGroup_->allGather(d, unit.data(), size_t(t.storage->elements), t.storage->name);
        gathered = t.storage;
      }
      d = unit.data() + t.unitOffset;
    }
    out[i].dtype = DType::F32;
    out[i].shape = t.shape;
    out[i].data.assign(d, d + t.elements);
  }
  return out;
}

/// Weights from their initialiser, with the interpreter's generator (Random.h): value i of a
/// Normal weight is std * gaussian(streamKey(seed, name), i) rounded to f32. Gradients and
/// moments start at zero, and so does an FSDP unit's padding. A sharded weight gets exactly
/// the values it would get unsharded: each rank computes its part.
void TrainDriver::initParams(uint64_t seed) {
  for (int32_t i = 0; i < program_.numParams; ++i) {
    float *d = hostParam(program_.params[i]);
    std::fill(d, d + program_.params[i].elements, 0.0f);
  }
  for (const LogicalTensor &t : tensors_) {
    float *d = hostParam(*t.storage);
    if (t.role != ParamRole::Weight || t.init == ParamInit::Zeros)
      continue;
    if (t.init == ParamInit::Ones) {
      forEachLocal(t, [&](int64_t, int64_t k) { d[k] = 1.0f; });
    } else {
      uint64_t key = streamKey(seed, t.name);
      forEachLocal(t, [&](int64_t j, int64_t k) {
        d[k] = float(t.std * gaussian(key, uint64_t(j)));
      });
    }
  }
}

/// Reads tensors by parameter name from a safetensors file into the parameter region. Every
/// tensor must name a parameter and have its shape; with `requireAllWeights`, every weight
/// must be present.
bool TrainDriver::loadParamFile(const std::string &path, bool requireAllWeights,
                                std::string *error) {
  TensorFile file;
  if (!readSafetensors(path, file, error))
    return false;
  for (const auto &[name, t] : file.tensors) {
    const LogicalTensor *p = findTensor(name);
    if (!p) {
      *error = path + ": '" + name + "' is not a parameter of " + program_.modelName;
      return false;
    }
    if (t.shape != p->shape) {
      *error = path + ": '" + name + "' has shape " + shapeString(t.shape) +
               ", the program's has " + shapeString(p->shape);
      return false;
    }
  }
  if (requireAllWeights)
    for (const LogicalTensor &p : tensors_)
      if (p.role == ParamRole::Weight && !file.find(p.name)) {
        *error = path + ": weight '" + p.name + "' is missing";
        return false;
      }
  for (const auto &[name, t] : file.tensors) {
    const LogicalTensor *p = findTensor(name);
    float *d = hostParam(*p->storage);
    forEachLocal(*p, [&](int64_t j, int64_t k) { d[k] = float(t[j]); });
  }
  return true;
}

/// What must match for a checkpoint to belong to this program.
std::map<std::string, std::string> TrainDriver::modelConfig() const {
  const ProgramSpec &p = program_;
  std::map<std::string, std::string> c = {
      {"vocab", std::to_string(p.vocab)},      {"dim", std::to_string(p.dim)},
      {"layers", std::to_string(p.layers)},    {"heads", std::to_string(p.heads)},
      {"kv_heads", std::to_string(p.kvHeads)}, {"head_dim", std::to_string(p.headDim)},
      {"ffn_dim", std::to_string(p.ffnDim)},   {"max_seq_len", std::to_string(p.maxSeqLen)},
      {"window", std::to_string(p.window)},    {"norm_eps", exactText(p.normEps)},
      {"rope_theta", exactText(p.ropeTheta)},  {"batch", std::to_string(p.batch)},
      {"seq", std::to_string(p.seq)}};
  for (int32_t i = 0; i < p.numConfig; ++i)
    c[std::string("compile.") + p.configKeys[i]] = p.configValues[i];
  return c;
}

std::map<std::string, std::string> TrainDriver::runConfig() const {
  return {{"grad_accum", std::to_string(gradAccum_)},
          {"lr", exactText(lr_)},
          {"steps", std::to_string(steps_)},
          {"valid_fraction", exactText(validFraction_)}};
}

/// Restores the state of the latest valid checkpoint under `root`. Returns an exit status
/// (0 to go on); `nothingToDo` when the checkpoint already reaches --steps.
int TrainDriver::resume(const std::string &root, bool &nothingToDo) {
  nothingToDo = false;
  std::string error;
  int64_t latest = -1;
  if (listCheckpoints(root).empty() && !readLatestStep(root, latest, &error)) {
    note("--resume: no checkpoint in " + root + " yet; starting at step 0");
    return 0;
  }
  LoadedCheckpoint ck;
  if (!loadLatestValid(root, ck, &error))
    return fail(kExitFailure, "--resume: " + error);
  if (!ck.note.empty())
    warn(ck.note);
  const CheckpointState &s = ck.state;
  std::string where = "checkpoint " + ck.directory;
  if (s.modelName != program_.modelName)
    return fail(kExitFailure, where + " is of model '" + s.modelName + "', this program is '" +
                                  program_.modelName + "'");
  std::map<std::string, std::string> mine = modelConfig();
  for (const auto &[key, value] : mine) {
    auto it = s.config.find(key);
    if (it == s.config.end())
      return fail(kExitFailure, where + " does not record '" + key + "', which this program has (" +
                                    key + " = " + value + ")");
    if (it->second != value)
      return fail(kExitFailure, where + " has " + key + " = " + it->second + ", this program has " +
                                    key + " = " + value);
  }
  for (const auto &[key, value] : s.config)
    if (!mine.count(key) && std::find(std::begin(kRunConfigKeys), std::end(kRunConfigKeys), key) ==
                                std::end(kRunConfigKeys))
      return fail(kExitFailure,
                  where + " has " + key + " = " + value + ", which this program does not have");
  std::map<std::string, std::string> run = runConfig();
  for (const char *key : kRunConfigKeys) {
    auto it = s.config.find(key);
    if (it != s.config.end() && it->second != run[key])
      warn(std::string("resuming with ") + key + " = " + run[key] + " (the checkpoint's run had " +
           it->second + "): later steps differ from an uninterrupted run of the saved settings");
  }

  // Every tensor of the region, with its shape; nothing else.
  for (const LogicalTensor &p : tensors_) {
    const Tensor *t = ck.tensors.find(p.name);
    if (!t)
      return fail(kExitFailure, where + " has no tensor '" + p.name + "'");
    if (t->shape != p.shape)
      return fail(kExitFailure, where + ": tensor '" + p.name + "' has shape " +
                                    shapeString(t->shape) + ", this program's has " +
                                    shapeString(p.shape));
  }
  for (const auto &[name, t] : ck.tensors.tensors)
    if (!findTensor(name))
      return fail(kExitFailure,
                  where + " has tensor '" + name + "', which this program does not have");
  if (s.step > steps_)
    return fail(kExitFailure, format("%s is at step %" PRId64 ", beyond --steps %" PRId64,
                                     where.c_str(), s.step, steps_));
  if (flags_.given("seed") && s.seed != seed_)
    warn(format("--seed %" PRIu64 " is ignored: the checkpoint's run used seed %" PRIu64
                " and resuming keeps its data order",
                seed_, s.seed));
  auto extraIt = s.extra.find("tokenizer_checksum");
  if (extraIt != s.extra.end() && extraIt->second != format("%016" PRIx64, tokenizer_.checksum()))
    warn("the tokenizer differs from the one the checkpoint's run used");

  for (const auto &[name, t] : ck.tensors.tensors) {
    const LogicalTensor *p = findTensor(name);
    float *d = hostParam(*p->storage);
    // f32 values are exact in double: a bit-exact restore, whatever the ranks of the run
    // that saved it.
    forEachLocal(*p, [&](int64_t j, int64_t k) { d[k] = float(t[j]); });
  }
  step_ = s.step;
  tokensConsumed_ = s.tokensConsumed;
  seed_ = s.seed;
  nothingToDo = s.step == steps_;
  note(format("resumed from %s: step %" PRId64 ", %" PRIu64 " tokens consumed",
              ck.directory.c_str(), s.step, s.tokensConsumed));
  return 0;
}

/// Every rank of a sharded program takes part (the gathers); rank 0 writes. Checkpoints hold
/// whole tensors by their unsharded names, so they load on any number of ranks, sharded or
/// not.
bool TrainDriver::saveCheckpointAt(int64_t step, std::string *error) {
  std::vector<Tensor> tensors = gatherTensors(error);
  if (tensors.size() != tensors_.size())
    return false;
  if (comm_->rank() != 0)
    return true;
  std::vector<std::pair<std::string, const Tensor *>> entries;
  for (size_t i = 0; i < tensors_.size(); ++i)
    entries.emplace_back(tensors_[i].name, &tensors[i]);
  CheckpointState state;
  state.modelName = program_.modelName;
  state.config = modelConfig();
  for (auto &[k, v] : runConfig())
    state.config[k] = v;
  state.step = step;
  state.tokensConsumed = tokensConsumed_;
  state.seed = seed_;
  state.extra["tokenizer_checksum"] = format("%016" PRIx64, tokenizer_.checksum());
  state.extra["ranks"] = std::to_string(comm_->size());
  if (program_.fsdpRanks)
    state.extra["fsdp_ranks"] = std::to_string(program_.fsdpRanks);
  CheckpointSaveOptions options;
  options.keepLast = unsigned(std::min<int64_t>(keep_, 1 << 30));
  CheckpointSaveResult result;
  if (!saveCheckpoint(flags_.getString("checkpoint-dir"), state, entries, options, &result, error))
    return false;
  if (!result.warning.empty())
    warn(result.warning);
  note("saved checkpoint " + result.directory);
  return true;
}

void TrainDriver::testFault(int64_t step) const {
  static const char *spec = std::getenv("LLAMAC_TEST_FAULT"); // read once
  int rank = -1;
  long long at = -1;
  char what[8] = {0};
  if (!spec || std::sscanf(spec, "%d:%lld:%7s", &rank, &at, what) != 3 ||
      rank != comm_->rank() || at != step)
    return;
  if (std::strcmp(what, "exit") == 0)
    std::_Exit(3);
  std::this_thread::sleep_for(std::chrono::hours(1));
}

/// The mean of `loss` over the validation batches.
double TrainDriver::validate() {
  // The batches are shared out over the ranks (batch i to rank i mod P) and their losses
  // summed over them: each rank computes 1/P of them, not all. Every rank calls @loss the
  // same number of times, since under FSDP it gathers units with the others: a rank past
  // the last batch recomputes its previous one and drops the result.
  const uint64_t V = validation_.size(), P = uint64_t(comm_->size()), r = uint64_t(comm_->rank());
  if (V == 0)
    return 0.0;
  std::vector<int32_t> inputs(size_t(program_.batch * program_.seq)), targets(inputs.size());
  double sum = 0;
  for (uint64_t round = 0; round < (V + P - 1) / P; ++round) {
    uint64_t i = round * P + r;
    bool mine = i < V;
    validation_.fill(mine ? i : std::min(r, V - 1), inputs.data(), targets.data());
    float loss = 0;
    void *in[] = {inputs.data(), targets.data()};
    void *out[] = {&loss};
    loss_->fn(ctx_, in, out);
    if (mine)
      sum += loss;
  }
  comm_->allReduceSum(&sum, 1, "the validation loss");
  return sum / double(V);
}

int TrainDriver::runFunction() {
  const std::string fnName = flags_.getString("run-function");
  const FunctionSpec *fn = findFunction(program_, fnName);
  if (!fn) {
    std::string names;
    for (int32_t i = 0; i < program_.numFunctions; ++i)
      names += (i ? ", " : "") + std::string(program_.functions[i].name);
    return fail(kExitFailure, "--run-function: the program has no function '" + fnName +
                                  "' (it has " + names + ")");
  }
  if (!fn->fn)
    return fail(kExitFailure, "--run-function: '" + fnName + "' has no code");
  std::string error;
  TensorFile inputsFile;
  const std::string inputsPath = flags_.getString("inputs");
  if (!readSafetensors(inputsPath, inputsFile, &error))
    return fail(kExitFailure, "--inputs: " + error);
  // Inputs by `llamac run`'s names (arg<i>) or by the function's input names.
  std::vector<std::vector<std::byte>> inputs(size_t(fn->numInputs));
  std::vector<bool> seen(size_t(fn->numInputs), false);
  for (const auto &[key, t] : inputsFile.tensors) {
    int32_t index = -1;
    for (int32_t i = 0; i < fn->numInputs; ++i)
      if (key == "arg" + std::to_string(i) || key == fn->inputs[i].name)
        index = i;
    if (index < 0)
      return fail(kExitFailure, "--inputs: '" + key + "' is not an input of " + signature(*fn) +
                                    " (name them arg0, arg1, ...)");
    if (seen[size_t(index)])
      return fail(kExitFailure, "--inputs: input " + std::to_string(index) + " is given twice");
    seen[size_t(index)] = true;
    if (!tensorToBuffer(t, fn->inputs[index], inputs[size_t(index)], &error))
      return fail(kExitFailure, "--inputs: '" + key + "' " + error);
  }
  for (int32_t i = 0; i < fn->numInputs; ++i)
    if (!seen[size_t(i)])
      return fail(kExitFailure, "--inputs: " + inputsPath + " has no arg" + std::to_string(i) +
                                    " (" + fn->inputs[i].name + " " + describe(fn->inputs[i]) +
                                    ")");
  if (!setUpDevice(&error))
    return fail(kExitFailure, error);
  initParams(seed_);
  if (!flags_.getString("params").empty() &&
      !loadParamFile(flags_.getString("params"), /*requireAllWeights=*/false, &error))
    return fail(kExitFailure, "--params: " + error);
  if (!pushParams(&error))
    return fail(kExitFailure, error);

  std::vector<std::vector<std::byte>> outputs(size_t(fn->numOutputs));
  std::vector<void *> in, out;
  for (auto &b : inputs)
    in.push_back(b.data());
  for (int32_t i = 0; i < fn->numOutputs; ++i) {
    outputs[size_t(i)].assign(
        size_t(product(specShape(fn->outputs[i]))) * elemSize(fn->outputs[i].type), std::byte{0});
    out.push_back(outputs[size_t(i)].data());
  }
  if (flags_.getSwitch("profile"))
    ctx_.profiler = &profiler_;
  fn->fn(ctx_, in.data(), out.data());

  std::vector<Tensor> results;
  for (int32_t i = 0; i < fn->numOutputs; ++i)
    results.push_back(bufferToTensor(outputs[size_t(i)], fn->outputs[i]));
  std::vector<std::pair<std::string, const Tensor *>> entries;
  for (size_t i = 0; i < results.size(); ++i) {
    entries.emplace_back("result" + std::to_string(i), &results[i]);
    std::printf("result%zu: %s\n", i, results[i].describe().c_str());
  }
  std::map<std::string, std::string> metadata = {{"function", fnName},
                                                 {"model", program_.modelName}};
  if (!writeSafetensors(flags_.getString("output"), entries, metadata, &error))
    return fail(kExitFailure, "-o: " + error);
  if (flags_.getSwitch("profile"))
    std::printf("%s", profiler_.report().c_str());
  return 0;
}

void TrainDriver::drawProgress(int64_t done, double loss, double lr, double tokensPerS,
                               double etaSeconds) const {
  constexpr int kWidth = 24;
  int filled = steps_ ? int(kWidth * done / steps_) : kWidth;
  std::string bar(size_t(filled), '#');
  bar.resize(kWidth, '.');
  std::fprintf(stderr, "\r\033[K[%s] %" PRId64 "/%" PRId64 " loss %.4f lr %.3g %s tok/s ETA %s",
               bar.c_str(), done, steps_, loss, lr, formatSi(tokensPerS).c_str(),
               formatDuration(etaSeconds).c_str());
  std::fflush(stderr);
  progressShown_ = true;
}

int TrainDriver::train() {
  if (std::strcmp(program_.mode, "train") != 0)
    return fail(kExitFailure, std::string("this program was compiled with --mode ") +
                                  program_.mode + "; training needs --mode train");
  std::string error;
  const int64_t B = program_.batch, T = program_.seq;
  trainGrad_ = findFunction(program_, "train_grad");
  trainUpdate_ = findFunction(program_, "train_update");
  loss_ = findFunction(program_, "loss");
  if (!trainGrad_ || !trainUpdate_)
    return fail(kExitFailure, "the program has no train_grad/train_update functions");
  if (!checkSignature(*trainGrad_, {{ElemType::I32, {B, T}}, {ElemType::I32, {B, T}}},
                      {{ElemType::F32, {}}}, &error) ||
      !checkSignature(
          *trainUpdate_,
          {{ElemType::I64, {}}, {ElemType::F32, {}}, {ElemType::I64, {}}, {ElemType::F32, {}}},
          {{ElemType::F32, {}}, {ElemType::F32, {}}}, &error))
    return fail(kExitFailure, error);
  validationOn_ = validEvery_ > 0 && validFraction_ > 0;
  if (validationOn_) {
    if (!loss_)
      return fail(kExitFailure, "the program has no loss function for validation (pass "
                                "--valid-every 0 to train without validation)");
    if (!checkSignature(*loss_, {{ElemType::I32, {B, T}}, {ElemType::I32, {B, T}}},
                        {{ElemType::F32, {}}}, &error))
      return fail(kExitFailure, error);
  }

  // Tokenizer and data.
  const std::string tokenizerPath = flags_.getString("tokenizer");
  if (!tokenizer_.load(tokenizerPath, &error))
    return fail(kExitFailure, "--tokenizer: " + error);
  if (tokenizer_.vocabSize() > program_.vocab)
    return fail(kExitFailure,
                format("the tokenizer %s has %d pieces, more than the vocabulary of %" PRId64
                       " this program was compiled for",
                       tokenizerPath.c_str(), tokenizer_.vocabSize(), program_.vocab));
  TokenDataOptions dataOptions;
  dataOptions.useCache = comm_->rank() == 0; // one writer of the token cache
  if (!data_.load(flags_.getString("data"), tokenizer_, dataOptions, &error))
    return fail(kExitFailure, "--data: " + error);
  note(format("%s: %zu tokens%s%s", flags_.getString("data").c_str(), data_.tokens().size(),
              data_.fromCache() ? " (from the token cache)" : "",
              data_.note().empty() ? "" : (" (" + data_.note() + ")").c_str()));
  if (!splitTokens(data_.span(), validFraction_, T, trainSpan_, validSpan_, &error))
    return fail(kExitFailure, "--data " + flags_.getString("data") + ": " + error);
  if (validationOn_ && !validation_.init(validSpan_, B, T, uint64_t(validBatches_), &error))
    return fail(kExitFailure, "--data: " + error);

  // Memory and parameters.
  if (!setUpDevice(&error))
    return fail(kExitFailure, error);
  initParams(seed_);
  if (!flags_.getString("init-params").empty() &&
      !loadParamFile(flags_.getString("init-params"), /*requireAllWeights=*/true, &error))
    return fail(kExitFailure, "--init-params: " + error);
  const std::string checkpointDir = flags_.getString("checkpoint-dir");
  bool nothingToDo = false;
  if (flags_.getSwitch("resume"))
    if (int status = resume(checkpointDir, nothingToDo))
      return status;
  if (!sampler_.init(trainSpan_, B, T, seed_, &error))
    return fail(kExitFailure, "--data: " + error);
  if (!pushParams(&error))
    return fail(kExitFailure, error);
  if (nothingToDo) {
    note(format("the checkpoint already reaches --steps %" PRId64 "; nothing to train", steps_));
    return 0;
  }

  // Outputs: checked, then created; nothing was written before this point. Directories come
  // first, so that a directory that cannot be created leaves no half-started log.
  for (Communicator *c : {comm_, replicaComm_.get(), shardComm_.get()})
    if (c) // hybrid sharding's groups run collectives of their own
      c->setTimeout(flags_.getDouble("collective-timeout"));
  const std::string logDir = comm_->rank() == 0 ? flags_.getString("log-dir") : "";
  const std::string csvPath = logDir + "/metrics.csv";
  if (!logDir.empty() && !MetricsCsv::check(csvPath, &error))
    return fail(kExitFailure, "--log-dir: " + error);
  if (comm_->rank() == 0 && !checkpointDir.empty() && !makeDirectories(checkpointDir, &error))
    return fail(kExitFailure, "--checkpoint-dir: " + error);
  if (!logDir.empty() && !makeDirectories(logDir, &error))
    return fail(kExitFailure, "--log-dir: " + error);
  MetricsCsv csv;
  EventWriter events;
  if (!logDir.empty() && (!csv.open(csvPath, &error) || !events.open(logDir, &error)))
    return fail(kExitFailure, "--log-dir: " + error);
  if (flags_.getSwitch("profile"))
    ctx_.profiler = &profiler_;

  note(format("training %s on %s, %s: %" PRId64 " steps of %" PRId64
              " micro-batches of %" PRId64 " x %" PRId64 " tokens; %zu training, %zu validation"
              " tokens",
              program_.modelName, device_->name().c_str(), comm_->name().c_str(), steps_,
              gradAccum_ * comm_->size(), B, T,
              trainSpan_.size, validationOn_ ? validSpan_.size : size_t(0)));

  if (program_.fsdpRanks) {
    // What this rank holds, from its allocations, against the same tensors unsharded.
    // Units are gathered in f32, or in bf16 under mixed precision (llamac-plan-fsdp).
    double whole = 0, gathered = 0;
    for (const LogicalTensor &t : tensors_)
      whole += double(t.elements) * 4;
    for (int32_t i = 0; i < program_.numParams; ++i)
      if (const ShardLayout *l = program_.params[i].shard)
        gathered = std::max(gathered, double(l->padded) * l->gatherBytes);
    const double held = double(params_->size());
    note(format("rank %d of %d (FSDP): parameters, gradients and AdamW state take %s here, "
                "%.3f of the %s unsharded (1/%.2f); the largest gathered unit is %s, and the "
                "arena (activations and gathered units) %s",
                comm_->rank(), program_.fsdpRanks, formatBytes(held).c_str(), held / whole,
                formatBytes(whole).c_str(), whole / held, formatBytes(gathered).c_str(),
                formatBytes(double(arena_->size())).c_str()));
  }
  const std::string progressMode = flags_.getChoice("progress");
  progress_ = progressMode == "always" || (progressMode == "auto" && isatty(STDERR_FILENO));
  Batch batch;
  batch.inputs.resize(size_t(B * T));
  batch.targets.resize(size_t(B * T));
  const uint64_t tokensPerStep = uint64_t(B * T * gradAccum_ * comm_->size());
  const int64_t firstStep = step_;
  Timer total;
  double trainSeconds = 0;
  for (int64_t s = step_; s < steps_; ++s) {
    Timer stepTimer;
    double lossSum = 0;
    if (comm_->size() > 1 && program_.fsdpRanks)
      testFault(s); // before the step's gathers
    for (int64_t m = 0; m < gradAccum_; ++m) {
      sampler_.fill(uint64_t(s), uint64_t(comm_->rank() * gradAccum_ + m), 0,
                    batch.inputs.data(), batch.targets.data());
      float loss = 0;
      void *in[] = {batch.inputs.data(), batch.targets.data()};
      void *out[] = {&loss};
      trainGrad_->fn(ctx_, in, out);
      lossSum += loss;
    }
    if (program_.fsdpRanks) {
      // Sharded: train_grad reduce-scattered the gradients into each rank's shard and
      // returned the loss summed over the ranks.
    } else if (comm_->size() > 1) {
      testFault(s);
      // Gradients are summed on the host: MPI moves host memory (NCCL, on the device, is
      // the communicator GPUs want; until then a GPU's gradients make the round trip).
      if (!pullParams(&error, ParamRole::Gradient))
        return fail(kExitFailure, error);
      for (int32_t i = 0; i < program_.numParams; ++i)
        if (program_.params[i].role == ParamRole::Gradient)
          comm_->allReduceSum(hostParam(program_.params[i]),
                              size_t(program_.params[i].elements), program_.params[i].name);
      if (!pushParams(&error, ParamRole::Gradient))
        return fail(kExitFailure, error);
      comm_->allReduceSum(&lossSum, 1, "the loss");
    }
    const int64_t microBatches = gradAccum_ * comm_->size();
    int64_t stepIn = s, totalIn = steps_;
    float lrIn = float(lr_), microIn = float(microBatches), lrOut = 0, gradNorm = 0;
    void *in[] = {&stepIn, &lrIn, &totalIn, &microIn};
    void *out[] = {&lrOut, &gradNorm};
    trainUpdate_->fn(ctx_, in, out);
    const float loss = float(lossSum / double(microBatches));
    const double seconds = stepTimer.seconds();
    trainSeconds += seconds;
    step_ = s + 1;
    tokensConsumed_ += tokensPerStep;
    const double tokensPerS = seconds > 0 ? double(tokensPerStep) / seconds : 0.0;

    bool doValid = validationOn_ && (step_ % validEvery_ == 0 || step_ == steps_);
    const double validLoss = doValid ? validate() : 0.0;

    if (!logDir.empty()) {
      std::string row = format("%" PRId64 ",%.9g,%.9g,%.9g,%.6g,%s,%" PRIu64 ",%.3f", step_,
                               double(loss), double(lrOut), double(gradNorm), tokensPerS,
                               doValid ? format("%.9g", validLoss).c_str() : "", tokensConsumed_,
                               total.seconds());
      if (!csv.writeRow(row, &error))
        return fail(kExitFailure, error);
      std::vector<std::pair<std::string, double>> scalars = {{"train/loss", loss},
                                                             {"train/lr", lrOut},
                                                             {"train/grad_norm", gradNorm},
                                                             {"train/tokens_per_s", tokensPerS}};
      if (doValid)
        scalars.emplace_back("valid/loss", validLoss);
      if (!events.addScalars(step_, scalars, &error))
        return fail(kExitFailure, error);
    }

    const int64_t doneHere = step_ - firstStep;
    const double eta = trainSeconds / double(doneHere) * double(steps_ - step_);
    if (progress_) {
      if (doValid)
        note(format("step %" PRId64 ": valid loss %.4f", step_, validLoss));
      drawProgress(step_, loss, lrOut, tokensPerS, eta);
    } else if (step_ % logEvery_ == 0 || step_ == steps_ || doValid) {
      std::printf("step %" PRId64 "/%" PRId64 "  loss %.4f  lr %.3g  grad norm %.3g  %s "
                  "tok/s  ETA %s%s\n",
                  step_, steps_, double(loss), double(lrOut), double(gradNorm),
                  formatSi(tokensPerS).c_str(), formatDuration(eta).c_str(),
                  doValid ? format("  valid loss %.4f", validLoss).c_str() : "");
      std::fflush(stdout);
    }
    if (!std::isfinite(loss)) {
      return fail(kExitFailure,
                  format("the loss is not finite at step %" PRId64 "; lower --lr or check the data",
                         step_));
    }

    bool doCheckpoint =
        !checkpointDir.empty() &&
        ((checkpointEvery_ > 0 && step_ % checkpointEvery_ == 0) || step_ == steps_);
    if (doCheckpoint && (comm_->rank() == 0 || program_.fsdpRanks) &&
        !saveCheckpointAt(step_, &error))
      return fail(kExitFailure, "--checkpoint-dir: " + error);
    if (doCheckpoint)
      comm_->barrier("the checkpoint"); // no rank runs ahead of a checkpoint it may resume from
  }
  if (progressShown_) { // leave the finished bar on screen
    std::fputc('\n', stderr);
    progressShown_ = false;
  }

  const double tokens = double(uint64_t(steps_ - firstStep) * tokensPerStep);
  const double rate = trainSeconds > 0 ? tokens / trainSeconds : 0.0;
  std::printf("trained %" PRId64 " steps (%s tokens) in %s: %s tokens/s, %s FLOP/s of model "
              "FLOPs\n",
              steps_ - firstStep, formatSi(tokens).c_str(), formatDuration(total.seconds()).c_str(),
              formatSi(rate).c_str(), formatSi(rate * program_.trainFlopsPerToken).c_str());
  if (flags_.getSwitch("profile"))
    std::printf("%s", profiler_.report().c_str());
  if (events.isOpen() && !events.flush(&error))
    warn(error);
  return 0;
}

int TrainDriver::run(int argc, char **argv) {
  // The contract is "never throws": allocation failures and anything a generated function
  // throws become a message and exit status 1.
  try {
    return runUnguarded(argc, argv);
  } catch (const std::bad_alloc &) {
    return fail(kExitFailure, "out of memory");
  } catch (const std::exception &e) {
    return fail(kExitFailure, e.what());
  } catch (...) {
    return fail(kExitFailure, "unknown exception");
  }
}

int TrainDriver::runUnguarded(int argc, char **argv) {
  std::string error;
  switch (flags_.parse(argc, argv, &error)) {
  case FlagParser::Result::Help:
    std::fputs(flags_.usage().c_str(), stdout);
    return 0;
  case FlagParser::Result::Error:
    return fail(kExitUsage, error);
  case FlagParser::Result::Ok:
    break;
  }
  if (flags_.getSwitch("info")) {
    printInfo();
    return 0;
  }
  if (int status = checkUsage())
    return status;
  if (!flags_.getString("run-function").empty())
    return runFunction();
  return train();
}

} // namespace

int trainMain(int argc, char **argv, const ProgramSpec &program) {
  try { // the driver's own construction (flag declarations) can only fail to allocate
    std::string error;
    std::unique_ptr<Communicator> comm = createCommunicator(&argc, &argv, &error);
    if (!comm) {
      std::fprintf(stderr, "error: %s\n", error.c_str());
      return kExitFailure;
    }
    // Ranks other than 0 compute but do not report: one log, one set of files.
    if (comm->rank() > 0 && !std::freopen("/dev/null", "w", stdout))
      return kExitFailure;
    TrainDriver driver(program, argc > 0 ? argv[0] : nullptr, comm.get());
    return driver.run(argc, argv);
  } catch (...) {
    std::fprintf(stderr, "error: out of memory\n");
  }
  return kExitFailure;
}

} // namespace llamac::rt
