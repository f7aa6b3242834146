/* onnxruntime custom ops that multiply by GGUF-quantized weights as they are stored.
 *
 *   slm.gguf::MatMulQ4_1(A float[..., K], B uint8[N, K/32, 16], scales float[N, K/32],
 *                        mins float[N, K/32]) -> float[..., N]
 *   slm.gguf::MatMulQ8_0(A float[..., K], B int8[N, K/32, 32], scales float[N, K/32])
 *                        -> float[..., N]
 *
 * Why: a Q4_1 block is w = d*q + m with a float minimum m. onnxruntime's fast MatMulNBits
 * kernel only takes integer zero points, so re-quantizing Q4_1 to it shifts every block by up
 * to d/2 (greedy tokens then disagree with the float model ~30% of the time), and its float
 * zero-point path dequantizes the whole matrix on every call. Here the minimum costs one
 * multiply-add per block: sum_i x_i (d q_i + m) = d * sum_i x_i q_i + m * sum_i x_i.
 *
 * Activations are quantized per 32-block to int8 (as llama.cpp does, and MatMulNBits at
 * accuracy_level 4). Q4_1 nibbles use ggml's order:
 * byte j holds element j in its low nibble and element j+16 in its high nibble.
 *
 * Needs AVX2 and FMA; the Python side checks the CPU before it picks a model that uses this.
 * Only the slice of onnxruntime's C ABI used here is declared below (the API table is
 * append-only, so these slots hold for every onnxruntime >= 1.17).
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- onnxruntime C ABI, the part these ops use ---------------------------------------- */
typedef struct OrtStatus OrtStatus;
typedef struct OrtApi OrtApi;
typedef struct OrtKernelInfo OrtKernelInfo;
typedef struct OrtKernelContext OrtKernelContext;
typedef struct OrtValue OrtValue;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtCustomOpDomain OrtCustomOpDomain;
typedef struct OrtShapeInferContext OrtShapeInferContext;

typedef struct OrtApiBase {
  const OrtApi *(*GetApi)(uint32_t version);
  const char *(*GetVersionString)(void);
} OrtApiBase;

enum { ORT_API_VERSION_USED = 17 }; /* KernelContext_ParallelFor arrived in 1.17 */
enum { ORT_INVALID_ARGUMENT = 2 };
enum { TYPE_FLOAT = 1, TYPE_UINT8 = 2, TYPE_INT8 = 3 };
enum { IO_REQUIRED = 0 };
enum { MEM_DEFAULT = 0 };

/* Positions in the OrtApi function table. */
enum {
  SLOT_CreateStatus = 0,
  SLOT_CreateCustomOpDomain = 26,
  SLOT_CustomOpDomain_Add = 27,
  SLOT_AddCustomOpDomain = 28,
  SLOT_GetTensorMutableData = 51,
  SLOT_GetTensorElementType = 60,
  SLOT_GetDimensionsCount = 61,
  SLOT_GetDimensions = 62,
  SLOT_GetTensorTypeAndShape = 65,
  SLOT_KernelContext_GetInput = 90,
  SLOT_KernelContext_GetOutput = 91,
  SLOT_ReleaseTensorTypeAndShapeInfo = 99,
  SLOT_KernelContext_ParallelFor = 274,
};

typedef struct OrtCustomOp {
  uint32_t version;
  void *(*CreateKernel)(const struct OrtCustomOp *op, const OrtApi *api, const OrtKernelInfo *info);
  const char *(*GetName)(const struct OrtCustomOp *op);
  const char *(*GetExecutionProviderType)(const struct OrtCustomOp *op);
  int (*GetInputType)(const struct OrtCustomOp *op, size_t index);
  size_t (*GetInputTypeCount)(const struct OrtCustomOp *op);
  int (*GetOutputType)(const struct OrtCustomOp *op, size_t index);
  size_t (*GetOutputTypeCount)(const struct OrtCustomOp *op);
  void (*KernelCompute)(void *op_kernel, OrtKernelContext *context);
  void (*KernelDestroy)(void *op_kernel);
  int (*GetInputCharacteristic)(const struct OrtCustomOp *op, size_t index);
  int (*GetOutputCharacteristic)(const struct OrtCustomOp *op, size_t index);
  int (*GetInputMemoryType)(const struct OrtCustomOp *op, size_t index);
  int (*GetVariadicInputMinArity)(const struct OrtCustomOp *op);
  int (*GetVariadicInputHomogeneity)(const struct OrtCustomOp *op);
  int (*GetVariadicOutputMinArity)(const struct OrtCustomOp *op);
  int (*GetVariadicOutputHomogeneity)(const struct OrtCustomOp *op);
  OrtStatus *(*CreateKernelV2)(const struct OrtCustomOp *op, const OrtApi *api,
                               const OrtKernelInfo *info, void **kernel);
  OrtStatus *(*KernelComputeV2)(void *op_kernel, OrtKernelContext *context);
  OrtStatus *(*InferOutputShapeFn)(const struct OrtCustomOp *op, OrtShapeInferContext *ctx);
  int (*GetStartVersion)(const struct OrtCustomOp *op);
  int (*GetEndVersion)(const struct OrtCustomOp *op);
} OrtCustomOp;

typedef OrtStatus *(*CreateStatusFn)(int code, const char *msg);
typedef OrtStatus *(*CreateCustomOpDomainFn)(const char *domain, OrtCustomOpDomain **out);
typedef OrtStatus *(*CustomOpDomainAddFn)(OrtCustomOpDomain *domain, const OrtCustomOp *op);
typedef OrtStatus *(*AddCustomOpDomainFn)(OrtSessionOptions *options, OrtCustomOpDomain *domain);
typedef OrtStatus *(*GetTensorMutableDataFn)(OrtValue *value, void **out);
typedef OrtStatus *(*GetTensorElementTypeFn)(const OrtTensorTypeAndShapeInfo *info, int *out);
typedef OrtStatus *(*GetDimensionsCountFn)(const OrtTensorTypeAndShapeInfo *info, size_t *out);
typedef OrtStatus *(*GetDimensionsFn)(const OrtTensorTypeAndShapeInfo *info, int64_t *dims, size_t n);
typedef OrtStatus *(*GetTensorTypeAndShapeFn)(const OrtValue *value, OrtTensorTypeAndShapeInfo **out);
typedef OrtStatus *(*KernelContextGetInputFn)(const OrtKernelContext *ctx, size_t index, const OrtValue **out);
typedef OrtStatus *(*KernelContextGetOutputFn)(OrtKernelContext *ctx, size_t index, const int64_t *dims,
                                               size_t dim_count, OrtValue **out);
typedef void (*ReleaseTensorTypeAndShapeInfoFn)(OrtTensorTypeAndShapeInfo *info);
typedef OrtStatus *(*ParallelForFn)(const OrtKernelContext *ctx, void (*fn)(void *, size_t), size_t total,
                                    size_t num_batch, void *user_data);

static const OrtApi *g_api;
#define API(slot, type) ((type)(((void *const *)g_api)[slot]))
#define TRY(expr)                    \
  do {                               \
    OrtStatus *status_ = (expr);     \
    if (status_ != NULL) return status_; \
  } while (0)

static OrtStatus *fail(const char *msg) { return API(SLOT_CreateStatus, CreateStatusFn)(ORT_INVALID_ARGUMENT, msg); }

/* ---- kernels -------------------------------------------------------------------------- */
enum { QK = 32, MAX_RANK = 8, ROWS_PER_PASS = 4, COLS_PER_TASK = 16 };

/* Activations of one call, quantized per block: int8 values, their scale, and float sums. */
typedef struct {
  const int8_t *q;
  const float *scale;
  const float *sum;
  int64_t rows, blocks;
} QuantizedRows;

static float hsum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_hadd_ps(x, x);
  x = _mm_hadd_ps(x, x);
  return _mm_cvtss_f32(x);
}

static void quantize_rows(const float *a, int64_t rows, int64_t blocks, int8_t *q, float *scale, float *sum) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  for (int64_t r = 0; r < rows; r++) {
    for (int64_t b = 0; b < blocks; b++) {
      const float *x = a + (r * blocks + b) * QK;
      __m256 v[4], amax = _mm256_setzero_ps();
      for (int i = 0; i < 4; i++) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_mask, v[i]));
      }
      __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
      m = _mm_max_ps(m, _mm_movehl_ps(m, m));
      m = _mm_max_ss(m, _mm_movehdup_ps(m));
      const float max_abs = _mm_cvtss_f32(m);
      const float d = max_abs / 127.0f;
      const __m256 inv = _mm256_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
      __m256i i32[4];
      for (int i = 0; i < 4; i++) i32[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], inv), _MM_FROUND_TO_NEAREST_INT));
      /* The block sum for the minimum is taken over the rounded values, as the dot product is:
       * then both terms see the same x and the rounding error scales with w = d*q + m (centred
       * near 0) rather than with q (0..15). Summing the unrounded x instead gave 94.6% greedy
       * agreement with the float model, against 98.4% (bench precision). */
      const __m256i total = _mm256_add_epi32(_mm256_add_epi32(i32[0], i32[1]), _mm256_add_epi32(i32[2], i32[3]));
      /* pack 32 int32 -> 32 int8 in order (packs work per 128-bit lane, hence the permute) */
      __m256i p16a = _mm256_packs_epi32(i32[0], i32[1]);
      __m256i p16b = _mm256_packs_epi32(i32[2], i32[3]);
      __m256i p8 = _mm256_packs_epi16(p16a, p16b);
      p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256((__m256i *)(q + (r * blocks + b) * QK), p8);
      scale[r * blocks + b] = d;
      sum[r * blocks + b] = d * hsum(_mm256_cvtepi32_ps(total));
    }
  }
}

static inline __m256i unpack_q4(const uint8_t *packed) {
  const __m128i p = _mm_loadu_si128((const __m128i *)packed);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(p, 4), p), _mm256_set1_epi8(0x0F));
}

/* unsigned weights (0..15) times signed activations, 32 products summed into 8 int32 lanes */
static inline __m256 dot_u8s8(__m256i w, const int8_t *a) {
  const __m256i x = _mm256_loadu_si256((const __m256i *)a);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)));
}

/* signed weights times signed activations: move the sign onto the activations */
static inline __m256 dot_s8s8(const int8_t *w8, const int8_t *a) {
  const __m256i w = _mm256_loadu_si256((const __m256i *)w8);
  const __m256i x = _mm256_loadu_si256((const __m256i *)a);
  const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

static float min_term(const float *mins, const float *sums, int64_t blocks) {
  __m256 acc = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 8 <= blocks; b += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(mins + b), _mm256_loadu_ps(sums + b), acc);
  float total = hsum(acc);
  for (; b < blocks; b++) total += mins[b] * sums[b];
  return total;
}

typedef struct {
  const QuantizedRows *x;
  const void *weights; /* uint8 packed nibbles (Q4_1) or int8 values (Q8_0) */
  const float *scales, *mins; /* mins == NULL for Q8_0 */
  float *out;
  int64_t n;
} MatMulTask;

static void q4_1_columns(void *data, size_t task) {
  const MatMulTask *t = (const MatMulTask *)data;
  const QuantizedRows *x = t->x;
  const int64_t nb = x->blocks;
  const int64_t c0 = (int64_t)task * COLS_PER_TASK;
  const int64_t c1 = c0 + COLS_PER_TASK < t->n ? c0 + COLS_PER_TASK : t->n;
  for (int64_t c = c0; c < c1; c++) {
    const uint8_t *w = (const uint8_t *)t->weights + c * nb * (QK / 2);
    const float *d = t->scales + c * nb, *m = t->mins + c * nb;
    int64_t r = 0;
    for (; r + ROWS_PER_PASS <= x->rows; r += ROWS_PER_PASS) {
      __m256 acc[ROWS_PER_PASS];
      for (int k = 0; k < ROWS_PER_PASS; k++) acc[k] = _mm256_setzero_ps();
      for (int64_t b = 0; b < nb; b++) {
        const __m256i q = unpack_q4(w + b * (QK / 2));
        for (int k = 0; k < ROWS_PER_PASS; k++) {
          const int64_t row_block = (r + k) * nb + b;
          acc[k] = _mm256_fmadd_ps(dot_u8s8(q, x->q + row_block * QK), _mm256_set1_ps(d[b] * x->scale[row_block]), acc[k]);
        }
      }
      for (int k = 0; k < ROWS_PER_PASS; k++)
        t->out[(r + k) * t->n + c] = hsum(acc[k]) + min_term(m, x->sum + (r + k) * nb, nb);
    }
    for (; r < x->rows; r++) {
      const int8_t *xq = x->q + r * nb * QK;
      const float *xs = x->scale + r * nb;
      __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
      int64_t b = 0;
      for (; b + 2 <= nb; b += 2) { /* two chains hide the FMA latency */
        acc0 = _mm256_fmadd_ps(dot_u8s8(unpack_q4(w + b * 16), xq + b * QK), _mm256_set1_ps(d[b] * xs[b]), acc0);
        acc1 = _mm256_fmadd_ps(dot_u8s8(unpack_q4(w + (b + 1) * 16), xq + (b + 1) * QK),
                               _mm256_set1_ps(d[b + 1] * xs[b + 1]), acc1);
      }
      if (b < nb) acc0 = _mm256_fmadd_ps(dot_u8s8(unpack_q4(w + b * 16), xq + b * QK), _mm256_set1_ps(d[b] * xs[b]), acc0);
      t->out[r * t->n + c] = hsum(_mm256_add_ps(acc0, acc1)) + min_term(m, x->sum + r * nb, nb);
    }
  }
}

static void q8_0_columns(void *data, size_t task) {
  const MatMulTask *t = (const MatMulTask *)data;
  const QuantizedRows *x = t->x;
  const int64_t nb = x->blocks;
  const int64_t c0 = (int64_t)task * COLS_PER_TASK;
  const int64_t c1 = c0 + COLS_PER_TASK < t->n ? c0 + COLS_PER_TASK : t->n;
  for (int64_t c = c0; c < c1; c++) {
    const int8_t *w = (const int8_t *)t->weights + c * nb * QK;
    const float *d = t->scales + c * nb;
    int64_t r = 0;
    for (; r + ROWS_PER_PASS <= x->rows; r += ROWS_PER_PASS) {
      __m256 acc[ROWS_PER_PASS];
      for (int k = 0; k < ROWS_PER_PASS; k++) acc[k] = _mm256_setzero_ps();
      for (int64_t b = 0; b < nb; b++)
        for (int k = 0; k < ROWS_PER_PASS; k++) {
          const int64_t row_block = (r + k) * nb + b;
          acc[k] = _mm256_fmadd_ps(dot_s8s8(w + b * QK, x->q + row_block * QK), _mm256_set1_ps(d[b] * x->scale[row_block]), acc[k]);
        }
      for (int k = 0; k < ROWS_PER_PASS; k++) t->out[(r + k) * t->n + c] = hsum(acc[k]);
    }
    for (; r < x->rows; r++) {
      const int8_t *xq = x->q + r * nb * QK;
      const float *xs = x->scale + r * nb;
      __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
      int64_t b = 0;
      for (; b + 2 <= nb; b += 2) {
        acc0 = _mm256_fmadd_ps(dot_s8s8(w + b * QK, xq + b * QK), _mm256_set1_ps(d[b] * xs[b]), acc0);
        acc1 = _mm256_fmadd_ps(dot_s8s8(w + (b + 1) * QK, xq + (b + 1) * QK), _mm256_set1_ps(d[b + 1] * xs[b + 1]), acc1);
      }
      if (b < nb) acc0 = _mm256_fmadd_ps(dot_s8s8(w + b * QK, xq + b * QK), _mm256_set1_ps(d[b] * xs[b]), acc0);
      t->out[r * t->n + c] = hsum(_mm256_add_ps(acc0, acc1));
    }
  }
}

/* ---- the ops -------------------------------------------------------------------------- */
typedef struct {
  OrtCustomOp base;
  const char *name;
  int weight_type;
  size_t inputs;
  void (*columns)(void *, size_t);
} GgufOp;

static OrtStatus *shape_of(const OrtValue *value, int64_t *dims, size_t *rank, int *type) {
  OrtTensorTypeAndShapeInfo *info = NULL;
  TRY(API(SLOT_GetTensorTypeAndShape, GetTensorTypeAndShapeFn)(value, &info));
  OrtStatus *status = API(SLOT_GetDimensionsCount, GetDimensionsCountFn)(info, rank);
  if (status == NULL && *rank > MAX_RANK) status = fail("slm.gguf: tensor rank above 8");
  if (status == NULL) status = API(SLOT_GetDimensions, GetDimensionsFn)(info, dims, *rank);
  if (status == NULL) status = API(SLOT_GetTensorElementType, GetTensorElementTypeFn)(info, type);
  API(SLOT_ReleaseTensorTypeAndShapeInfo, ReleaseTensorTypeAndShapeInfoFn)(info);
  return status;
}

static OrtStatus *input(OrtKernelContext *ctx, size_t index, const OrtValue **value, void **data) {
  TRY(API(SLOT_KernelContext_GetInput, KernelContextGetInputFn)(ctx, index, value));
  return API(SLOT_GetTensorMutableData, GetTensorMutableDataFn)((OrtValue *)*value, data);
}

static OrtStatus *compute(void *kernel, OrtKernelContext *ctx) {
  const GgufOp *op = (const GgufOp *)kernel;
  const OrtValue *a_value, *b_value, *s_value, *m_value = NULL;
  void *a, *w, *scales, *mins = NULL;
  TRY(input(ctx, 0, &a_value, &a));
  TRY(input(ctx, 1, &b_value, &w));
  TRY(input(ctx, 2, &s_value, &scales));
  if (op->inputs == 4) TRY(input(ctx, 3, &m_value, &mins));

  int64_t a_dims[MAX_RANK], b_dims[MAX_RANK], s_dims[MAX_RANK];
  size_t a_rank, b_rank, s_rank;
  int a_type, b_type, s_type;
  TRY(shape_of(a_value, a_dims, &a_rank, &a_type));
  TRY(shape_of(b_value, b_dims, &b_rank, &b_type));
  TRY(shape_of(s_value, s_dims, &s_rank, &s_type));
  const int64_t block_bytes = op->weight_type == TYPE_UINT8 ? QK / 2 : QK;
  if (a_rank < 1 || b_rank != 3 || s_rank != 2) return fail("slm.gguf: A must be [..., K], B [N, K/32, bytes], scales [N, K/32]");
  const int64_t k = a_dims[a_rank - 1], n = b_dims[0], blocks = b_dims[1];
  if (blocks * QK != k || b_dims[2] != block_bytes || s_dims[0] != n || s_dims[1] != blocks) {
    static __thread char msg[200];
    snprintf(msg, sizeof msg, "slm.gguf %s: A has K=%lld but B holds [%lld, %lld, %lld] blocks and scales [%lld, %lld]",
             op->name, (long long)k, (long long)b_dims[0], (long long)b_dims[1], (long long)b_dims[2],
             (long long)s_dims[0], (long long)s_dims[1]);
    return fail(msg);
  }
  if (op->inputs == 4) {
    int64_t m_dims[MAX_RANK];
    size_t m_rank;
    int m_type;
    TRY(shape_of(m_value, m_dims, &m_rank, &m_type));
    if (m_rank != 2 || m_dims[0] != n || m_dims[1] != blocks) return fail("slm.gguf MatMulQ4_1: mins must match scales");
  }

  int64_t rows = 1;
  for (size_t i = 0; i + 1 < a_rank; i++) rows *= a_dims[i];
  int64_t out_dims[MAX_RANK];
  for (size_t i = 0; i + 1 < a_rank; i++) out_dims[i] = a_dims[i];
  out_dims[a_rank - 1] = n;
  OrtValue *out_value;
  void *out;
  TRY(API(SLOT_KernelContext_GetOutput, KernelContextGetOutputFn)(ctx, 0, out_dims, a_rank, &out_value));
  TRY(API(SLOT_GetTensorMutableData, GetTensorMutableDataFn)(out_value, &out));
  if (rows == 0 || n == 0) return NULL;

  int8_t *xq = (int8_t *)malloc((size_t)(rows * k));
  float *xs = (float *)malloc(sizeof(float) * (size_t)(rows * blocks) * 2);
  if (xq == NULL || xs == NULL) {
    free(xq);
    free(xs);
    return fail("slm.gguf: out of memory for the quantized activations");
  }
  quantize_rows((const float *)a, rows, blocks, xq, xs, xs + rows * blocks);
  const QuantizedRows x = {xq, xs, xs + rows * blocks, rows, blocks};
  MatMulTask task = {&x, w, (const float *)scales, (const float *)mins, (float *)out, n};
  const size_t tasks = (size_t)((n + COLS_PER_TASK - 1) / COLS_PER_TASK);
  OrtStatus *status = API(SLOT_KernelContext_ParallelFor, ParallelForFn)(ctx, op->columns, tasks, 0, &task);
  free(xq);
  free(xs);
  return status;
}

static OrtStatus *create_kernel(const OrtCustomOp *op, const OrtApi *api, const OrtKernelInfo *info, void **kernel) {
  (void)api;
  (void)info;
  *kernel = (void *)op; /* stateless: the op description is the kernel */
  return NULL;
}
static void destroy_kernel(void *kernel) { (void)kernel; }
static const char *op_name(const OrtCustomOp *op) { return ((const GgufOp *)op)->name; }
static const char *op_provider(const OrtCustomOp *op) { (void)op; return "CPUExecutionProvider"; }
static int op_input_type(const OrtCustomOp *op, size_t index) {
  return index == 1 ? ((const GgufOp *)op)->weight_type : TYPE_FLOAT;
}
static size_t op_input_count(const OrtCustomOp *op) { return ((const GgufOp *)op)->inputs; }
static int op_output_type(const OrtCustomOp *op, size_t index) { (void)op; (void)index; return TYPE_FLOAT; }
static size_t op_output_count(const OrtCustomOp *op) { (void)op; return 1; }
static int op_required(const OrtCustomOp *op, size_t index) { (void)op; (void)index; return IO_REQUIRED; }
static int op_memory(const OrtCustomOp *op, size_t index) { (void)op; (void)index; return MEM_DEFAULT; }
static int op_one(const OrtCustomOp *op) { (void)op; return 1; }
static int op_start_version(const OrtCustomOp *op) { (void)op; return 1; }
static int op_end_version(const OrtCustomOp *op) { (void)op; return 2147483647; }

#define GGUF_OP(op_name_, weight_type_, inputs_, columns_)                                                        \
  {                                                                                                                \
    {ORT_API_VERSION_USED, NULL, op_name, op_provider, op_input_type, op_input_count, op_output_type,            \
     op_output_count, NULL, destroy_kernel, op_required, op_required, op_memory, op_one, op_one, op_one, op_one, \
     create_kernel, compute, NULL, op_start_version, op_end_version},                                             \
        op_name_, weight_type_, inputs_, columns_                                                                  \
  }

static GgufOp q4_1_op = GGUF_OP("MatMulQ4_1", TYPE_UINT8, 4, q4_1_columns);
static GgufOp q8_0_op = GGUF_OP("MatMulQ8_0", TYPE_INT8, 3, q8_0_columns);

__attribute__((visibility("default"))) OrtStatus *RegisterCustomOps(OrtSessionOptions *options, const OrtApiBase *base) {
  g_api = base->GetApi(ORT_API_VERSION_USED);
  if (g_api == NULL) return NULL; /* too old an onnxruntime: it reports the op as unknown */
  OrtCustomOpDomain *domain = NULL;
  TRY(API(SLOT_CreateCustomOpDomain, CreateCustomOpDomainFn)("slm.gguf", &domain));
  TRY(API(SLOT_CustomOpDomain_Add, CustomOpDomainAddFn)(domain, &q4_1_op.base));
  TRY(API(SLOT_CustomOpDomain_Add, CustomOpDomainAddFn)(domain, &q8_0_op.base));
  return API(SLOT_AddCustomOpDomain, AddCustomOpDomainFn)(options, domain);
}
