//===- CudaEmitter.h - kernel-level IR to CUDA C++ -------------------------*- C++ -*-===//
//
// Writes one CUDA C++ translation unit for a kir::Program, beside the CPU emitter and from
// the same IR: per entry function a body that issues its launches in schedule order on the
// launch's stream, with its event waits and records, as calls into the CUDA kernels
// (runtime/cuda/CudaKernels.h), cuBLASLt GEMMs (runtime/cuda/CudaGemm.h) and flash-attention
// templates instantiated for the model's head dimension and the launch's tiles
// (runtime/cuda/FlashAttention.cuh); and a wrapper that stages the host inputs, runs the
// body (directly or as a CUDA graph), reports bad token ids, and copies the outputs back.
// Then the ProgramSpec tables (EmitSpec.h) with createDevice = cuda::createCudaDevice.
// nvcc compiles it (`llamac compile --target cuda`) for sm_80 and sm_90.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_CODEGEN_CUDAEMITTER_H
#define LLAMAC_CODEGEN_CUDAEMITTER_H

#include "codegen/KernelIR.h"

#include <string>

namespace llamac::kir {

/// Whether the CUDA emitter can generate `launch`; `why` says what it lacks otherwise.
bool cudaSupports(const Launch &launch, std::string *why);

/// `command` is recorded in the file's header comment.
void emitCuda(const Program &program, const std::string &command, llvm::raw_ostream &os);

} // namespace llamac::kir

#endif
