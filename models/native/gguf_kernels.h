/* The GGUF block kernels, apart from onnxruntime: the AVX2 ones the ops run, a plain scalar
 * reference they are tested against (bit for bit), and the embedding gather.
 *
 * Weights come in groups of 8 columns (output features), interleaved so that one 32-byte load
 * holds 4 consecutive weights of each of the 8 columns: for group g, block b, step s, column j,
 *   Q4_1: bytes [(g*blocks + b)*128 + s*32 + j*4 .. +4] = ggml bytes 4s..4s+3 of column 8g+j
 *         (low nibbles: elements 4s..4s+3; high nibbles: elements 16+4s..16+4s+3), s < 4
 *   Q8_0: bytes [(g*blocks + b)*256 + s*32 + j*4 .. +4] = elements 4s..4s+3 of column 8g+j, s < 8
 * and scales/mins as [groups, blocks, 8]. models/gguf_blocks.py writes this layout; a change
 * to it (or to what the graph expects of the ops) bumps SLM_GGUF_LAYOUT_VERSION.
 */
#ifndef SLM_GGUF_KERNELS_H
#define SLM_GGUF_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* 1: the layout above, unversioned (folders before versions were recorded).
 * 2: the same blocks, plus the embedding gathered from the lm_head's Q8_0 blocks (GatherQ8_0)
 *    instead of a float table; every slm.gguf node carries layout_version = 2.
 * 3: the same, with attention on slm.gguf::CausalAttentionF16 over a float16 KV cache (the graph
 *    expects ops a layout-2 library lacks; the bump also has `model prepare` rebuild layout-2
 *    default folders, which would otherwise keep the slower attention). */
#define SLM_GGUF_LAYOUT_VERSION 3

#define SLM_EXPORT __attribute__((visibility("default")))

enum { QK = 32, GROUP = 8, GROUPS_PER_TASK = 2 };
enum { FORMAT_Q4_1 = 0, FORMAT_Q8_0 = 1 };

/* Activations of one call, rounded per block to int8 steps. With a second level (q2 != NULL),
 * what the first rounding left over is rounded again: x = scale*q + scale2*q2 to ~1/32000 of
 * the block's largest value instead of ~1/250. */
typedef struct {
  const int8_t *q, *q2;
  const float *scale, *scale2;
  const float *sum; /* per block: the sum of the rounded values, for Q4_1's minimum */
  int64_t rows, blocks;
} QuantizedRows;

typedef struct {
  const QuantizedRows *x;
  const void *weights;
  const float *scales, *mins; /* mins == NULL for Q8_0 */
  float *out;
  int64_t n; /* columns: 8 * groups */
} MatMulTask;

typedef void (*TaskFn)(void *task, size_t index);

/* Bytes of scratch quantize_rows needs for ROWS x BLOCKS activations at LEVELS (1 or 2). */
size_t scratch_bytes(int64_t rows, int64_t blocks, int levels);
/* A [rows, blocks*32] rounded into SCRATCH; reference != 0 takes the scalar path. */
QuantizedRows quantize_rows(const float *a, int64_t rows, int64_t blocks, int levels, void *scratch, int reference);

/* The matmul kernels. All give the same bits; the scalar one is the reference the others are
 * tested against (slow: for checking, or a CPU the others do not suit). */
enum { KERNEL_SCALAR = 1, KERNEL_AVX2 = 2, KERNEL_AVX512 = 3 };
/* The kernel the ops run: SLM_KERNEL's (read once: scalar, avx2, avx512-vnni, or auto), else the
 * fastest this CPU runs. 0 when SLM_KERNEL names an unknown kernel or one this CPU cannot run;
 * kernel_problem() then says why (and is NULL otherwise). */
int chosen_kernel(void);
const char *kernel_problem(void);
const char *kernel_name(int kernel);
int kernel_runs_here(int kernel);
/* The matmul as tasks of GROUPS_PER_TASK column groups each (run them in any order, in
 * parallel) with KERNEL; NULL where this CPU cannot run it. */
TaskFn columns_task(int kernel, int format, int levels);
TaskFn avx2_columns_task(int format, int levels);
TaskFn avx512_columns_task(int format, int levels); /* NULL where the CPU lacks AVX-512 VNNI */
int avx512_supported(void);
size_t column_tasks(int64_t n);
/* The whole product, one scalar multiply-add at a time, in the AVX2 kernel's order per lane. */
void matmul_reference(const MatMulTask *task, int format);

/* Rows IDS of the lm_head's Q8_0 blocks ([groups, blocks, 256], scales [groups, blocks, 8]),
 * dequantized into OUT [count, blocks*32]: d * q, exact in float, as the GGUF's float table is. */
void gather_q8_0(const int8_t *weights, const float *scales, int64_t blocks, const int64_t *ids, int64_t count, float *out);

#endif
