//===- Driver.cpp - shared pieces of the llamac subcommands ------------------------===//
#include "tools/llamac/Driver.h"

#include "dialects/InitAllDialects.h"
#include "passes/Passes.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;

namespace llamac::driver {

namespace cl = llvm::cl;

cl::OptionCategory &optionCategory() {
  static cl::OptionCategory category("llamac options");
  return category;
}

cl::SubCommand &infoCommand() {
  static cl::SubCommand command(
      "info", "Print a model's configuration, parameter count, training FLOPs per token and "
              "memory for weights, gradients, optimizer state and activations");
  return command;
}

cl::SubCommand &compileCommand() {
  static cl::SubCommand command(
      "compile", "Compile a model through the llamac pipeline and print a summary");
  return command;
}

static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.mlir>"), cl::Required,
                                      cl::sub(infoCommand()), cl::sub(compileCommand()), cl::cat(optionCategory()));
static cl::opt<std::string> modelName("model",
                                      cl::desc("Model to use when the file declares several"),
                                      cl::value_desc("name"), cl::sub(infoCommand()),
                                      cl::sub(compileCommand()), cl::cat(optionCategory()));
static cl::opt<int64_t> batchSize("batch", cl::desc("Batch size (default 1)"), cl::init(1),
                                  cl::sub(infoCommand()), cl::sub(compileCommand()), cl::cat(optionCategory()));
static cl::opt<int64_t> seqLen("seq",
                               cl::desc("Sequence length (default: the model's context)"),
                               cl::init(0), cl::sub(infoCommand()), cl::sub(compileCommand()), cl::cat(optionCategory()));

ModelArgs modelArgs() { return {inputFile, modelName, batchSize, seqLen}; }

int error(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "llamac") << message << "\n";
  return 1;
}

std::unique_ptr<MLIRContext> makeContext() {
  DialectRegistry registry;
  registerAllDialects(registry);
  auto ctx = std::make_unique<MLIRContext>(registry);
  ctx->loadAllAvailableDialects();
  return ctx;
}

OwningOpRef<ModuleOp> loadModule(StringRef path, MLIRContext &ctx) {
  auto buffer = llvm::MemoryBuffer::getFileOrSTDIN(path, /*IsText=*/true);
  if (std::error_code ec = buffer.getError()) {
    error("cannot read '" + path + "': " + ec.message());
    return nullptr;
  }
  auto sourceMgr = std::make_shared<llvm::SourceMgr>();
  sourceMgr->AddNewSourceBuffer(std::move(*buffer), llvm::SMLoc());
  SourceMgrDiagnosticHandler handler(*sourceMgr, &ctx);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &ctx);
  if (!module)
    return nullptr; // the parser (and the verifier it runs) reported why
  return module;
}

llama::ModelOp selectModel(ModuleOp module, StringRef path, StringRef name) {
  SmallVector<llama::ModelOp> models(module.getOps<llama::ModelOp>());
  if (models.empty()) {
    error("'" + path + "' declares no llama.model");
    return nullptr;
  }
  if (name.empty()) {
    if (models.size() == 1)
      return models.front();
    error("'" + path + "' declares " + Twine(models.size()) +
          " models; choose one with --model");
    return nullptr;
  }
  for (llama::ModelOp m : models)
    if (m.getSymName() == name)
      return m;
  error("'" + path + "' declares no model @" + name);
  return nullptr;
}

LogicalResult runFrontend(ModuleOp module, int64_t batch, int64_t seq) {
  PassManager pm(module.getContext());
  FrontendPipelineOptions options;
  options.batch = batch;
  options.seq = seq;
  buildFrontendPipeline(pm, options);
  return pm.run(module);
}

} // namespace llamac::driver
