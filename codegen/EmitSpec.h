//===- EmitSpec.h - what every target's emitter writes alike ---------------*- C++ -*-===//
//
// The parts of a generated program that do not depend on the target: C++ literals and
// identifiers, and the ProgramSpec tables (runtime/Program.h) with main(), which hands them
// to the training or inference driver. CpuEmitter.cpp and CudaEmitter.cpp write the entry
// functions (fn_<name>) and call emitProgramSpec after them.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_CODEGEN_EMITSPEC_H
#define LLAMAC_CODEGEN_EMITSPEC_H

#include "codegen/KernelIR.h"

#include <string>
#include <vector>

namespace llamac::kir {

/// A double as a C++ literal that reads back exactly.
std::string lit(double v);
/// The C++ type of an element: "float", "int32_t", "int64_t", "int8_t".
std::string cType(ElemType t);
/// `s` inside a C++ string literal.
std::string escape(const std::string &s);
/// `s` with every character that cannot be in a C++ identifier replaced by '_'.
std::string identifier(const std::string &s);

/// The statements of a Pointwise launch's body for element `i`: `float v<k> = ...;` per
/// entry, reading input k as `in<k>[i]`, then `out[i] = v<last>;`. `math` names the
/// target's functions: "exp", "log", "sqrt", "rsqrt", "max" (NaN-propagating) in that order.
std::string pointwiseBody(const Launch &launch, const char *const math[5]);

/// What a collective launch moves, for the communicator's messages: the unit's shard it
/// gathers or reduces into ("fsdp.layers.3"), else the op it came from; empty for other
/// launches.
std::string collectiveWhat(const Program &p, const Launch &launch);

/// `const rt::TensorSpec <name>[]` for a function's inputs or outputs.
void emitTensorSpecs(const std::vector<TensorSig> &sigs, const std::string &name,
                     llvm::raw_ostream &os);

/// The parameter, function (referring to fn_<name> and kIn_/kOut_<name>, which the caller has
/// written) and config tables, kProgram, and main(). `createDevice` is the expression for
/// ProgramSpec::createDevice, empty for the CPU.
void emitProgramSpec(const Program &p, const std::string &createDevice, llvm::raw_ostream &os);

} // namespace llamac::kir

#endif
