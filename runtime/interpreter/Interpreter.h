//===- Interpreter.h - the reference interpreter ------------------------*- C++ -*-===//
//
// Executes any tensor-level stage of llama IR on the CPU: the declared model (layers
// applied through llama.stack), the expanded and specialised model, and later stages.
// Every pass is tested against it: same parameters and inputs before and after, compare.
//
// Precision: F64 computes and keeps every value in double (the exact program, for finite
// differences); F32 rounds every result to its declared element type (f32, bf16, f16).
//
// Parameters are named as after llama-expand-layers ("layers.3.attention.wq") whether or
// not the layers are expanded, and initialised from their declared initialiser by a
// generator keyed on (seed, name, element index): a parameter's values do not depend on
// the order of declaration or on the stage of the IR. `state` parameters (optimizer
// moments, accumulated gradients) are initialised the same way. llama.set_param replaces
// the stored value (rounded to the declared type in F32), which later llama.get_param
// reads, in the same run and in later ones.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_INTERPRETER_INTERPRETER_H
#define LLAMAC_RUNTIME_INTERPRETER_INTERPRETER_H

#include "dialects/llama/LlamaOps.h"
#include "runtime/Random.h" // gaussian, streamKey: shared with generated executables
#include "runtime/Tensor.h"

#include "llvm/ADT/DenseMap.h"

#include <map>
#include <string>
#include <vector>

namespace llamac {

struct TensorFile;
class SimulatedGroup;

enum class Precision { F32, F64 };

struct ParamDecl {
  std::string name; ///< qualified: "layers.0.attention.wq"
  llama::ParamOp op;
};

/// The element type of an IR tensor type as a DType (f32/bf16/f16/i32/i64; index -> i64).
std::optional<DType> toDType(mlir::Type elementType);

/// A tensor of `type` with dynamic dimensions 0 and 1 bound to batch and seq.
std::vector<int64_t> concreteShape(mlir::RankedTensorType type, int64_t batch, int64_t seq);

class Interpreter {
public:
  Interpreter(llama::ModelOp model, Precision precision = Precision::F32, uint64_t seed = 0);

  llama::ModelOp model() const { return model_; }

  /// Makes this interpreter rank `rank` of `group`: collectives (shard.all_gather,
  /// shard.all_reduce, shard.reduce_scatter) exchange tensors with the group's other ranks,
  /// and shard.process_linear_index is `rank`. Without a group the process is one rank.
  void attach(SimulatedGroup *group, int rank) {
    group_ = group;
    rank_ = rank;
  }
  Precision precision() const { return precision_; }

  /// Every parameter of the model, layers expanded, in declaration order.
  const std::vector<ParamDecl> &parameters() const { return params_; }
  /// A parameter's value (initialised on first use). Null for an unknown name.
  const Tensor *parameter(const std::string &name);
  /// Replaces a parameter's value; false (and `error`) if the name is unknown or the
  /// shape or element type differs from the declaration.
  bool setParameter(const std::string &name, Tensor value, std::string *error);
  /// Sets every parameter from a file; every declared parameter must be present.
  bool loadParameters(const TensorFile &file, std::string *error);

  /// Runs function `name` of the model. Inputs must match its arguments (rank, element
  /// type, static dimensions). False (and `error`, naming the op and its location) on any
  /// failure.
  bool run(llvm::StringRef name, const std::vector<Tensor> &inputs,
           std::vector<Tensor> &outputs, std::string *error);

private:
  bool runFunction(mlir::func::FuncOp fn, const std::string &paramPrefix,
                   const std::vector<Tensor> &inputs, std::vector<Tensor> &outputs,
                   std::string *error, int depth);
  bool execute(mlir::Operation *op, const std::string &paramPrefix,
               llvm::DenseMap<mlir::Value, Tensor> &env, std::string *error, int depth);
  Tensor initialise(ParamDecl decl) const;
  bool collective(mlir::Operation *op, const std::vector<Tensor> &operands,
                  std::vector<Tensor> &results, std::string *error);

  llama::ModelOp model_;
  Precision precision_;
  uint64_t seed_;
  std::vector<ParamDecl> params_;
  std::map<std::string, size_t> paramIndex_;
  std::map<std::string, Tensor> values_;
  SimulatedGroup *group_ = nullptr;
  int rank_ = 0;
};

} // namespace llamac

#endif
