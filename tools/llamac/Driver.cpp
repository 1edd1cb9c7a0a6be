//===- Driver.cpp - shared pieces of the llamac subcommands ------------------------===//
#include "tools/llamac/Driver.h"

#include "dialects/InitAllDialects.h"
#include "passes/Passes.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
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

cl::SubCommand &runCommand() {
  static cl::SubCommand command(
      "run", "Execute a function of a model (any stage) in the reference interpreter");
  return command;
}

cl::SubCommand &checkCommand() {
  static cl::SubCommand command(
      "check", "Check that a pass pipeline preserves a model's outputs (interpreter)");
  return command;
}

cl::SubCommand &tuneCommand() {
  static cl::SubCommand command(
      "tune", "Time the variants of each tunable kernel a model's program uses on this machine "
              "and record the fastest in a tuning database");
  return command;
}

cl::SubCommand &planCommand() {
  static cl::SubCommand command(
      "plan", "Predict step time, throughput, MFU, memory and communication of sharded "
              "training on many devices");
  return command;
}

cl::SubCommand &bisectCommand() {
  static cl::SubCommand command(
      "bisect", "Find the first pass of a pipeline that changes a model's outputs");
  return command;
}

static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.mlir>"), cl::Required,
                                      cl::sub(infoCommand()), cl::sub(compileCommand()),
                                      cl::sub(tuneCommand()), cl::sub(planCommand()),
    cl::sub(runCommand()), cl::sub(checkCommand()), cl::sub(bisectCommand()), cl::cat(optionCategory()));
static cl::opt<std::string> modelName("model",
                                      cl::desc("Model to use when the file declares several"),
                                      cl::value_desc("name"), cl::sub(infoCommand()),
                                      cl::sub(compileCommand()), cl::sub(tuneCommand()),
                                      cl::sub(planCommand()), cl::cat(optionCategory()));
static cl::opt<int64_t> batchSize("batch", cl::desc("Batch size (default 1)"), cl::init(1),
                                  cl::sub(infoCommand()), cl::sub(compileCommand()),
                                  cl::sub(tuneCommand()),
    cl::sub(runCommand()), cl::sub(checkCommand()), cl::sub(bisectCommand()), cl::cat(optionCategory()));
static cl::opt<int64_t> seqLen("seq",
                               cl::desc("Sequence length (default: the model's context)"),
                               cl::init(0), cl::sub(infoCommand()), cl::sub(compileCommand()),
                               cl::sub(tuneCommand()), cl::sub(planCommand()),
    cl::sub(runCommand()), cl::sub(checkCommand()), cl::sub(bisectCommand()), cl::cat(optionCategory()));

ModelArgs modelArgs() { return {inputFile, modelName, batchSize, seqLen}; }

static cl::opt<std::string> pipelineText(
    "pipeline", cl::desc("Pass pipeline to apply first (run) or to check (check, bisect), "
                         "e.g. 'llamac-frontend{batch=2 seq=8}'"),
    cl::value_desc("passes"), cl::sub(runCommand()), cl::sub(checkCommand()),
    cl::sub(bisectCommand()), cl::cat(optionCategory()));
static cl::opt<std::string> functionName(
    "function", cl::desc("Function to execute (run: default forward; check, bisect: every "
                         "public function)"),
    cl::value_desc("name"), cl::sub(runCommand()), cl::sub(checkCommand()),
    cl::sub(bisectCommand()), cl::cat(optionCategory()));
static cl::opt<uint64_t> seed("seed", cl::desc("Seed of parameters and random inputs"),
                              cl::init(0), cl::sub(runCommand()), cl::sub(checkCommand()),
                              cl::sub(bisectCommand()), cl::cat(optionCategory()));
enum class PrecisionArg { f32, f64 };
static cl::opt<PrecisionArg> precision(
    "precision", cl::desc("Interpreter precision"),
    cl::values(clEnumValN(PrecisionArg::f32, "f32", "round every value to its declared type"),
               clEnumValN(PrecisionArg::f64, "f64", "compute and keep everything in double")),
    cl::init(PrecisionArg::f64), cl::sub(runCommand()), cl::sub(checkCommand()),
    cl::sub(bisectCommand()), cl::cat(optionCategory()));
static cl::opt<double> tolerance(
    "tol", cl::desc("Largest relative difference (max |a-b| / max |a|) accepted per output"),
    cl::init(1e-6), cl::sub(checkCommand()), cl::sub(bisectCommand()),
    cl::cat(optionCategory()));

ExecArgs execArgs() {
  return {pipelineText, functionName, seed, precision == PrecisionArg::f64, tolerance};
}

LogicalResult parsePipeline(StringRef pipeline, OpPassManager &pm) {
  std::string message;
  llvm::raw_string_ostream os(message);
  if (succeeded(mlir::parsePassPipeline(pipeline, pm, os)))
    return success();
  error("invalid --pipeline '" + pipeline + "': " + StringRef(message).trim());
  return failure();
}

std::string targetOptionsError(llvm::StringRef target, llvm::StringRef weights,
                               llvm::StringRef precision, bool precisionGiven) {
  if (weights != "f32" && weights != "int8")
    return "--weights must be f32 or int8, not '" + weights.str() + "'";
  if (weights == "int8" && target == "cuda")
    return "--weights int8 is generated for --target cpu only";
  if (precision != "bf16" && precision != "tf32" && precision != "f32")
    return "--precision must be bf16, tf32 or f32, not '" + precision.str() + "'";
  if (target == "cpu" && precisionGiven && precision == "tf32")
    return "--precision tf32 is for --target cuda; the CPU has f32 and bf16 (mixed precision)";
  return "";
}

std::string precisionModeError(llvm::StringRef target, llvm::StringRef mode,
                               llvm::StringRef precision, bool precisionGiven) {
  if (target == "cpu" && mode == "infer" && precisionGiven && precision == "bf16")
    return "--precision bf16 with --mode infer is for --target cuda: inference programs keep "
           "f32 weights and activations, and the CPU computes their products in f32";
  return "";
}

std::string effectivePrecision(llvm::StringRef target, llvm::StringRef precision,
                               bool precisionGiven) {
  if (precisionGiven)
    return precision.str();
  return target == "cuda" ? "bf16" : "f32";
}

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

llama::ModelOp selectModelForSeq(ModuleOp module, const ModelArgs &args) {
  llama::ModelOp model = selectModel(module, args.input, args.model);
  if (!model)
    return nullptr;
  int64_t context = model.getConfig().getMaxSeqLen();
  if (args.seq > context) {
    error("--seq " + Twine(args.seq) + " exceeds the context of @" + model.getSymName() +
          " (" + Twine(context) + ")");
    return nullptr;
  }
  return model;
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
