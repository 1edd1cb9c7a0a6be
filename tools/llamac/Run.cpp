//===- Run.cpp - `llamac run` ------------------------------------------------------===//
//
// Executes one function of a model, at any stage (after --pipeline), in the reference
// interpreter. Inputs come from a safetensors file (keys arg0, arg1, ...) or are drawn
// from the seed; parameters come from a file or from their declared initialisers.
//
//===----------------------------------------------------------------------------------===//

#include "runtime/Safetensors.h"
#include "runtime/interpreter/Equivalence.h"
#include "runtime/interpreter/SimulatedRanks.h"
#include "tools/llamac/Driver.h"

#include "mlir/IR/SymbolTable.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/Format.h"

#include <cmath>

using namespace mlir;
using namespace llamac;
namespace cl = llvm::cl;

static cl::opt<std::string> inputsFile("inputs",
                                       cl::desc("safetensors file of inputs (arg0, arg1, ...); "
                                                "missing ones are drawn from the seed"),
                                       cl::value_desc("file"), cl::sub(driver::runCommand()),
                                       cl::cat(driver::optionCategory()));
static cl::opt<std::string> paramsFile("params",
                                       cl::desc("safetensors file with every parameter"),
                                       cl::value_desc("file"), cl::sub(driver::runCommand()),
                                       cl::cat(driver::optionCategory()));
static cl::opt<std::string> outputFile("o",
                                       cl::desc("Write the outputs (result0, ...) here"),
                                       cl::value_desc("file"), cl::sub(driver::runCommand()),
                                       cl::cat(driver::optionCategory()));
static cl::opt<std::string> saveParams("save-params",
                                       cl::desc("Write the parameters used here"),
                                       cl::value_desc("file"), cl::sub(driver::runCommand()),
                                       cl::cat(driver::optionCategory()));

static cl::opt<std::string> saveInputs("save-inputs",
                                       cl::desc("Write the inputs used (arg0, ...) here"),
                                       cl::value_desc("file"), cl::sub(driver::runCommand()),
                                       cl::cat(driver::optionCategory()));

static cl::opt<int> numRanks("ranks",
                             cl::desc("Simulated ranks, one thread each, for programs with "
                                      "collectives; rank r draws its inputs from seed + r"),
                             cl::init(1), cl::sub(driver::runCommand()),
                             cl::cat(driver::optionCategory()));

/// Writes `tensors` as name0, name1, ... with the model and function as metadata.
static bool writeNumbered(const std::string &path, const std::string &prefix,
                          const std::vector<Tensor> &tensors,
                          const std::map<std::string, std::string> &metadata,
                          std::string *err) {
  std::vector<std::pair<std::string, const Tensor *>> entries;
  for (auto [i, t] : llvm::enumerate(tensors))
    entries.emplace_back(prefix + std::to_string(i), &t);
  return writeSafetensors(path, entries, metadata, err);
}

static void printSummary(const std::string &name, const Tensor &t) {
  llvm::outs() << name << ": " << t.describe();
  int64_t n = t.numElements();
  if (n == 0) {
    llvm::outs() << " (empty)\n";
    return;
  }
  if (n <= 16) {
    llvm::outs() << " = [";
    for (int64_t i = 0; i < n; ++i)
      llvm::outs() << (i ? ", " : "") << llvm::format("%.9g", t[i]);
    llvm::outs() << "]\n";
    return;
  }
  double sum = 0, sq = 0, lo = INFINITY, hi = -INFINITY;
  for (double v : t.data) {
    sum += v;
    sq += v * v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  double mean = sum / double(n);
  llvm::outs() << llvm::format(" mean %.6g std %.6g min %.6g max %.6g\n", mean,
                               std::sqrt(std::max(0.0, sq / double(n) - mean * mean)), lo, hi);
}

int llamac::driver::runRun() {
  ModelArgs args = modelArgs();
  ExecArgs exec = execArgs();
  if (args.batch <= 0 || args.seq < 0)
    return error("--batch must be positive and --seq non-negative");
  auto ctx = makeContext();
  OwningOpRef<ModuleOp> module = loadModule(args.input, *ctx);
  if (!module)
    return 1;
  llama::ModelOp model = selectModel(*module, args.input, args.model);
  if (!model)
    return 1;
  std::string name = model.getSymName().str();
  if (!exec.pipeline.empty()) {
    PassManager pm(ctx.get(), ModuleOp::getOperationName());
    if (failed(parsePipeline(exec.pipeline, pm)) || failed(pm.run(*module)))
      return 1;
    model = cast<llama::ModelOp>(
        SymbolTable::lookupSymbolIn(*module, StringAttr::get(ctx.get(), name)));
  }
  int64_t seq = args.seq ? args.seq : model.getConfig().getMaxSeqLen();
  std::string function = exec.function.empty() ? "forward" : exec.function;
  func::FuncOp fn = model.lookupFunction(function);
  Interpreter interp(model, exec.f64 ? Precision::F64 : Precision::F32, exec.seed);
  std::string err;
  if (!fn) {
    std::vector<Tensor> none;
    interp.run(function, {}, none, &err); // names the functions there are
    return error(err);
  }

  if (!paramsFile.empty()) {
    TensorFile file;
    if (!readSafetensors(paramsFile, file, &err) || !interp.loadParameters(file, &err))
      return error("--params: " + err);
  }

  std::vector<Tensor> inputs = randomInputs(fn, model.getConfig().getVocabSize(), args.batch,
                                            seq, exec.seed);
  if (!inputsFile.empty()) {
    TensorFile file;
    if (!readSafetensors(inputsFile, file, &err))
      return error("--inputs: " + err);
    for (auto &[key, tensor] : file.tensors) {
      unsigned index;
      if (!StringRef(key).starts_with("arg") || StringRef(key).drop_front(3).getAsInteger(10, index) ||
          index >= inputs.size())
        return error("--inputs: '" + key + "' is not an input of @" + function + " (arg0 to arg" +
                     Twine(int(inputs.size()) - 1) + ")");
      inputs[index] = tensor;
    }
  }

  if (numRanks < 1 || numRanks > 1024)
    return error("--ranks must be between 1 and 1024, got " + Twine(int(numRanks)));
  if (numRanks > 1) {
    if (!inputsFile.empty() || !outputFile.empty() || !saveInputs.empty())
      return error("--ranks > 1 draws every rank's inputs from the seed and prints the "
                   "outputs; --inputs, -o and --save-inputs need one rank");
    std::vector<std::vector<Tensor>> rankInputs, rankOutputs;
    for (int r = 0; r < numRanks; ++r)
      rankInputs.push_back(randomInputs(fn, model.getConfig().getVocabSize(), args.batch,
                                        seq, exec.seed + uint64_t(r)));
    std::optional<TensorFile> params;
    if (!paramsFile.empty()) {
      params.emplace();
      readSafetensors(paramsFile, *params, &err); // read (and checked) above
    }
    auto make = [&] {
      return std::make_unique<Interpreter>(model, exec.f64 ? Precision::F64 : Precision::F32,
                                           exec.seed);
    };
    auto setup = [&](Interpreter &rank, int, std::string *e) {
      return !params || rank.loadParameters(*params, e);
    };
    if (!runSimulatedRanks(numRanks, make, function, rankInputs, rankOutputs, &err, setup))
      return error(err);
    for (int r = 0; r < numRanks; ++r)
      for (auto [i, t] : llvm::enumerate(rankOutputs[r]))
        printSummary("rank " + std::to_string(r) + " result" + std::to_string(i), t);
    return 0;
  }

  std::vector<Tensor> outputs;
  if (!interp.run(function, inputs, outputs, &err))
    return error(err);
  for (auto [i, t] : llvm::enumerate(outputs))
    printSummary("result" + std::to_string(i), t);

  std::map<std::string, std::string> metadata = {{"function", function}, {"model", name}};
  if (!outputFile.empty() && !writeNumbered(outputFile, "result", outputs, metadata, &err))
    return error(err);
  if (!saveInputs.empty() && !writeNumbered(saveInputs, "arg", inputs, metadata, &err))
    return error(err);
  if (!saveParams.empty()) {
    std::vector<std::pair<std::string, const Tensor *>> entries;
    for (const ParamDecl &p : interp.parameters())
      entries.emplace_back(p.name, interp.parameter(p.name));
    if (!writeSafetensors(saveParams, entries, metadata, &err))
      return error(err);
  }
  return 0;
}
