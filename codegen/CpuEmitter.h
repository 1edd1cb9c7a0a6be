//===- CpuEmitter.h - kernel-level IR to C++ for the CPU -------------------*- C++ -*-===//
//
// Writes one C++20 translation unit for a kir::Program: one function per entry function
// that issues its launches in schedule order as calls into the CPU kernels
// (runtime/cpu/CpuKernels.h) with every shape, offset and attribute a constant; the
// ProgramSpec tables (runtime/Program.h); and main(), which hands them to the training or
// inference driver. The CPU has one stream, so waits and records are comments.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_CODEGEN_CPUEMITTER_H
#define LLAMAC_CODEGEN_CPUEMITTER_H

#include "codegen/KernelIR.h"

namespace llamac::kir {

/// `command` is recorded in the file's header comment.
void emitCpu(const Program &program, const std::string &command, llvm::raw_ostream &os);

} // namespace llamac::kir

#endif
