//===- CudaGemm.h - the GEMMs of generated CUDA programs, through cuBLASLt -*- C++ -*-===//
//
// The three GEMM kinds of the kernel-level IR on row-major f32 matrices, as the CPU's
// (runtime/cpu/CpuKernels.h): C = A B^T (nt), C = A B (nn), C = A^T B (tn), with beta = 1
// when accumulating. cuBLASLt is column-major, so each is issued as the transposed product
// C^T = op(B) op(A) with the operands swapped (CudaGemm.cpp derives each case).
//
// Precision: f32 storage and f32 accumulation always; the products are what the program
// was compiled with (`llamac compile --precision`): bf16 tensor cores with the f32 inputs
// rounded to bf16 as they are loaded (CUBLAS_COMPUTE_32F_FAST_16BF, the default), TF32
// tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32), or full f32 (CUBLAS_COMPUTE_32F).
// LLAMAC_CUDA_GEMM=f32|tf32|bf16 overrides it at run time.
//
// A plan (descriptors, layouts and the heuristic's algorithm) is made once per shape and
// cached, so that steady-state launches cost one cublasLtMatmul call and can be captured in
// a CUDA graph. `candidates` > 1 asks the heuristic for several algorithms: the tuner times
// them (llamac tune --target cuda) and the choice travels as the launch's `algo` index.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_CUDA_CUDAGEMM_H
#define LLAMAC_RUNTIME_CUDA_CUDAGEMM_H

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace llamac::cuda {

enum class Precision { F32, TF32, BF16 };

class GemmEngine {
public:
  enum class Op { NT, NN, TN };

  GemmEngine() = default;
  GemmEngine(const GemmEngine &) = delete;
  GemmEngine &operator=(const GemmEngine &) = delete;
  ~GemmEngine();

  /// Creates the cuBLASLt handle and a workspace; false (and `error`) when they fail.
  bool init(std::string *error);
  /// The products' precision (plans made before a change are dropped).
  void setPrecision(Precision precision);

  /// C[M,N] (+)= op(A) op(B) on `stream` with the heuristic's `algo`-th candidate (0: its
  /// first choice). Returns CUBLAS_STATUS_SUCCESS or the failure to report.
  cublasStatus_t run(Op op, int64_t M, int64_t N, int64_t K, const float *A, const float *B,
                     float *C, bool accumulate, int algo, cudaStream_t stream);
  cublasStatus_t nt(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                    bool accumulate, int algo, cudaStream_t stream) {
    return run(Op::NT, M, N, K, A, B, C, accumulate, algo, stream);
  }
  cublasStatus_t nn(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                    bool accumulate, int algo, cudaStream_t stream) {
    return run(Op::NN, M, N, K, A, B, C, accumulate, algo, stream);
  }
  cublasStatus_t tn(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                    bool accumulate, int algo, cudaStream_t stream) {
    return run(Op::TN, M, N, K, A, B, C, accumulate, algo, stream);
  }

  /// How many algorithms the heuristic offers for this shape (at most `limit`).
  int candidates(Op op, int64_t M, int64_t N, int64_t K, bool accumulate, int limit);

private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    std::vector<cublasLtMatmulAlgo_t> algos;
    cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
  };
  using Key = std::tuple<int, int64_t, int64_t, int64_t, bool, int>;
  Plan &plan(Op op, int64_t M, int64_t N, int64_t K, bool accumulate, int count);
  void clearPlans();

  cublasLtHandle_t handle_ = nullptr;
  void *workspace_ = nullptr;
  size_t workspaceBytes_ = 0;
  cublasComputeType_t compute_ = CUBLAS_COMPUTE_32F_FAST_16BF;
  bool overridden_ = false; ///< LLAMAC_CUDA_GEMM was set
  std::map<Key, Plan> plans_;
};

const char *statusName(cublasStatus_t status);

} // namespace llamac::cuda

#endif
