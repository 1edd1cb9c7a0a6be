//===- CudaEmitter.h - kernel-level IR to CUDA C++ -------------------------*- C++ -*-===//
//
// Writes one CUDA C++ translation unit for a kir::Program, beside the CPU emitter and from
// the same IR: per entry function a body that issues its launches in schedule order on the
// launch's stream, with its event waits and records, as calls into the CUDA kernels
// (runtime/cuda/CudaKernels.h), cuBLASLt GEMMs (runtime/cuda/CudaGemm.h) and flash-attention
// templates instantiated for the model's head dimension and the launch's tiles
// (runtime/cuda/FlashAttention.cuh), and the collectives of FSDP programs as NCCL calls
// (runtime/cuda/Nccl.cpp); and a wrapper that hands the run's communicators to the
// execution state (functions with collectives: one per grid axis they use), stages the host
// inputs, runs the body (directly or as a CUDA graph), reports bad token ids, and copies the
// outputs back.
// Then the ProgramSpec tables (EmitSpec.h) with createDevice = cuda::createCudaDevice.
// nvcc compiles it (`llamac compile --target cuda`) for sm_80 and sm_90.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_CODEGEN_CUDAEMITTER_H
#define LLAMAC_CODEGEN_CUDAEMITTER_H

#include "codegen/KernelIR.h"

#include <cstdint>
#include <string>
#include <vector>

namespace llamac::kir {

/// Whether the CUDA emitter can generate `launch`; `why` says what it lacks otherwise.
bool cudaSupports(const Launch &launch, std::string *why);

/// `command` is recorded in the file's header comment.
void emitCuda(const Program &program, const std::string &command, llvm::raw_ostream &os);

/// The call that emitCuda writes for `launch` (inside its LAUNCH(...)), for code that issues
/// single launches outside an entry function (the benchmark of `llamac tune --target cuda`).
/// The call names what a body in emitCuda's output has in scope: `X` (the execution state:
/// X.stream(i), X.gemm(), X.blas(status)), the regions `A`, `P`, `C` and the staging buffer
/// `S`, where input i of the launch's function sits at inOffsets[i] and output i at
/// outOffsets[i], `E` (the error words; validating kinds report in E + 0) and at<T>(base,
/// offset). `precision` is the program's --precision ("bf16", "tf32" or "f32"; the config
/// entry). Pointwise launches, whose kernels are generated per program, are not supported;
/// collectives (cuda::allGather(X, ...)) name what they move after the launch's origin.
std::string emitCudaCall(const Launch &launch, const std::vector<int64_t> &inOffsets,
                         const std::vector<int64_t> &outOffsets,
                         const std::string &precision = "bf16");

} // namespace llamac::kir

#endif
