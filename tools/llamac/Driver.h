//===- Driver.h - shared pieces of the llamac subcommands ----------------*- C++ -*-===//
#ifndef LLAMAC_TOOLS_LLAMAC_DRIVER_H
#define LLAMAC_TOOLS_LLAMAC_DRIVER_H

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
int runInfo();
int runCompile();
int runRun();
int runCheck();
int runBisect();
int runTokenizer();

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

/// Runs the llamac-frontend pipeline on `module` at (batch, seq).
mlir::LogicalResult runFrontend(mlir::ModuleOp module, int64_t batch, int64_t seq);

/// "llamac: error: ..." on stderr; returns 1.
int error(const llvm::Twine &message);

} // namespace llamac::driver

#endif
