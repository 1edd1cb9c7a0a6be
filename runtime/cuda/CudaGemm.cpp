//===- CudaGemm.cpp - row-major GEMMs through cuBLASLt -------------------------------===//
//
// Row-major X[r,c] is column-major X^T[c,r] with leading dimension c. So a row-major
// C[M,N] is computed as the column-major C^T[N,M] (ld N), with m = N, n = M, k = K:
//   nt  C = A B^T,  A[M,K], B[N,K]:  C^T = B A^T.  B is col-major [K,N] (ld K): op T;
//                                     A is col-major [K,M] (ld K): op N.
//   nn  C = A B,    A[M,K], B[K,N]:  C^T = B^T A^T. B is col-major [N,K] (ld N): op N;
//                                     A is col-major [K,M] (ld K): op N.
//   tn  C = A^T B,  A[K,M], B[K,N]:  C^T = B^T A.  B is col-major [N,K] (ld N): op N;
//                                     A is col-major [M,K] (ld M): op T.
// The first cuBLASLt operand is always B, the second A.
//
// f32 and bf16 matrices differ only in the layouts' data type and the compute type: the
// program's precision for f32, CUBLAS_COMPUTE_32F for bf16 (bf16 tensor cores with f32
// sums; the "fast" compute types would only lower f32 inputs). alpha and beta are f32
// (CUDA_R_32F scale type) either way.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/cuda/CudaGemm.h"

#include <cstdlib>
#include <cstring>

namespace llamac::cuda {

namespace {
constexpr size_t kWorkspaceBytes = size_t(32) << 20; // cuBLASLt's recommendation for sm_90
} // namespace

const char *statusName(cublasStatus_t status) {
  switch (status) {
  case CUBLAS_STATUS_SUCCESS:
    return "success";
  case CUBLAS_STATUS_NOT_INITIALIZED:
    return "not initialised";
  case CUBLAS_STATUS_ALLOC_FAILED:
    return "allocation failed";
  case CUBLAS_STATUS_INVALID_VALUE:
    return "invalid value";
  case CUBLAS_STATUS_ARCH_MISMATCH:
    return "architecture mismatch";
  case CUBLAS_STATUS_EXECUTION_FAILED:
    return "execution failed";
  case CUBLAS_STATUS_INTERNAL_ERROR:
    return "internal error";
  case CUBLAS_STATUS_NOT_SUPPORTED:
    return "not supported (no algorithm for this shape)";
  default:
    return "cuBLAS error";
  }
}

void GemmEngine::clearPlans() {
  for (auto &[key, p] : plans_) {
    if (p.desc)
      cublasLtMatmulDescDestroy(p.desc);
    for (cublasLtMatrixLayout_t l : {p.a, p.b, p.c})
      if (l)
        cublasLtMatrixLayoutDestroy(l);
  }
  plans_.clear();
}

GemmEngine::~GemmEngine() {
  clearPlans();
  if (workspace_)
    cudaFree(workspace_);
  if (handle_)
    cublasLtDestroy(handle_);
}

bool GemmEngine::init(std::string *error) {
  if (cublasStatus_t s = cublasLtCreate(&handle_); s != CUBLAS_STATUS_SUCCESS) {
    *error = std::string("cuBLASLt: ") + statusName(s);
    return false;
  }
  if (cudaError_t e = cudaMalloc(&workspace_, kWorkspaceBytes); e != cudaSuccess) {
    *error = std::string("cuBLASLt workspace: ") + cudaGetErrorString(e);
    return false;
  }
  workspaceBytes_ = kWorkspaceBytes;
  if (const char *mode = std::getenv("LLAMAC_CUDA_GEMM")) {
    if (std::strcmp(mode, "f32") == 0)
      setPrecision(Precision::F32);
    else if (std::strcmp(mode, "tf32") == 0)
      setPrecision(Precision::TF32);
    else if (std::strcmp(mode, "bf16") == 0)
      setPrecision(Precision::BF16);
    else {
      *error = std::string("LLAMAC_CUDA_GEMM must be f32, tf32 or bf16, not '") + mode + "'";
      return false;
    }
    overridden_ = true;
  }
  return true;
}

void GemmEngine::setPrecision(Precision precision) {
  if (overridden_)
    return;
  cublasComputeType_t compute = precision == Precision::F32    ? CUBLAS_COMPUTE_32F
                                : precision == Precision::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                               : CUBLAS_COMPUTE_32F_FAST_16BF;
  if (compute == compute_)
    return;
  compute_ = compute;
  clearPlans();
}

GemmEngine::Plan &GemmEngine::plan(DataType type, Op op, int64_t M, int64_t N, int64_t K,
                                   bool accumulate, int count) {
  Key key{int(type), int(op), M, N, K, accumulate, count};
  auto it = plans_.find(key);
  if (it != plans_.end())
    return it->second;
  Plan &p = plans_[key];
  auto fail = [&](cublasStatus_t s) -> Plan & {
    p.status = s;
    return p;
  };
  // Operand 1 is B, operand 2 is A (see the file comment).
  cublasOperation_t opB = op == Op::NT ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opA = op == Op::TN ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasComputeType_t compute = type == DataType::BF16 ? CUBLAS_COMPUTE_32F : compute_;
  cudaDataType_t data = type == DataType::BF16 ? CUDA_R_16BF : CUDA_R_32F;
  if (cublasStatus_t s = cublasLtMatmulDescCreate(&p.desc, compute, CUDA_R_32F);
      s != CUBLAS_STATUS_SUCCESS)
    return fail(s);
  cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opB, sizeof opB);
  cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opA, sizeof opA);
  // Stored (column-major) shapes: rows x cols, ld = rows.
  uint64_t bRows = op == Op::NT ? uint64_t(K) : uint64_t(N);
  uint64_t bCols = op == Op::NT ? uint64_t(N) : uint64_t(K);
  uint64_t aRows = op == Op::TN ? uint64_t(M) : uint64_t(K);
  uint64_t aCols = op == Op::TN ? uint64_t(K) : uint64_t(M);
  if (cublasStatus_t s = cublasLtMatrixLayoutCreate(&p.b, data, bRows, bCols, int64_t(bRows));
      s != CUBLAS_STATUS_SUCCESS)
    return fail(s);
  if (cublasStatus_t s = cublasLtMatrixLayoutCreate(&p.a, data, aRows, aCols, int64_t(aRows));
      s != CUBLAS_STATUS_SUCCESS)
    return fail(s);
  if (cublasStatus_t s = cublasLtMatrixLayoutCreate(&p.c, data, uint64_t(N), uint64_t(M), N);
      s != CUBLAS_STATUS_SUCCESS)
    return fail(s);
  cublasLtMatmulPreference_t pref = nullptr;
  cublasLtMatmulPreferenceCreate(&pref);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                       &workspaceBytes_, sizeof workspaceBytes_);
  std::vector<cublasLtMatmulHeuristicResult_t> results(size_t(count > 0 ? count : 1));
  int found = 0;
  cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.b, p.a, p.c, p.c, pref,
                                                    int(results.size()), results.data(), &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS)
    return fail(s);
  if (found == 0)
    return fail(CUBLAS_STATUS_NOT_SUPPORTED);
  for (int i = 0; i < found; ++i)
    p.algos.push_back(results[size_t(i)].algo);
  return p;
}

cublasStatus_t GemmEngine::run(Op op, int64_t M, int64_t N, int64_t K, const float *A,
                               const float *B, float *C, bool accumulate, int algo,
                               cudaStream_t stream) {
  return launch(DataType::F32, op, M, N, K, A, B, C, accumulate, algo, stream);
}

cublasStatus_t GemmEngine::run(Op op, int64_t M, int64_t N, int64_t K, const uint16_t *A,
                               const uint16_t *B, uint16_t *C, bool accumulate, int algo,
                               cudaStream_t stream) {
  return launch(DataType::BF16, op, M, N, K, A, B, C, accumulate, algo, stream);
}

cublasStatus_t GemmEngine::launch(DataType type, Op op, int64_t M, int64_t N, int64_t K,
                                  const void *A, const void *B, void *C, bool accumulate,
                                  int algo, cudaStream_t stream) {
  if (!handle_)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  // Plans for the first choice are shared by every launch of a shape; a tuned index asks
  // the heuristic for that many candidates once.
  Plan &p = plan(type, op, M, N, K, accumulate, algo > 0 ? algo + 1 : 1);
  if (p.status != CUBLAS_STATUS_SUCCESS)
    return p.status;
  const cublasLtMatmulAlgo_t &chosen = p.algos[size_t(algo) < p.algos.size() ? size_t(algo) : 0];
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  return cublasLtMatmul(handle_, p.desc, &alpha, B, p.b, A, p.a, &beta, C, p.c, C, p.c, &chosen,
                        workspace_, workspaceBytes_, stream);
}

int GemmEngine::candidates(Op op, int64_t M, int64_t N, int64_t K, bool accumulate, int limit,
                           DataType type) {
  if (!handle_)
    return 0;
  Plan &p = plan(type, op, M, N, K, accumulate, limit);
  return p.status == CUBLAS_STATUS_SUCCESS ? int(p.algos.size()) : 0;
}

} // namespace llamac::cuda
