//===- Driver.h - shared pieces of the llamac subcommands ----------------*- C++ -*-===//
#ifndef LLAMAC_TOOLS_LLAMAC_DRIVER_H
#define LLAMAC_TOOLS_LLAMAC_DRIVER_H

#include "codegen/KernelIR.h"
#include "dialects/llama/LlamaOps.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/CommandLine.h"

#include <string>

namespace llamac::driver {

/// Each subcommand: its cl::SubCommand (constructed on first use, so that options in any
/// file can name it) and its entry point (the exit status).
llvm::cl::OptionCategory &optionCategory();
llvm::cl::SubCommand &infoCommand();
llvm::cl::SubCommand &compileCommand();
llvm::cl::SubCommand &runCommand();
llvm::cl::SubCommand &checkCommand();
llvm::cl::SubCommand &bisectCommand();
llvm::cl::SubCommand &tokenizerCommand();
llvm::cl::SubCommand &tuneCommand();
llvm::cl::SubCommand &planCommand();
int runInfo();
int runCompile();
int runRun();
int runCheck();
int runBisect();
int runTokenizer();
int runTune();
int runPlan();

/// The options every model command takes: the input, which model, batch and sequence.
struct ModelArgs {
  std::string input;
  std::string model;
  int64_t batch;
  int64_t seq;
};
ModelArgs modelArgs();

/// The options of the commands that execute IR (run, check, bisect).
struct ExecArgs {
  std::string pipeline;
  std::string function;
  uint64_t seed;
  bool f64;
  double tolerance;
};
ExecArgs execArgs();

/// Parses `pipeline` (a pass list as for --pass-pipeline, without the builtin.module
/// anchor) into `pm`; prints an error and fails on bad syntax or unknown passes.
mlir::LogicalResult parsePipeline(llvm::StringRef pipeline, mlir::OpPassManager &pm);

/// A context with every llamac dialect loaded.
std::unique_ptr<mlir::MLIRContext> makeContext();

/// Parses and verifies `path`; diagnostics are printed with their locations. Null on error.
mlir::OwningOpRef<mlir::ModuleOp> loadModule(llvm::StringRef path, mlir::MLIRContext &ctx);

/// The model called `name` in `module`, or its only model when `name` is empty. Prints an
/// error naming the problem and returns null otherwise.
llama::ModelOp selectModel(mlir::ModuleOp module, llvm::StringRef path, llvm::StringRef name);

/// selectModel for the commands' --model, then the check that --seq fits the model's
/// context; null after printing why.
llama::ModelOp selectModelForSeq(mlir::ModuleOp module, const ModelArgs &args);

/// Runs the llamac-frontend pipeline on `module` at (batch, seq).
mlir::LogicalResult runFrontend(mlir::ModuleOp module, int64_t batch, int64_t seq);

/// What `llamac compile --mode` and `llamac tune` build.
struct BuildSettings {
  std::string mode = "train", target = "cpu";
  int64_t batch = 1, seq = 0;
  int64_t warmup = 100;
  double lrFloor = 0.1, weightDecay = 0.1, maxGradNorm = 1.0;
  std::string remat = "none";
  std::string weights = "f32";
  /// The matrix products (recorded in the program's config): bf16 (mixed precision:
  /// llamac-mixed-precision), tf32 (--target cuda: f32 storage, TF32 tensor cores) or f32.
  /// Set from effectivePrecision.
  std::string precision = "f32";
  /// Training: FSDP over this many ranks (0: not sharded), gathering this many units ahead.
  int64_t fsdp = 0, fsdpReplicas = 1, fsdpPrefetch = 1;
};

/// The message for --weights and --precision values that `target` cannot build (the
/// checks compile and tune share), or empty. `precisionGiven`: set on the command line.
std::string targetOptionsError(llvm::StringRef target, llvm::StringRef weights,
                               llvm::StringRef precision, bool precisionGiven);
/// The message for a --precision that `mode` cannot use on `target`, or empty: inference
/// programs keep f32 storage, so bf16 changes only CUDA's products there.
std::string precisionModeError(llvm::StringRef target, llvm::StringRef mode,
                               llvm::StringRef precision, bool precisionGiven);
/// --precision as given, or the target's default when it was not: bf16 for cuda (mixed
/// precision), f32 for cpu.
std::string effectivePrecision(llvm::StringRef target, llvm::StringRef precision,
                               bool precisionGiven);

/// Runs the pipeline of `settings.mode` on copies of `module` and lowers the results to the
/// kernel-level program; false after printing why.
bool buildKernelProgram(mlir::ModuleOp module, llvm::StringRef modelName,
                        const BuildSettings &settings, kir::Program &program);

/// Writes a C++ source with `writeSource`, compiles it with the host compiler `cxx` against
/// the runtime, and puts the executable at `output` (replaced only on success). Returns the
/// exit status to use; prints why on failure.
int hostCompile(llvm::function_ref<void(llvm::raw_ostream &)> writeSource,
                const std::string &output, const std::string &cxx, bool keepSource);

/// As hostCompile for CUDA source: nvcc (--nvcc) for the architectures of --cuda-arch,
/// linked with the CUDA backend (runtime/cuda).
int cudaCompile(llvm::function_ref<void(llvm::raw_ostream &)> writeSource,
                const std::string &output, bool keepSource);

/// "llamac: error: ..." on stderr; returns 1.
int error(const llvm::Twine &message);

} // namespace llamac::driver

#endif
