//===- Plan.cpp - `llamac plan` ------------------------------------------------------===//
//
// Predicts a sharded training run (models/Planner.h) from the model's measured FLOPs and
// bytes at the requested sequence length.
//
//===----------------------------------------------------------------------------------===//

#include "models/ModelInfo.h"
#include "models/Planner.h"
#include "passes/Passes.h"
#include "tools/llamac/Driver.h"

#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace llamac;
namespace cl = llvm::cl;

static cl::opt<int64_t> devices("devices", cl::desc("Number of devices"), cl::init(8),
                                cl::sub(driver::planCommand()),
                                cl::cat(driver::optionCategory()));
static cl::opt<std::string> device("device", cl::desc("Device model: a100-80gb, h100-80gb"),
                                   cl::init("a100-80gb"), cl::sub(driver::planCommand()),
                                   cl::cat(driver::optionCategory()));
static cl::opt<std::string> strategy("strategy",
                                     cl::desc("fsdp (shard over all devices) or hybrid (shard "
                                              "within a node, replicate across nodes)"),
                                     cl::init("hybrid"), cl::sub(driver::planCommand()),
                                     cl::cat(driver::optionCategory()));
static cl::opt<int64_t> tokensPerDevice("tokens-per-device",
                                        cl::desc("Tokens per device per optimizer step "
                                                 "(default: one sequence)"),
                                        cl::init(0), cl::sub(driver::planCommand()),
                                        cl::cat(driver::optionCategory()));
static cl::opt<int> prefetch("prefetch", cl::desc("Units gathered ahead"), cl::init(1),
                             cl::sub(driver::planCommand()), cl::cat(driver::optionCategory()));
static cl::opt<std::string> remat("remat", cl::desc("none, selective or full"),
                                  cl::init("selective"), cl::sub(driver::planCommand()),
                                  cl::cat(driver::optionCategory()));
static cl::opt<double> totalTokens("total-tokens",
                                   cl::desc("Training tokens, for device-hours (e.g. 1e12)"),
                                   cl::init(0), cl::sub(driver::planCommand()),
                                   cl::cat(driver::optionCategory()));

int llamac::driver::runPlan() {
  ModelArgs args = modelArgs();
  const DeviceSpec *spec = findDevice(device);
  if (!spec) {
    std::string known;
    for (const std::string &n : deviceNames())
      known += (known.empty() ? "" : ", ") + n;
    return error("--device '" + device + "' is not known (known: " + known + ")");
  }
  if (remat != "none" && remat != "selective" && remat != "full")
    return error("--remat must be none, selective or full, not '" + remat + "'");
  if (args.seq < 0 || totalTokens < 0)
    return error("--seq and --total-tokens must not be negative");
  auto ctx = makeContext();
  OwningOpRef<ModuleOp> module = loadModule(args.input, *ctx);
  if (!module)
    return 1;
  llama::ModelOp declared = selectModelForSeq(*module, args);
  if (!declared)
    return 1;
  int64_t context = declared.getConfig().getMaxSeqLen();
  int64_t seq = args.seq ? args.seq : context;
  ModelInfo info;
  countParameters(declared, info);
  std::string name = declared.getSymName().str();
  if (failed(runFrontend(*module, 1, seq)))
    return 1;
  auto expanded = dyn_cast_or_null<llama::ModelOp>(
      SymbolTable::lookupSymbolIn(*module, StringAttr::get(ctx.get(), name)));
  if (!expanded || failed(measureForward(expanded, info)) || failed(measureRemat(*module, info)))
    return 1;
  // What the compiled program's collectives move: llamac-plan-fsdp's units.
  FailureOr<std::vector<FsdpUnitSize>> units = fsdpUnitSizes(expanded);
  if (failed(units))
    return 1;
  PlanOptions options;
  for (const FsdpUnitSize &u : *units)
    options.unitElements.push_back(u.elements);
  options.devices = devices;
  options.strategy = strategy;
  options.tokensPerDevice = tokensPerDevice ? int64_t(tokensPerDevice) : seq;
  options.prefetch = prefetch;
  options.remat = remat;
  options.totalTokens = totalTokens;
  PlanResult result;
  std::string err;
  if (!plan(info, *spec, options, result, &err))
    return error(err);
  printPlan(info, *spec, options, result, llvm::outs());
  return 0;
}
