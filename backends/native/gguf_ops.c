/* onnxruntime custom ops that multiply by GGUF-quantized weights as they are stored.
 *
 *   slm.gguf::MatMulQ4_1(A float[..., K], B uint8[N/8, K/32, 128], scales float[N/8, K/32, 8],
 *                        mins float[N/8, K/32, 8]) -> float[..., N]
 *   slm.gguf::MatMulQ8_0(A float[..., K], B int8[N/8, K/32, 256], scales float[N/8, K/32, 8])
 *                        -> float[..., N]
 *
 * B holds the GGUF's blocks with 8 output columns interleaved (layout at the kernels below;
 * backends/gguf_blocks.py writes it). N is a multiple of 8; the graph pads and slices others.
 *
 * Why: a Q4_1 block is w = d*q + m with a float minimum m. onnxruntime's fast MatMulNBits
 * kernel only takes integer zero points, so re-quantizing Q4_1 to it shifts every block by up
 * to d/2 (greedy tokens then disagree with the float model ~30% of the time), and its float
 * zero-point path dequantizes the whole matrix on every call. Here the minimum costs one
 * multiply-add per block: sum_i x_i (d q_i + m) = d * sum_i x_i q_i + m * sum_i x_i.
 *
 * Activations are quantized per 32-block to int8 (as llama.cpp does, and MatMulNBits at
 * accuracy_level 4); a node with activation_levels=2 rounds the remainder once more. Q4_1 nibbles keep ggml's order: byte j of a block holds element j in
 * its low nibble and element j+16 in its high nibble.
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
#include <string.h>

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
  SLOT_KernelInfoGetAttribute_int64 = 86,
  SLOT_ReleaseStatus = 93,
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
typedef OrtStatus *(*KernelInfoGetAttributeInt64Fn)(const OrtKernelInfo *info, const char *name, int64_t *out);
typedef void (*ReleaseStatusFn)(OrtStatus *status);
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
enum { QK = 32, MAX_RANK = 8, GROUPS_PER_TASK = 2 };

/* Activations of one call, rounded per block to int8 steps. With a second level (q2 != NULL),
 * what the first rounding left over is rounded again: x = scale*q + scale2*q2 to ~1/32000 of
 * the block's largest value instead of ~1/250. */
typedef struct {
  const int8_t *q, *q2;
  const float *scale, *scale2;
  const float *sum; /* per block: the sum of the rounded values, for Q4_1's minimum */
  int64_t rows, blocks;
} QuantizedRows;

static float hsum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_hadd_ps(x, x);
  x = _mm_hadd_ps(x, x);
  return _mm_cvtss_f32(x);
}

/* Round 32 values (v) to int8 steps of d = max|v|/127, store them in q, leave the remainder
 * in v, and return d; *sum gets the rounded values' sum added. */
static float round_block(__m256 v[4], int8_t *q, float *sum) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  __m256 amax = _mm256_setzero_ps();
  for (int i = 0; i < 4; i++) amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_mask, v[i]));
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  const float d = _mm_cvtss_f32(m) / 127.0f;
  const __m256 inv = _mm256_set1_ps(d > 0.0f ? 1.0f / d : 0.0f), step = _mm256_set1_ps(d);
  __m256i i32[4];
  for (int i = 0; i < 4; i++) {
    const __m256 rounded = _mm256_round_ps(_mm256_mul_ps(v[i], inv), _MM_FROUND_TO_NEAREST_INT);
    i32[i] = _mm256_cvtps_epi32(rounded);
    v[i] = _mm256_fnmadd_ps(rounded, step, v[i]);
  }
  const __m256i total = _mm256_add_epi32(_mm256_add_epi32(i32[0], i32[1]), _mm256_add_epi32(i32[2], i32[3]));
  /* pack 32 int32 -> 32 int8 in order (packs work per 128-bit lane, hence the permute) */
  const __m256i p16a = _mm256_packs_epi32(i32[0], i32[1]), p16b = _mm256_packs_epi32(i32[2], i32[3]);
  const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256((__m256i *)q, p8);
  *sum += d * hsum(_mm256_cvtepi32_ps(total));
  return d;
}

/* The block sum for Q4_1's minimum is taken over the rounded values, as the dot product is:
 * then both terms see the same x and the rounding error scales with w = d*q + m (centred near
 * 0) rather than with q (0..15). Summing the unrounded x instead gave 94.6% greedy agreement
 * with the float model, against 98.4% (bench precision on its former 8 prompts x 64 tokens). */
static QuantizedRows quantize_rows(const float *a, int64_t rows, int64_t blocks, int8_t *q, int8_t *q2, float *scales) {
  const int64_t n = rows * blocks;
  float *scale = scales, *scale2 = scales + n, *sum = scales + 2 * n;
  for (int64_t i = 0; i < n; i++) {
    __m256 v[4];
    for (int j = 0; j < 4; j++) v[j] = _mm256_loadu_ps(a + i * QK + 8 * j);
    sum[i] = 0.0f;
    scale[i] = round_block(v, q + i * QK, &sum[i]);
    if (q2 != NULL) scale2[i] = round_block(v, q2 + i * QK, &sum[i]);
  }
  const QuantizedRows x = {q, q2, scale, q2 != NULL ? scale2 : NULL, sum, rows, blocks};
  return x;
}

/* Weights come in groups of 8 columns (output features), interleaved so that one 32-byte load
 * holds 4 consecutive weights of each of the 8 columns: for block b, step s and column j,
 *   Q4_1: bytes [(g*blocks + b)*128 + s*32 + j*4 .. +4] = ggml bytes 4s..4s+3 of column 8g+j
 *         (low nibbles: elements 4s..4s+3; high nibbles: elements 16+4s..16+4s+3), s < 4
 *   Q8_0: bytes [(g*blocks + b)*256 + s*32 + j*4 .. +4] = elements 4s..4s+3 of column 8g+j, s < 8
 * and scales/mins as [groups, blocks, 8]. Broadcasting 4 activation bytes against such a load
 * makes every lane one column's partial dot product, so a block of 8 columns ends in one
 * vector: no horizontal sums, one convert and one scale multiply per 8 columns. That halved
 * the time of a decode-step matmul against one column at a time (llama.cpp's repacked
 * "8x8" kernels do the same). */
static inline __m256i broadcast4(const int8_t *p) {
  int32_t v;
  memcpy(&v, p, sizeof v);
  return _mm256_set1_epi32(v);
}

typedef struct {
  const QuantizedRows *x;
  const void *weights;
  const float *scales, *mins; /* mins == NULL for Q8_0 */
  float *out;
  int64_t n;
} MatMulTask;

/* ROWS rows against one group of 8 columns, with LEVELS activation levels; both are constants
 * at each call, so the accumulators stay in registers. Products u4 x s8 summed 8 at a time stay
 * below 2^15. */
#define Q4_1_GROUP(ROWS, LEVELS)                                                                              \
  static void q4_1_group_##ROWS##_##LEVELS(const MatMulTask *t, int64_t g, int64_t r) {                          \
    const QuantizedRows *x = t->x;                                                                    \
    const int64_t nb = x->blocks;                                                                     \
    const uint8_t *w = (const uint8_t *)t->weights + g * nb * 128;                                    \
    const float *d = t->scales + g * nb * 8, *m = t->mins + g * nb * 8;                               \
    const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);                          \
    __m256 acc[ROWS];                                                                                 \
    for (int k = 0; k < ROWS; k++) acc[k] = _mm256_setzero_ps();                                      \
    for (int64_t b = 0; b < nb; b++) {                                                                \
      __m256i s1[ROWS], s2[ROWS];                                                                     \
      for (int k = 0; k < ROWS; k++) s1[k] = s2[k] = _mm256_setzero_si256();                          \
      for (int s = 0; s < 4; s++) {                                                                   \
        const __m256i v = _mm256_loadu_si256((const __m256i *)(w + b * 128 + s * 32));                \
        const __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low); \
        for (int k = 0; k < ROWS; k++) {                                                              \
          const int64_t at = ((r + k) * nb + b) * QK + 4 * s;                                         \
          s1[k] = _mm256_add_epi16(s1[k], _mm256_maddubs_epi16(lo, broadcast4(x->q + at)));           \
          s1[k] = _mm256_add_epi16(s1[k], _mm256_maddubs_epi16(hi, broadcast4(x->q + at + 16)));      \
          if (LEVELS == 2) {                                                                          \
            s2[k] = _mm256_add_epi16(s2[k], _mm256_maddubs_epi16(lo, broadcast4(x->q2 + at)));        \
            s2[k] = _mm256_add_epi16(s2[k], _mm256_maddubs_epi16(hi, broadcast4(x->q2 + at + 16)));   \
          }                                                                                           \
        }                                                                                             \
      }                                                                                               \
      const __m256 dv = _mm256_loadu_ps(d + b * 8), mv = _mm256_loadu_ps(m + b * 8);                  \
      for (int k = 0; k < ROWS; k++) {                                                                \
        const int64_t rb = (r + k) * nb + b;                                                          \
        __m256 dot = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(s1[k], ones)), _mm256_set1_ps(x->scale[rb])); \
        if (LEVELS == 2)                                                                              \
          dot = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(s2[k], ones)), _mm256_set1_ps(x->scale2[rb]), dot); \
        acc[k] = _mm256_fmadd_ps(dot, dv, acc[k]);                                                    \
        acc[k] = _mm256_fmadd_ps(mv, _mm256_set1_ps(x->sum[rb]), acc[k]);                             \
      }                                                                                               \
    }                                                                                                 \
    for (int k = 0; k < ROWS; k++) _mm256_storeu_ps(t->out + (r + k) * t->n + g * 8, acc[k]);         \
  }

/* Signed x signed: the weight's sign moves onto the activation, as maddubs wants u8 x s8. */
#define Q8_0_GROUP(ROWS, LEVELS)                                                                              \
  static void q8_0_group_##ROWS##_##LEVELS(const MatMulTask *t, int64_t g, int64_t r) {                          \
    const QuantizedRows *x = t->x;                                                                    \
    const int64_t nb = x->blocks;                                                                     \
    const int8_t *w = (const int8_t *)t->weights + g * nb * 256;                                      \
    const float *d = t->scales + g * nb * 8;                                                          \
    const __m256i ones = _mm256_set1_epi16(1);                                                        \
    __m256 acc[ROWS];                                                                                 \
    for (int k = 0; k < ROWS; k++) acc[k] = _mm256_setzero_ps();                                      \
    for (int64_t b = 0; b < nb; b++) {                                                                \
      __m256i s32[ROWS], t32[ROWS];                                                                   \
      for (int k = 0; k < ROWS; k++) s32[k] = t32[k] = _mm256_setzero_si256();                        \
      for (int s = 0; s < 8; s++) {                                                                   \
        const __m256i v = _mm256_loadu_si256((const __m256i *)(w + b * 256 + s * 32));                \
        const __m256i magnitude = _mm256_sign_epi8(v, v);                                             \
        for (int k = 0; k < ROWS; k++) {                                                              \
          const int64_t at = ((r + k) * nb + b) * QK + 4 * s;                                         \
          const __m256i xs = _mm256_sign_epi8(broadcast4(x->q + at), v);                              \
          s32[k] = _mm256_add_epi32(s32[k], _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, xs), ones)); \
          if (LEVELS == 2) {                                                                          \
            const __m256i xs2 = _mm256_sign_epi8(broadcast4(x->q2 + at), v);                          \
            t32[k] = _mm256_add_epi32(t32[k], _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, xs2), ones)); \
          }                                                                                           \
        }                                                                                             \
      }                                                                                               \
      const __m256 dv = _mm256_loadu_ps(d + b * 8);                                                   \
      for (int k = 0; k < ROWS; k++) {                                                                \
        const int64_t rb = (r + k) * nb + b;                                                          \
        __m256 dot = _mm256_mul_ps(_mm256_cvtepi32_ps(s32[k]), _mm256_set1_ps(x->scale[rb]));         \
        if (LEVELS == 2) dot = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t32[k]), _mm256_set1_ps(x->scale2[rb]), dot); \
        acc[k] = _mm256_fmadd_ps(dot, dv, acc[k]);                                                    \
      }                                                                                               \
    }                                                                                                 \
    for (int k = 0; k < ROWS; k++) _mm256_storeu_ps(t->out + (r + k) * t->n + g * 8, acc[k]);         \
  }

Q4_1_GROUP(1, 1)
Q4_1_GROUP(4, 1)
Q4_1_GROUP(1, 2)
Q4_1_GROUP(3, 2)
Q8_0_GROUP(1, 1)
Q8_0_GROUP(4, 1)
Q8_0_GROUP(1, 2)
Q8_0_GROUP(3, 2)

/* One task: GROUPS_PER_TASK groups of 8 columns, every row (ROWS at a time, sharing the
 * unpacked weights, which stay in L1 across rows). */
#define COLUMNS_TASK(NAME, ROWS, LEVELS)                                                           \
  static void NAME##_columns_##LEVELS(void *data, size_t task) {                                    \
    const MatMulTask *t = (const MatMulTask *)data;                                        \
    const int64_t groups = t->n / 8, g0 = (int64_t)task * GROUPS_PER_TASK;                 \
    const int64_t g1 = g0 + GROUPS_PER_TASK < groups ? g0 + GROUPS_PER_TASK : groups;       \
    for (int64_t g = g0; g < g1; g++) {                                                    \
      int64_t r = 0;                                                                       \
      for (; r + ROWS <= t->x->rows; r += ROWS) NAME##_group_##ROWS##_##LEVELS(t, g, r);               \
      for (; r < t->x->rows; r++) NAME##_group_1_##LEVELS(t, g, r);                                  \
    }                                                                                      \
  }

COLUMNS_TASK(q4_1, 4, 1)
COLUMNS_TASK(q4_1, 3, 2)
COLUMNS_TASK(q8_0, 4, 1)
COLUMNS_TASK(q8_0, 3, 2)

/* ---- the ops -------------------------------------------------------------------------- */
typedef struct {
  OrtCustomOp base;
  const char *name;
  int weight_type;
  size_t inputs;
  void (*columns[2])(void *, size_t); /* by activation levels: 1, 2 */
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

typedef struct {
  const GgufOp *op;
  int levels; /* the node's activation_levels: 1 or 2 */
} Kernel;

static OrtStatus *compute(void *kernel_state, OrtKernelContext *ctx) {
  const Kernel *kernel = (const Kernel *)kernel_state;
  const GgufOp *op = kernel->op;
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
  const int64_t group_bytes = op->weight_type == TYPE_UINT8 ? 8 * QK / 2 : 8 * QK;
  if (a_rank < 1 || b_rank != 3 || s_rank != 3)
    return fail("slm.gguf: A must be [..., K], B [N/8, K/32, bytes], scales [N/8, K/32, 8]");
  const int64_t k = a_dims[a_rank - 1], groups = b_dims[0], blocks = b_dims[1], n = 8 * groups;
  if (blocks * QK != k || b_dims[2] != group_bytes || s_dims[0] != groups || s_dims[1] != blocks || s_dims[2] != 8) {
    static __thread char msg[200];
    snprintf(msg, sizeof msg,
             "slm.gguf %s: A has K=%lld but B holds [%lld, %lld, %lld] column groups and scales [%lld, %lld, %lld]",
             op->name, (long long)k, (long long)b_dims[0], (long long)b_dims[1], (long long)b_dims[2],
             (long long)s_dims[0], (long long)s_dims[1], (long long)s_dims[2]);
    return fail(msg);
  }
  if (op->inputs == 4) {
    int64_t m_dims[MAX_RANK];
    size_t m_rank;
    int m_type;
    TRY(shape_of(m_value, m_dims, &m_rank, &m_type));
    if (m_rank != 3 || m_dims[0] != groups || m_dims[1] != blocks || m_dims[2] != 8)
      return fail("slm.gguf MatMulQ4_1: mins must match scales");
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

  const int levels = kernel->levels;
  int8_t *xq = (int8_t *)malloc((size_t)(rows * k * levels));
  float *xs = (float *)malloc(sizeof(float) * (size_t)(rows * blocks) * 3);
  if (xq == NULL || xs == NULL) {
    free(xq);
    free(xs);
    return fail("slm.gguf: out of memory for the quantized activations");
  }
  const QuantizedRows x = quantize_rows((const float *)a, rows, blocks, xq, levels == 2 ? xq + rows * k : NULL, xs);
  MatMulTask task = {&x, w, (const float *)scales, (const float *)mins, (float *)out, n};
  const size_t tasks = (size_t)((groups + GROUPS_PER_TASK - 1) / GROUPS_PER_TASK);
  OrtStatus *status = API(SLOT_KernelContext_ParallelFor, ParallelForFn)(ctx, op->columns[levels - 1], tasks, 0, &task);
  free(xq);
  free(xs);
  return status;
}

/* Attribute activation_levels (default 1): 2 rounds the activations twice, for the matmuls
 * whose rounding costs the most agreement with the float model (gguf_blocks.py says which). */
static OrtStatus *create_kernel(const OrtCustomOp *op, const OrtApi *api, const OrtKernelInfo *info, void **kernel) {
  (void)api;
  int64_t levels = 1;
  OrtStatus *absent = API(SLOT_KernelInfoGetAttribute_int64, KernelInfoGetAttributeInt64Fn)(info, "activation_levels", &levels);
  if (absent != NULL) {
    API(SLOT_ReleaseStatus, ReleaseStatusFn)(absent);
    levels = 1;
  }
  if (levels != 1 && levels != 2) return fail("slm.gguf: activation_levels must be 1 or 2");
  Kernel *state = (Kernel *)malloc(sizeof *state);
  if (state == NULL) return fail("slm.gguf: out of memory for a kernel");
  state->op = (const GgufOp *)op;
  state->levels = (int)levels;
  *kernel = state;
  return NULL;
}
static void destroy_kernel(void *kernel) { free(kernel); }
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

#define COMMA ,
#define GGUF_OP(op_name_, weight_type_, inputs_, columns_)                                                        \
  {                                                                                                                \
    {ORT_API_VERSION_USED, NULL, op_name, op_provider, op_input_type, op_input_count, op_output_type,            \
     op_output_count, NULL, destroy_kernel, op_required, op_required, op_memory, op_one, op_one, op_one, op_one, \
     create_kernel, compute, NULL, op_start_version, op_end_version},                                             \
        op_name_, weight_type_, inputs_, columns_                                                                  \
  }

static GgufOp q4_1_op = GGUF_OP("MatMulQ4_1", TYPE_UINT8, 4, {q4_1_columns_1 COMMA q4_1_columns_2});
static GgufOp q8_0_op = GGUF_OP("MatMulQ8_0", TYPE_INT8, 3, {q8_0_columns_1 COMMA q8_0_columns_2});

__attribute__((visibility("default"))) OrtStatus *RegisterCustomOps(OrtSessionOptions *options, const OrtApiBase *base) {
  g_api = base->GetApi(ORT_API_VERSION_USED);
  if (g_api == NULL) return NULL; /* too old an onnxruntime: it reports the op as unknown */
  OrtCustomOpDomain *domain = NULL;
  TRY(API(SLOT_CreateCustomOpDomain, CreateCustomOpDomainFn)("slm.gguf", &domain));
  TRY(API(SLOT_CustomOpDomain_Add, CustomOpDomainAddFn)(domain, &q4_1_op.base));
  TRY(API(SLOT_CustomOpDomain_Add, CustomOpDomainAddFn)(domain, &q8_0_op.base));
  return API(SLOT_AddCustomOpDomain, AddCustomOpDomainFn)(options, domain);
}
