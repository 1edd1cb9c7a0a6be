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

/// The C++ statement that performs `launch` inside a generated entry function (regions
/// `A`, `P`, `C`, arguments `in`, `out`, the helper `at<T>`, `fail`): what emitCpu writes for
/// it, also used by `llamac tune` to time variants of one launch.
std::string emitCpuCall(const Launch &launch);

/// The expression for a pointer to `buffer`'s first element as its element type (const when
/// `isConst`), in the names emitCpuCall uses.
std::string emitCpuPointer(const BufferRef &buffer, bool isConst);

/// The preamble every generated file starts with (includes, `at`, `fail`, `LAUNCH`).
void emitCpuPreamble(llvm::raw_ostream &os);

} // namespace llamac::kir

#endif
