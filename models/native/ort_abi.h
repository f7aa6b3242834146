/* The slice of onnxruntime's C ABI that the slm.gguf ops use, written for this project.
 *
 * No onnxruntime C headers ship in the wheels or packages reachable here, so this file holds
 * the positions instead, in one table, and gguf_ops.c checks them when the library is
 * registered (RegisterCustomOps):
 *   - OrtApiBase::GetApi(ORT_API_VERSION_USED) must return a table; an older onnxruntime returns
 *     NULL, and registration fails with "slm.gguf ops need onnxruntime 1.17 or newer ...";
 *   - every slot below must hold a function;
 *   - CreateStatus / GetErrorCode / GetErrorMessage / ReleaseStatus must round-trip a status.
 * The slot numbers and OrtCustomOp's fields were read from onnxruntime 1.17's
 * include/onnxruntime/core/session/onnxruntime_c_api.h (ORT_API_VERSION 17). The OrtApi table
 * is append-only, so they hold for every later version; tests/core/test_gguf_blocks.py runs every
 * op (hence every slot) through the installed onnxruntime (1.32 when this was written), and
 * tests/core/test_native_kernels.py checks the refusals against stand-in runtimes.
 */
#ifndef SLM_ORT_ABI_H
#define SLM_ORT_ABI_H

#include <stddef.h>
#include <stdint.h>

#define ORT_API_VERSION_USED 17 /* KernelContext_ParallelFor arrived in 1.17 */
#define ORT_VERSION_USED "1.17"

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

enum { ORT_FAIL = 1, ORT_INVALID_ARGUMENT = 2 };                     /* OrtErrorCode */
enum { TYPE_FLOAT = 1, TYPE_UINT8 = 2, TYPE_INT8 = 3, TYPE_INT32 = 6, TYPE_INT64 = 7, TYPE_FLOAT16 = 10 }; /* ONNXTensorElementDataType */
enum { IO_REQUIRED = 0 };                                              /* OrtCustomOpInputOutputCharacteristic */
enum { MEM_DEFAULT = 0 };                                              /* OrtMemType */

/* X(name, slot in OrtApi, function type): the one table of positions. */
#define ORT_SLOTS(X)                                                                                          \
  X(CreateStatus, 0, OrtStatus *(*)(int code, const char *msg))                                               \
  X(GetErrorCode, 1, int (*)(const OrtStatus *status))                                                       \
  X(GetErrorMessage, 2, const char *(*)(const OrtStatus *status))                                            \
  X(CreateCustomOpDomain, 26, OrtStatus *(*)(const char *domain, OrtCustomOpDomain **out))                   \
  X(CustomOpDomain_Add, 27, OrtStatus *(*)(OrtCustomOpDomain *domain, const struct OrtCustomOp *op))         \
  X(AddCustomOpDomain, 28, OrtStatus *(*)(OrtSessionOptions *options, OrtCustomOpDomain *domain))            \
  X(GetTensorMutableData, 51, OrtStatus *(*)(OrtValue *value, void **out))                                   \
  X(GetTensorElementType, 60, OrtStatus *(*)(const OrtTensorTypeAndShapeInfo *info, int *out))               \
  X(GetDimensionsCount, 61, OrtStatus *(*)(const OrtTensorTypeAndShapeInfo *info, size_t *out))              \
  X(GetDimensions, 62, OrtStatus *(*)(const OrtTensorTypeAndShapeInfo *info, int64_t *dims, size_t n))       \
  X(GetTensorTypeAndShape, 65, OrtStatus *(*)(const OrtValue *value, OrtTensorTypeAndShapeInfo **out))       \
  X(KernelInfoGetAttribute_float, 85, OrtStatus *(*)(const OrtKernelInfo *info, const char *name, float *out)) \
  X(KernelInfoGetAttribute_int64, 86, OrtStatus *(*)(const OrtKernelInfo *info, const char *name, int64_t *out)) \
  X(KernelContext_GetInput, 90, OrtStatus *(*)(const OrtKernelContext *ctx, size_t index, const OrtValue **out)) \
  X(KernelContext_GetOutput, 91,                                                                              \
    OrtStatus *(*)(OrtKernelContext *ctx, size_t index, const int64_t *dims, size_t dim_count, OrtValue **out)) \
  X(ReleaseStatus, 93, void (*)(OrtStatus *status))                                                          \
  X(ReleaseTensorTypeAndShapeInfo, 99, void (*)(OrtTensorTypeAndShapeInfo *info))                            \
  X(KernelContext_ParallelFor, 274,                                                                           \
    OrtStatus *(*)(const OrtKernelContext *ctx, void (*fn)(void *, size_t), size_t total, size_t num_batch,   \
                   void *user_data))

/* OrtCustomOp as of version 17: onnxruntime reads the fields after GetEndVersion (added in
 * later versions) only from ops whose `version` says they have them, so this prefix is all of
 * it for an op that declares version 17. */
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
  OrtStatus *(*CreateKernelV2)(const struct OrtCustomOp *op, const OrtApi *api, const OrtKernelInfo *info,
                               void **kernel);
  OrtStatus *(*KernelComputeV2)(void *op_kernel, OrtKernelContext *context);
  OrtStatus *(*InferOutputShapeFn)(const struct OrtCustomOp *op, OrtShapeInferContext *ctx);
  int (*GetStartVersion)(const struct OrtCustomOp *op);
  int (*GetEndVersion)(const struct OrtCustomOp *op);
} OrtCustomOp;

#endif
