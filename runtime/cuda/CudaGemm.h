//===- CudaGemm.h - the GEMMs of generated CUDA programs, through cuBLASLt -*- C++ -*-===//
//
// The three GEMM kinds of the kernel-level IR on row-major f32 or bf16 matrices, as the
// CPU's (runtime/cpu/CpuKernels.h): C = A B^T (nt), C = A B (nn), C = A^T B (tn), with
// beta = 1 when accumulating. cuBLASLt is column-major, so each is issued as the transposed
// product C^T = op(B) op(A) with the operands swapped (CudaGemm.cpp derives each case).
//
// Precision: f32 accumulation always. With f32 operands (f32 storage), the products are what
// the program was compiled with (`llamac compile --precision`): bf16 tensor cores with the
// f32 inputs rounded to bf16 as they are loaded (CUBLAS_COMPUTE_32F_FAST_16BF, the default),
// TF32 tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32), or full f32 (CUBLAS_COMPUTE_32F).
// LLAMAC_CUDA_GEMM=f32|tf32|bf16 overrides it at run time. With bf16 operands (the uint16_t
// overloads: A, B and C all bf16, the GEMMs of a mixed-precision program), the inputs are
// already bf16 and neither setting applies: bf16 tensor cores, whose products are exact in
// f32, summed in f32 (CUBLAS_COMPUTE_32F on CUDA_R_16BF matrices), the result rounded to
// bf16 as it is stored (accumulate: C's old bf16 value added in f32 first): the numerics of
// the CPU's bf16 GEMMs up to the order of the f32 sums, so a result may now and then round
// to the neighbouring bf16 value.
//
// A plan (descriptors, layouts and the heuristic's algorithm) is made once per shape and
// data type and cached, so that steady-state launches cost one cublasLtMatmul call and can
// be captured in a CUDA graph. `candidates` > 1 asks the heuristic for several algorithms:
// the tuner times them (llamac tune --target cuda) and the choice travels as the launch's
// `algo` index.
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
/// How a GEMM's A, B and C are stored: f32, or bf16 (uint16_t, as cuda::cast writes it).
enum class DataType { F32, BF16 };

class GemmEngine {
public:
  enum class Op { NT, NN, TN };

  GemmEngine() = default;
  GemmEngine(const GemmEngine &) = delete;
  GemmEngine &operator=(const GemmEngine &) = delete;
  ~GemmEngine();

  /// Creates the cuBLASLt handle and a workspace; false (and `error`) when they fail.
  bool init(std::string *error);
  /// The products' precision of f32 GEMMs (plans made before a change are dropped).
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

  /// The same on bf16 matrices (see the file comment for what is computed).
  cublasStatus_t run(Op op, int64_t M, int64_t N, int64_t K, const uint16_t *A,
                     const uint16_t *B, uint16_t *C, bool accumulate, int algo,
                     cudaStream_t stream);
  cublasStatus_t nt(int64_t M, int64_t N, int64_t K, const uint16_t *A, const uint16_t *B,
                    uint16_t *C, bool accumulate, int algo, cudaStream_t stream) {
    return run(Op::NT, M, N, K, A, B, C, accumulate, algo, stream);
  }
  cublasStatus_t nn(int64_t M, int64_t N, int64_t K, const uint16_t *A, const uint16_t *B,
                    uint16_t *C, bool accumulate, int algo, cudaStream_t stream) {
    return run(Op::NN, M, N, K, A, B, C, accumulate, algo, stream);
  }
  cublasStatus_t tn(int64_t M, int64_t N, int64_t K, const uint16_t *A, const uint16_t *B,
                    uint16_t *C, bool accumulate, int algo, cudaStream_t stream) {
    return run(Op::TN, M, N, K, A, B, C, accumulate, algo, stream);
  }

  /// How many algorithms the heuristic offers for this shape on matrices of `type` (at most
  /// `limit`).
  int candidates(Op op, int64_t M, int64_t N, int64_t K, bool accumulate, int limit,
                 DataType type = DataType::F32);

private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    std::vector<cublasLtMatmulAlgo_t> algos;
    cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
  };
  /// (data type, op, M, N, K, accumulate, candidates asked for).
  using Key = std::tuple<int, int, int64_t, int64_t, int64_t, bool, int>;
  Plan &plan(DataType type, Op op, int64_t M, int64_t N, int64_t K, bool accumulate,
             int count);
  cublasStatus_t launch(DataType type, Op op, int64_t M, int64_t N, int64_t K, const void *A,
                        const void *B, void *C, bool accumulate, int algo, cudaStream_t stream);
  void clearPlans();

  cublasLtHandle_t handle_ = nullptr;
  void *workspace_ = nullptr;
  size_t workspaceBytes_ = 0;
  cublasComputeType_t compute_ = CUBLAS_COMPUTE_32F_FAST_16BF; ///< of f32 GEMMs
  bool overridden_ = false; ///< LLAMAC_CUDA_GEMM was set
  std::map<Key, Plan> plans_;
};

const char *statusName(cublasStatus_t status);

} // namespace llamac::cuda

#endif
