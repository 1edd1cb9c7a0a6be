//===- Equivalence.h - the harness every pass is tested with ------------*- C++ -*-===//
//
// Runs the functions of a model before and after a transformation on the same seeded
// parameters and random inputs and reports, per output, the largest absolute and relative
// difference. `llamac check` and `llamac bisect` are thin drivers over it.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_INTERPRETER_EQUIVALENCE_H
#define LLAMAC_RUNTIME_INTERPRETER_EQUIVALENCE_H

#include "runtime/interpreter/Interpreter.h"

#include <string>
#include <vector>

namespace llamac {

/// Seeded inputs for `fn`: token-like integers uniform in [0, vocab), floats standard
/// normal, index scalars 0; dynamic dimensions 0 and 1 are batch and seq. The same seed
/// gives the same tensors for the same argument shapes.
std::vector<Tensor> randomInputs(mlir::func::FuncOp fn, int64_t vocab, int64_t batch,
                                 int64_t seq, uint64_t seed);

struct OutputDifference {
  std::string function;
  unsigned index = 0;
  std::string shape;  ///< "f32[2x8x512]"
  double maxAbs = 0;  ///< max |a - b|
  double maxRel = 0;  ///< max |a - b| / max |a| (norm-wise, robust near zero)
  bool mismatchedShape = false;
};

struct EquivalenceOptions {
  Precision precision = Precision::F64;
  uint64_t seed = 0;
  int64_t batch = 2, seq = 8;
  std::string function; ///< empty: every function of the model before
};

/// Runs `before` and `after` (same model name; parameters seeded by name) and compares.
/// False (and `error`) when a function cannot be run on either side.
bool compareModels(llama::ModelOp before, llama::ModelOp after,
                   const EquivalenceOptions &options, std::vector<OutputDifference> &diffs,
                   std::string *error);

/// Runs one side; used by bisect to keep the reference outputs of the original IR.
bool runAllFunctions(llama::ModelOp model, const EquivalenceOptions &options,
                     llama::ModelOp inputsFrom, std::vector<std::vector<Tensor>> &outputs,
                     std::vector<std::string> &names, std::string *error);

/// The differences between two output sets of the functions `names`.
std::vector<OutputDifference> diffOutputs(const std::vector<std::string> &names,
                                          const std::vector<std::vector<Tensor>> &a,
                                          const std::vector<std::vector<Tensor>> &b);

} // namespace llamac

#endif
