/* onnxruntime custom ops that compute with GGUF-quantized weights as they are stored.
 *
 *   slm.gguf::MatMulQ4_1(A float[..., K], B uint8[N/8, K/32, 128], scales float[N/8, K/32, 8],
 *                        mins float[N/8, K/32, 8]) -> float[..., N]
 *   slm.gguf::MatMulQ8_0(A float[..., K], B int8[N/8, K/32, 256], scales float[N/8, K/32, 8])
 *                        -> float[..., N]
 *   slm.gguf::GatherQ8_0(B int8[N/8, K/32, 256], scales float[N/8, K/32, 8], ids int64[...])
 *                        -> float[..., K]      rows IDS of B, dequantized (the tied embedding)
 *   slm.gguf::CausalAttention(qkv float[B, S, (N + 2 N_kv) H], past_key float[B, N_kv, L, H],
 *                        past_value (same), seqlens_k int32[B], cos_cache float[P, R/2], sin_cache)
 *                        -> output float[B, S, N H], present_key, present_value
 *        GroupQueryAttention's inputs and outputs for packed QKV with rotary embeddings
 *        (gguf_attention.h); attributes num_heads, kv_num_heads, scale (0: 1/sqrt(H)). Present
 *        is past's buffer when the caller binds them to the same memory (onnxruntime-genai's
 *        past_present_share_buffer, and engines/onnx_batch.py); else past is copied into it.
 *   slm.gguf::CausalAttentionF16: the same with a float16 cache (past and present).
 *
 * B holds the GGUF's blocks with 8 output columns interleaved (gguf_kernels.h documents the
 * layout; models/gguf_blocks.py writes it). N is a multiple of 8; the graph pads and slices.
 * Attributes: layout_version (required: the layout the graph was written for, checked against
 * SLM_GGUF_LAYOUT_VERSION when the kernel is created) and, on the matmuls, activation_levels and
 * last_position_only (the lm_head's: for A [B, S, K], only A[:, S-1] is multiplied; the other
 * positions of the output are zeros).
 * The onnxruntime ABI used is in ort_abi.h, checked at registration below.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_attention.h"
#include "gguf_kernels.h"
#include "ort_abi.h"

/* Slot numbers and function types, from the one table in ort_abi.h. */
#define SLOT_ENUM(name, slot, type) SLOT_##name = slot,
enum { ORT_SLOTS(SLOT_ENUM) };
#define SLOT_TYPE(name, slot, type) typedef __typeof__(type) name##Fn;
ORT_SLOTS(SLOT_TYPE)
#define SLOT_ENTRY(name, slot, type) {#name, slot},
static const struct {
  const char *name;
  int slot;
} SLOTS[] = {ORT_SLOTS(SLOT_ENTRY)};

static const OrtApi *g_api;
#define API(name) ((name##Fn)(((void *const *)g_api)[SLOT_##name]))
#define TRY(expr)                        \
  do {                                   \
    OrtStatus *status_ = (expr);         \
    if (status_ != NULL) return status_; \
  } while (0)

enum { MAX_RANK = 8 };
#define REBUILD "rebuild with `slm-playground model prepare --force`"

static OrtStatus *fail(const char *msg) { return API(CreateStatus)(ORT_INVALID_ARGUMENT, msg); }

typedef struct {
  OrtCustomOp base;
  const char *name;
  int format;   /* FORMAT_Q4_1 or FORMAT_Q8_0 */
  int gather;   /* GatherQ8_0 rather than a matmul */
  size_t inputs;
  int input_types[4];
} GgufOp;

static OrtStatus *shape_of(const OrtValue *value, int64_t *dims, size_t *rank, int *type) {
  OrtTensorTypeAndShapeInfo *info = NULL;
  TRY(API(GetTensorTypeAndShape)(value, &info));
  OrtStatus *status = API(GetDimensionsCount)(info, rank);
  if (status == NULL && *rank > MAX_RANK) status = fail("slm.gguf: tensor rank above 8");
  if (status == NULL) status = API(GetDimensions)(info, dims, *rank);
  if (status == NULL) status = API(GetTensorElementType)(info, type);
  API(ReleaseTensorTypeAndShapeInfo)(info);
  return status;
}

static OrtStatus *input(OrtKernelContext *ctx, size_t index, const OrtValue **value, void **data) {
  TRY(API(KernelContext_GetInput)(ctx, index, value));
  return API(GetTensorMutableData)((OrtValue *)*value, data);
}

typedef struct {
  const GgufOp *op;
  int levels; /* the node's activation_levels: 1 or 2 */
  int last_position_only; /* the node's last_position_only: A [..., S, K] -> only position S-1 */
} Kernel;

/* B [groups, blocks, bytes] and scales (and mins) [groups, blocks, 8] of one op's inputs. */
static OrtStatus *block_shapes(const GgufOp *op, OrtKernelContext *ctx, size_t first, const void **w,
                               const float **scales, const float **mins, int64_t *groups, int64_t *blocks) {
  const OrtValue *b_value, *s_value;
  void *b_data, *s_data;
  TRY(input(ctx, first, &b_value, &b_data));
  TRY(input(ctx, first + 1, &s_value, &s_data));
  int64_t b_dims[MAX_RANK], s_dims[MAX_RANK];
  size_t b_rank, s_rank;
  int b_type, s_type;
  TRY(shape_of(b_value, b_dims, &b_rank, &b_type));
  TRY(shape_of(s_value, s_dims, &s_rank, &s_type));
  const int64_t group_bytes = op->format == FORMAT_Q4_1 ? GROUP * QK / 2 : GROUP * QK;
  if (b_rank != 3 || s_rank != 3 || b_dims[2] != group_bytes || s_dims[0] != b_dims[0] || s_dims[1] != b_dims[1] ||
      s_dims[2] != GROUP) {
    static __thread char msg[200];
    snprintf(msg, sizeof msg, "slm.gguf %s: B must be [N/8, K/32, %lld] and scales [N/8, K/32, 8]", op->name,
             (long long)group_bytes);
    return fail(msg);
  }
  *w = b_data;
  *scales = (const float *)s_data;
  *groups = b_dims[0];
  *blocks = b_dims[1];
  if (mins != NULL) {
    const OrtValue *m_value;
    void *m_data;
    int64_t m_dims[MAX_RANK];
    size_t m_rank;
    int m_type;
    TRY(input(ctx, first + 2, &m_value, &m_data));
    TRY(shape_of(m_value, m_dims, &m_rank, &m_type));
    if (m_rank != 3 || m_dims[0] != b_dims[0] || m_dims[1] != b_dims[1] || m_dims[2] != GROUP)
      return fail("slm.gguf MatMulQ4_1: mins must match scales");
    *mins = (const float *)m_data;
  }
  return NULL;
}

static OrtStatus *matmul_rows(const Kernel *kernel, OrtKernelContext *ctx, const float *a, int64_t rows,
                              int64_t blocks, const void *w, const float *scales, const float *mins, float *out,
                              int64_t n) {
  void *scratch = malloc(scratch_bytes(rows, blocks, kernel->levels));
  if (scratch == NULL) return fail("slm.gguf: out of memory for the quantized activations");
  const int chosen = chosen_kernel(); /* create_kernel checked that it is one this CPU runs */
  const QuantizedRows x = quantize_rows(a, rows, blocks, kernel->levels, scratch, chosen == KERNEL_SCALAR);
  MatMulTask task = {&x, w, scales, mins, out, n};
  OrtStatus *status = API(KernelContext_ParallelFor)(ctx, columns_task(chosen, kernel->op->format, kernel->levels),
                                                     column_tasks(n), 0, &task);
  free(scratch);
  return status;
}

/* last_position_only: a prompt chunk of S tokens needs the logits of its last token only (the
 * next token is sampled from them), so the lm_head multiplies only A[b, S-1] for each of the
 * BATCH sequences; the other positions of OUT are zeros. (For a 64-token chunk of SmolLM2 the
 * lm_head was a fifth of the chunk's time.) A row's result is the same as in a full product. */
static OrtStatus *last_positions(const Kernel *kernel, OrtKernelContext *ctx, const void *a, int64_t batch,
                                 int64_t steps, int64_t k, int64_t n, const void *w, const float *scales,
                                 const float *mins, float *out) {
  float *last = (float *)malloc((size_t)(batch * (k + n)) * sizeof(float));
  if (last == NULL) return fail("slm.gguf: out of memory for the last positions");
  float *product = last + batch * k;
  for (int64_t b = 0; b < batch; b++)
    memcpy(last + b * k, (const float *)a + (b * steps + steps - 1) * k, (size_t)k * sizeof(float));
  OrtStatus *status = matmul_rows(kernel, ctx, last, batch, k / QK, w, scales, mins, product, n);
  if (status == NULL) {
    memset(out, 0, (size_t)(batch * steps * n) * sizeof(float));
    for (int64_t b = 0; b < batch; b++)
      memcpy(out + (b * steps + steps - 1) * n, product + b * n, (size_t)n * sizeof(float));
  }
  free(last);
  return status;
}

static OrtStatus *compute_matmul(const Kernel *kernel, OrtKernelContext *ctx) {
  const GgufOp *op = kernel->op;
  const OrtValue *a_value;
  void *a;
  const void *w = NULL;
  const float *scales = NULL, *mins = NULL;
  int64_t groups = 0, blocks = 0;
  TRY(input(ctx, 0, &a_value, &a));
  TRY(block_shapes(op, ctx, 1, &w, &scales, op->format == FORMAT_Q4_1 ? &mins : NULL, &groups, &blocks));
  int64_t a_dims[MAX_RANK];
  size_t a_rank;
  int a_type;
  TRY(shape_of(a_value, a_dims, &a_rank, &a_type));
  if (a_rank < 1) return fail("slm.gguf: A must be [..., K]");
  const int64_t k = a_dims[a_rank - 1], n = GROUP * groups;
  if (blocks * QK != k) {
    static __thread char msg[200];
    snprintf(msg, sizeof msg, "slm.gguf %s: A has K=%lld but B holds [%lld, %lld, ...] column groups", op->name,
             (long long)k, (long long)groups, (long long)blocks);
    return fail(msg);
  }
  int64_t rows = 1, out_dims[MAX_RANK];
  for (size_t i = 0; i + 1 < a_rank; i++) rows *= out_dims[i] = a_dims[i];
  out_dims[a_rank - 1] = n;
  OrtValue *out_value;
  void *out;
  TRY(API(KernelContext_GetOutput)(ctx, 0, out_dims, a_rank, &out_value));
  TRY(API(GetTensorMutableData)(out_value, &out));
  if (rows == 0 || n == 0) return NULL;

  const int64_t steps = a_rank >= 3 ? a_dims[a_rank - 2] : 1;
  if (kernel->last_position_only && steps > 1) return last_positions(kernel, ctx, a, rows / steps, steps, k, n, w,
                                                                        scales, mins, (float *)out);
  return matmul_rows(kernel, ctx, (const float *)a, rows, blocks, w, scales, mins, (float *)out, n);
}

static OrtStatus *compute_gather(const Kernel *kernel, OrtKernelContext *ctx) {
  const void *w = NULL;
  const float *scales = NULL;
  int64_t groups = 0, blocks = 0;
  TRY(block_shapes(kernel->op, ctx, 0, &w, &scales, NULL, &groups, &blocks));
  const OrtValue *ids_value;
  void *ids;
  int64_t dims[MAX_RANK];
  size_t rank;
  int type;
  TRY(input(ctx, 2, &ids_value, &ids));
  TRY(shape_of(ids_value, dims, &rank, &type));
  if (rank >= MAX_RANK) return fail("slm.gguf GatherQ8_0: ids rank above 7");
  int64_t count = 1;
  for (size_t i = 0; i < rank; i++) count *= dims[i];
  for (int64_t i = 0; i < count; i++) {
    const int64_t id = ((const int64_t *)ids)[i];
    if (id < 0 || id >= GROUP * groups) {
      static __thread char msg[160];
      snprintf(msg, sizeof msg, "slm.gguf GatherQ8_0: token id %lld is outside the table's %lld rows", (long long)id,
               (long long)(GROUP * groups));
      return fail(msg);
    }
  }
  dims[rank] = blocks * QK;
  OrtValue *out_value;
  void *out;
  TRY(API(KernelContext_GetOutput)(ctx, 0, dims, rank + 1, &out_value));
  TRY(API(GetTensorMutableData)(out_value, &out));
  gather_q8_0((const int8_t *)w, scales, blocks, (const int64_t *)ids, count, (float *)out);
  return NULL;
}

static OrtStatus *compute(void *kernel_state, OrtKernelContext *ctx) {
  const Kernel *kernel = (const Kernel *)kernel_state;
  return kernel->op->gather ? compute_gather(kernel, ctx) : compute_matmul(kernel, ctx);
}

/* An int attribute of the node, or FALLBACK when the node has none. */
static int64_t attribute(const OrtKernelInfo *info, const char *name, int64_t fallback) {
  int64_t value = fallback;
  OrtStatus *absent = API(KernelInfoGetAttribute_int64)(info, name, &value);
  if (absent == NULL) return value;
  API(ReleaseStatus)(absent);
  return fallback;
}

/* A graph written for another block layout than this library's must not run: its bytes would
 * be read as something else. Graphs from before layout versions carry none (layout 1). */
static OrtStatus *create_kernel(const OrtCustomOp *base, const OrtApi *api, const OrtKernelInfo *info, void **kernel) {
  (void)api;
  const GgufOp *op = (const GgufOp *)base;
  const int64_t layout = attribute(info, "layout_version", 1);
  if (layout != SLM_GGUF_LAYOUT_VERSION) {
    static __thread char msg[300];
    snprintf(msg, sizeof msg,
             "slm.gguf %s: the model was written for GGUF block layout %lld, this ops library reads layout %d: "
             "the folder is older (or newer) than the library; " REBUILD,
             op->name, (long long)layout, SLM_GGUF_LAYOUT_VERSION);
    return fail(msg);
  }
  if (kernel_problem() != NULL) {
    static __thread char msg[300];
    snprintf(msg, sizeof msg, "slm.gguf %s: %s", op->name, kernel_problem());
    return fail(msg);
  }
  const int64_t levels = op->gather ? 1 : attribute(info, "activation_levels", 1);
  if (levels != 1 && levels != 2) return fail("slm.gguf: activation_levels must be 1 or 2");
  Kernel *state = (Kernel *)malloc(sizeof *state);
  if (state == NULL) return fail("slm.gguf: out of memory for a kernel");
  state->op = op;
  state->levels = (int)levels;
  state->last_position_only = !op->gather && attribute(info, "last_position_only", 0) != 0;
  *kernel = state;
  return NULL;
}
static void destroy_kernel(void *kernel) { free(kernel); }
static const char *op_name(const OrtCustomOp *op) { return ((const GgufOp *)op)->name; }
static const char *op_provider(const OrtCustomOp *op) {
  (void)op;
  return "CPUExecutionProvider";
}
static int op_input_type(const OrtCustomOp *op, size_t index) { return ((const GgufOp *)op)->input_types[index]; }
static size_t op_input_count(const OrtCustomOp *op) { return ((const GgufOp *)op)->inputs; }
static int op_output_type(const OrtCustomOp *op, size_t index) {
  (void)op;
  (void)index;
  return TYPE_FLOAT;
}
static size_t op_output_count(const OrtCustomOp *op) {
  (void)op;
  return 1;
}
static int op_required(const OrtCustomOp *op, size_t index) {
  (void)op;
  (void)index;
  return IO_REQUIRED;
}
static int op_memory(const OrtCustomOp *op, size_t index) {
  (void)op;
  (void)index;
  return MEM_DEFAULT;
}
static int op_one(const OrtCustomOp *op) {
  (void)op;
  return 1;
}
static int op_end_version(const OrtCustomOp *op) {
  (void)op;
  return 2147483647;
}

#define GGUF_OP(name_, format_, gather_, inputs_, ...)                                                            \
  {                                                                                                               \
    {ORT_API_VERSION_USED, NULL, op_name, op_provider, op_input_type, op_input_count, op_output_type,           \
     op_output_count, NULL, destroy_kernel, op_required, op_required, op_memory, op_one, op_one, op_one, op_one, \
     create_kernel, compute, NULL, op_one, op_end_version},                                                      \
        name_, format_, gather_, inputs_, {__VA_ARGS__}                                                           \
  }

static GgufOp q4_1_op = GGUF_OP("MatMulQ4_1", FORMAT_Q4_1, 0, 4, TYPE_FLOAT, TYPE_UINT8, TYPE_FLOAT, TYPE_FLOAT);
static GgufOp q8_0_op = GGUF_OP("MatMulQ8_0", FORMAT_Q8_0, 0, 3, TYPE_FLOAT, TYPE_INT8, TYPE_FLOAT);
static GgufOp gather_op = GGUF_OP("GatherQ8_0", FORMAT_Q8_0, 1, 3, TYPE_INT8, TYPE_FLOAT, TYPE_INT64);

/* ---- CausalAttention ------------------------------------------------------------------------ */
typedef struct {
  OrtCustomOp base;
  const char *name;
  int half; /* the cache (past and present) is float16 */
} AttentionOp;

typedef struct {
  int64_t heads, kv_heads;
  float scale;
  int half;
} AttentionKernel;

static OrtStatus *attention_fail(const char *why) {
  static __thread char msg[240];
  snprintf(msg, sizeof msg, "slm.gguf CausalAttention: %s", why);
  return fail(msg);
}

static OrtStatus *compute_attention(void *state, OrtKernelContext *ctx) {
  const AttentionKernel *kernel = (const AttentionKernel *)state;
  const OrtValue *values[6];
  void *data[6];
  int64_t dims[6][MAX_RANK];
  size_t rank[6];
  int type;
  for (size_t i = 0; i < 6; i++) {
    TRY(input(ctx, i, &values[i], &data[i]));
    TRY(shape_of(values[i], dims[i], &rank[i], &type));
  }
  const size_t cell = kernel->half ? 2 : 4;
  if (rank[0] != 3 || rank[1] != 4 || rank[2] != 4 || rank[3] != 1 || rank[4] != 2 || rank[5] != 2)
    return attention_fail("inputs must be qkv [B,S,W], past key/value [B,Nkv,L,H], seqlens_k [B], cos/sin [P,R/2]");
  const int64_t batch = dims[0][0], steps = dims[0][1], h = dims[1][3], kv_heads = kernel->kv_heads;
  if (dims[0][2] != (kernel->heads + 2 * kv_heads) * h || dims[1][0] != batch || dims[1][1] != kv_heads ||
      memcmp(dims[1], dims[2], 4 * sizeof(int64_t)) != 0 || dims[3][0] != batch ||
      memcmp(dims[4], dims[5], 2 * sizeof(int64_t)) != 0)
  {
    static __thread char msg[200];
    snprintf(msg, sizeof msg, "input shapes disagree: qkv [%lld, %lld, %lld], past key [%lld, %lld, %lld, %lld], "
             "seqlens_k [%lld], cos [%lld, %lld]", (long long)batch, (long long)steps, (long long)dims[0][2],
             (long long)dims[1][0], (long long)dims[1][1], (long long)dims[1][2], (long long)h, (long long)dims[3][0],
             (long long)dims[4][0], (long long)dims[4][1]);
    return attention_fail(msg);
  }
  if (batch == 0 || steps == 0) return attention_fail("an empty batch or no new tokens");
  const int32_t *seqlens = (const int32_t *)data[3];
  int64_t longest = 0;
  for (int64_t b = 0; b < batch; b++) {
    if (seqlens[b] + 1 - steps > dims[1][2]) return attention_fail("a row claims more cached tokens than past_key holds");
    longest = seqlens[b] + 1 > longest ? seqlens[b] + 1 : longest;
  }
  const int64_t length = dims[1][2] > longest ? dims[1][2] : longest;
  int64_t out_dims[3] = {batch, steps, kernel->heads * h}, kv_dims[4] = {batch, kv_heads, length, h};
  OrtValue *outputs[3];
  void *out[3];
  TRY(API(KernelContext_GetOutput)(ctx, 0, out_dims, 3, &outputs[0]));
  for (size_t i = 1; i < 3; i++) TRY(API(KernelContext_GetOutput)(ctx, i, kv_dims, 4, &outputs[i]));
  for (size_t i = 0; i < 3; i++) TRY(API(GetTensorMutableData)(outputs[i], &out[i]));
  const int64_t stride = longest + 8; /* softmax pads a head's weights to a multiple of 8 */
  AttentionTask task = {(const float *)data[0], seqlens, (const float *)data[4], (const float *)data[5],
                        out[1], out[2], (float *)out[0], NULL, stride, batch, steps,
                        kernel->heads, kv_heads, h, 2 * dims[4][1], dims[4][0], length,
                        kernel->scale != 0.0f ? kernel->scale : 1.0f / sqrtf((float)h), kernel->half};
  const char *problem = attention_problem(&task);
  if (problem != NULL) return attention_fail(problem);
  for (size_t i = 1; i < 3; i++) /* not the caller's shared buffer: carry the cached tokens over */
    if (out[i] != data[i])
      for (int64_t b = 0; b < batch; b++)
        for (int64_t j = 0; j < kv_heads; j++)
          memcpy((char *)out[i] + (size_t)((b * kv_heads + j) * length * h) * cell,
                 (const char *)data[i] + (size_t)((b * kv_heads + j) * dims[1][2] * h) * cell,
                 (size_t)((seqlens[b] + 1 - steps) * h) * cell);
  task.scratch = (float *)malloc(attention_scratch_floats(&task) * sizeof(float));
  if (task.scratch == NULL) return attention_fail("out of memory for the softmax weights");
  attention_store(&task);
  OrtStatus *status = API(KernelContext_ParallelFor)(ctx, attention_head, attention_tasks(&task), 0, &task);
  free(task.scratch);
  return status;
}

static OrtStatus *create_attention(const OrtCustomOp *base, const OrtApi *api, const OrtKernelInfo *info,
                                   void **kernel) {
  (void)api;
  const int64_t layout = attribute(info, "layout_version", 1);
  if (layout != SLM_GGUF_LAYOUT_VERSION) return attention_fail("written for another layout version; " REBUILD);
  AttentionKernel state = {attribute(info, "num_heads", 0), attribute(info, "kv_num_heads", 0), 0.0f,
                           ((const AttentionOp *)base)->half};
  OrtStatus *absent = API(KernelInfoGetAttribute_float)(info, "scale", &state.scale);
  if (absent != NULL) API(ReleaseStatus)(absent);
  if (state.heads <= 0 || state.kv_heads <= 0 || state.heads % state.kv_heads != 0)
    return attention_fail("num_heads and kv_num_heads must be positive, num_heads a multiple of kv_num_heads");
  AttentionKernel *copy = (AttentionKernel *)malloc(sizeof *copy);
  if (copy == NULL) return attention_fail("out of memory for a kernel");
  *copy = state;
  *kernel = copy;
  return NULL;
}

static const char *attention_name(const OrtCustomOp *op) { return ((const AttentionOp *)op)->name; }
static int attention_input_type(const OrtCustomOp *op, size_t index) {
  if (index == 3) return TYPE_INT32;
  return (index == 1 || index == 2) && ((const AttentionOp *)op)->half ? TYPE_FLOAT16 : TYPE_FLOAT;
}
static int attention_output_type(const OrtCustomOp *op, size_t index) {
  return index > 0 && ((const AttentionOp *)op)->half ? TYPE_FLOAT16 : TYPE_FLOAT;
}
static size_t attention_inputs(const OrtCustomOp *op) {
  (void)op;
  return 6;
}
static size_t attention_outputs(const OrtCustomOp *op) {
  (void)op;
  return 3;
}

#define ATTENTION_OP(name_, half_)                                                                               \
  {                                                                                                               \
    {ORT_API_VERSION_USED, NULL, attention_name, op_provider, attention_input_type, attention_inputs,            \
     attention_output_type, attention_outputs, NULL, destroy_kernel, op_required, op_required, op_memory, op_one, \
     op_one, op_one, op_one, create_attention, compute_attention, NULL, op_one, op_end_version},                 \
        name_, half_                                                                                              \
  }
static AttentionOp attention_op = ATTENTION_OP("CausalAttention", 0);
static AttentionOp attention_f16_op = ATTENTION_OP("CausalAttentionF16", 1);

/* The checks ort_abi.h promises; NULL when the table is usable. */
static OrtStatus *check_api(const OrtApiBase *base) {
  static char msg[300];
  const char *version = base->GetVersionString != NULL ? base->GetVersionString() : "?";
  const OrtApi *api = base->GetApi(ORT_API_VERSION_USED);
  if (api == NULL) {
    snprintf(msg, sizeof msg,
             "slm.gguf ops need onnxruntime " ORT_VERSION_USED " or newer (C API version %d); this process runs "
             "onnxruntime %s: upgrade onnxruntime, or prepare the int8 model (`slm-playground model prepare "
             "--precision int8`)",
             ORT_API_VERSION_USED, version);
    g_api = base->GetApi(1); /* CreateStatus has been slot 0 since the first version */
    if (g_api == NULL) {
      fprintf(stderr, "%s\n", msg);
      return NULL; /* nothing to report it with: onnxruntime then names the op as unknown */
    }
    return API(CreateStatus)(ORT_FAIL, msg);
  }
  g_api = api;
  for (size_t i = 0; i < sizeof SLOTS / sizeof SLOTS[0]; i++)
    if (((void *const *)api)[SLOTS[i].slot] == NULL) {
      snprintf(msg, sizeof msg, "slm.gguf: onnxruntime %s has no function at OrtApi slot %d (%s)", version,
               SLOTS[i].slot, SLOTS[i].name);
      return API(CreateStatus)(ORT_FAIL, msg);
    }
  OrtStatus *probe = API(CreateStatus)(ORT_INVALID_ARGUMENT, "slm.gguf probe");
  const int same = probe != NULL && API(GetErrorCode)(probe) == ORT_INVALID_ARGUMENT &&
                   strcmp(API(GetErrorMessage)(probe), "slm.gguf probe") == 0;
  if (probe != NULL) API(ReleaseStatus)(probe);
  if (!same) {
    snprintf(msg, sizeof msg,
             "slm.gguf: onnxruntime %s's status functions are not where ort_abi.h (read from " ORT_VERSION_USED
             ") puts them",
             version);
    return API(CreateStatus)(ORT_FAIL, msg);
  }
  return NULL;
}

SLM_EXPORT OrtStatus *RegisterCustomOps(OrtSessionOptions *options, const OrtApiBase *base) {
  TRY(check_api(base));
  if (g_api == NULL) return NULL;
  OrtCustomOpDomain *domain = NULL;
  TRY(API(CreateCustomOpDomain)("slm.gguf", &domain));
  TRY(API(CustomOpDomain_Add)(domain, &q4_1_op.base));
  TRY(API(CustomOpDomain_Add)(domain, &q8_0_op.base));
  TRY(API(CustomOpDomain_Add)(domain, &gather_op.base));
  TRY(API(CustomOpDomain_Add)(domain, &attention_op.base));
  TRY(API(CustomOpDomain_Add)(domain, &attention_f16_op.base));
  return API(AddCustomOpDomain)(options, domain);
}
