//===- Equivalence.cpp - before/after comparison of a model's functions ------------===//
#include "runtime/interpreter/Equivalence.h"

#include <cmath>

using namespace mlir;
using namespace llamac;

std::vector<Tensor> llamac::randomInputs(func::FuncOp fn, int64_t vocab, int64_t batch,
                                         int64_t seq, uint64_t seed) {
  std::vector<Tensor> inputs;
  for (auto [i, type] : llvm::enumerate(fn.getArgumentTypes())) {
    uint64_t key = streamKey(seed, "input" + std::to_string(i));
    if (type.isIndex()) {
      inputs.emplace_back(DType::I64, std::vector<int64_t>{}, 0.0);
      continue;
    }
    auto tensor = dyn_cast<RankedTensorType>(type);
    std::optional<DType> dtype = tensor ? toDType(tensor.getElementType()) : std::nullopt;
    if (!dtype) { // run() reports the unsupported type
      inputs.emplace_back();
      continue;
    }
    Tensor t(*dtype, concreteShape(tensor, batch, seq));
    for (int64_t j = 0; j < t.numElements(); ++j) {
      double g = gaussian(key, uint64_t(j));
      if (isFloat(*dtype)) {
        t[j] = g;
      } else { // uniform in [0, vocab) from the normal sample's CDF
        double u = 0.5 * std::erfc(-g / std::sqrt(2.0));
        t[j] = std::min(double(vocab - 1), std::floor(u * double(vocab)));
      }
    }
    inputs.push_back(std::move(t));
  }
  return inputs;
}

bool llamac::runAllFunctions(llama::ModelOp model, const EquivalenceOptions &options,
                             llama::ModelOp inputsFrom,
                             std::vector<std::vector<Tensor>> &outputs,
                             std::vector<std::string> &names, std::string *error) {
  Interpreter interp(model, options.precision, options.seed);
  int64_t vocab = inputsFrom.getConfig().getVocabSize();
  names.clear();
  outputs.clear();
  for (func::FuncOp fn : inputsFrom.getOps<func::FuncOp>()) {
    if (fn.isExternal() || fn.isPrivate())
      continue;
    if (!options.function.empty() && fn.getSymName() != options.function)
      continue;
    names.push_back(fn.getSymName().str());
  }
  if (names.empty()) {
    *error = options.function.empty()
                 ? "model @" + inputsFrom.getSymName().str() + " has no public function"
                 : "model @" + inputsFrom.getSymName().str() + " has no function @" +
                       options.function;
    return false;
  }
  for (const std::string &name : names) {
    std::vector<Tensor> inputs = randomInputs(inputsFrom.lookupFunction(name), vocab,
                                              options.batch, options.seq, options.seed);
    std::vector<Tensor> out;
    if (!interp.run(name, inputs, out, error))
      return false;
    outputs.push_back(std::move(out));
  }
  return true;
}

std::vector<OutputDifference> llamac::diffOutputs(const std::vector<std::string> &names,
                                                  const std::vector<std::vector<Tensor>> &a,
                                                  const std::vector<std::vector<Tensor>> &b) {
  std::vector<OutputDifference> diffs;
  for (size_t f = 0; f < names.size(); ++f) {
    for (size_t i = 0; i < std::max(a[f].size(), b[f].size()); ++i) {
      OutputDifference d;
      d.function = names[f];
      d.index = unsigned(i);
      if (i >= a[f].size() || i >= b[f].size() || a[f][i].shape != b[f][i].shape) {
        d.mismatchedShape = true;
        d.shape = (i < a[f].size() ? a[f][i].describe() : "none") + " vs " +
                  (i < b[f].size() ? b[f][i].describe() : "none");
        d.maxAbs = d.maxRel = INFINITY;
        diffs.push_back(d);
        continue;
      }
      const Tensor &x = a[f][i], &y = b[f][i];
      d.shape = x.describe();
      double scale = 0;
      for (int64_t j = 0; j < x.numElements(); ++j) {
        double diff;
        if (std::isnan(x[j]) || std::isnan(y[j]))
          diff = std::isnan(x[j]) && std::isnan(y[j]) ? 0.0 : INFINITY;
        else if (x[j] == y[j]) // also equal infinities
          diff = 0.0;
        else
          diff = std::abs(x[j] - y[j]);
        d.maxAbs = std::max(d.maxAbs, diff);
        if (std::isfinite(x[j]))
          scale = std::max(scale, std::abs(x[j]));
      }
      d.maxRel = d.maxAbs == 0 ? 0 : d.maxAbs / std::max(scale, 1e-300);
      diffs.push_back(d);
    }
  }
  return diffs;
}

bool llamac::compareModels(llama::ModelOp before, llama::ModelOp after,
                           const EquivalenceOptions &options,
                           std::vector<OutputDifference> &diffs, std::string *error) {
  std::vector<std::vector<Tensor>> a, b;
  std::vector<std::string> names, namesAfter;
  if (!runAllFunctions(before, options, before, a, names, error))
    return false;
  // The same inputs (generated from the functions before) feed the functions after.
  if (!runAllFunctions(after, options, before, b, namesAfter, error))
    return false;
  diffs = diffOutputs(names, a, b);
  return true;
}
