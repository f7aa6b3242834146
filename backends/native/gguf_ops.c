/* onnxruntime custom ops that compute with GGUF-quantized weights as they are stored.
 *
 *   slm.gguf::MatMulQ4_1(A float[..., K], B uint8[N/8, K/32, 128], scales float[N/8, K/32, 8],
 *                        mins float[N/8, K/32, 8]) -> float[..., N]
 *   slm.gguf::MatMulQ8_0(A float[..., K], B int8[N/8, K/32, 256], scales float[N/8, K/32, 8])
 *                        -> float[..., N]
 *   slm.gguf::GatherQ8_0(B int8[N/8, K/32, 256], scales float[N/8, K/32, 8], ids int64[...])
 *                        -> float[..., K]      rows IDS of B, dequantized (the tied embedding)
 *
 * B holds the GGUF's blocks with 8 output columns interleaved (gguf_kernels.h documents the
 * layout; backends/gguf_blocks.py writes it). N is a multiple of 8; the graph pads and slices.
 * Attributes: layout_version (required: the layout the graph was written for, checked against
 * SLM_GGUF_LAYOUT_VERSION when the kernel is created) and, on the matmuls, activation_levels.
 * The onnxruntime ABI used is in ort_abi.h, checked at registration below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

  void *scratch = malloc(scratch_bytes(rows, blocks, kernel->levels));
  if (scratch == NULL) return fail("slm.gguf: out of memory for the quantized activations");
  const QuantizedRows x = quantize_rows((const float *)a, rows, blocks, kernel->levels, scratch, 0);
  MatMulTask task = {&x, w, scales, mins, (float *)out, n};
  OrtStatus *status = API(KernelContext_ParallelFor)(ctx, columns_task(op->format, kernel->levels),
                                                     column_tasks(n), 0, &task);
  free(scratch);
  return status;
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
  const int64_t levels = op->gather ? 1 : attribute(info, "activation_levels", 1);
  if (levels != 1 && levels != 2) return fail("slm.gguf: activation_levels must be 1 or 2");
  Kernel *state = (Kernel *)malloc(sizeof *state);
  if (state == NULL) return fail("slm.gguf: out of memory for a kernel");
  state->op = op;
  state->levels = (int)levels;
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
  return API(AddCustomOpDomain)(options, domain);
}
