/* The GGUF block kernels (declared and documented in gguf_kernels.h).
 *
 * Why: a Q4_1 block is w = d*q + m with a float minimum m. onnxruntime's fast MatMulNBits
 * kernel only takes integer zero points, so re-quantizing Q4_1 to it shifts every block by up
 * to d/2 (greedy tokens then disagree with the float model ~30% of the time), and its float
 * zero-point path dequantizes the whole matrix on every call. Here the minimum costs one
 * multiply-add per block: sum_i x_i (d q_i + m) = d * sum_i x_i q_i + m * sum_i x_i.
 *
 * Activations are quantized per 32-block to int8 (as llama.cpp does, and MatMulNBits at
 * accuracy_level 4); a node with activation_levels=2 rounds the remainder once more. Q4_1
 * nibbles keep ggml's order: byte j of a block holds element j in its low nibble and element
 * j+16 in its high nibble. The AVX2 kernels need AVX2 and FMA; the Python side checks the CPU.
 *
 * Compiled with -ffp-contract=off: every fused multiply-add is written out (fmaf or an FMA
 * intrinsic), so the scalar reference does the AVX2 kernel's float operations in the same order
 * and the two agree bit for bit (tests/core/test_native_kernels.py).
 */
#include "gguf_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  *sum = fmaf(d, hsum(_mm256_cvtepi32_ps(total)), *sum);
  return d;
}

/* Broadcasting 4 activation bytes against a 32-byte load of the interleaved weights (layout in
 * gguf_kernels.h) makes every lane one column's partial dot product, so a block of 8 columns ends
 * in one vector: no horizontal sums, one convert and one scale multiply per 8 columns. That
 * halved the time of a decode-step matmul against one column at a time (llama.cpp's repacked
 * "8x8" kernels do the same). */
static inline __m256i broadcast4(const int8_t *p) {
  int32_t v;
  memcpy(&v, p, sizeof v);
  return _mm256_set1_epi32(v);
}

/* ROWS rows against one group of 8 columns, with LEVELS activation levels; both are constants
 * at each call, so the accumulators stay in registers. Products u4 x s8 summed 8 at a time stay
 * below 2^15. */
#define Q4_1_GROUP(ROWS, LEVELS)                                                                              \
  /* inlined: the one-row task and an odd last row both call it, and as a call it costs 3% */    \
  static inline __attribute__((always_inline)) void q4_1_group_##ROWS##_##LEVELS(const MatMulTask *t, \
                                                                                int64_t g, int64_t r) {   \
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
Q4_1_GROUP(1, 2)
Q8_0_GROUP(1, 1)
Q8_0_GROUP(1, 2)

/* Several rows, blocks outer and rows inner: each block of the group is unpacked once into
 * registers (Q4_1: its low and high nibbles, 8 vectors; Q8_0: the weights' magnitudes, 8
 * vectors, their signs read from memory) and used for every row, whose 8 float accumulators
 * live in ACC (L1). The former kernels (4 rows a pass, accumulators in registers) ran out of
 * registers: the compiler summed each block's products as a tree and spilled a third of them
 * to the stack. The float operations per lane are the same as the one-row kernels'. */
enum { MAX_PASS_ROWS = 16 };

/* Keeps V in a register at this point: the sum of a row's products is then built in order, one
 * add after each multiply, instead of as a tree that holds every product at once. */
#define IN_ORDER(V) __asm__("" : "+x"(V))
/* Loops the compiler must not unroll: unrolled, the unpacked weights of two blocks no longer fit
 * the 16 registers. GCC's -O3 also unrolls the blocks loop by 2 and jams the copies into the rows
 * loop (unroll-and-jam, which the pragma does not stop): then 8 of the 16 unpacked vectors are
 * reloaded from the stack for every row. Without it a pass is ~5% faster (o and up projections,
 * 8 rows, Zen 3); NO_JAM goes on the pass functions. */
#if defined(__clang__)
#define NO_UNROLL _Pragma("clang loop unroll(disable)")
#define NO_JAM
#else
#define NO_UNROLL _Pragma("GCC unroll 1")
#define NO_JAM __attribute__((optimize("no-loop-unroll-and-jam")))
#endif

/* The integer dot product of one row's block with the 8 columns (int16 pairs; see Q4_1_GROUP);
 * SUM's dependency chain is kept in order, so no product waits in a register. */
#define Q4_1_ROW_DOT(SUM, Q)                                                          \
  do {                                                                                \
    SUM = _mm256_maddubs_epi16(lo[0], broadcast4((Q)));                               \
    SUM = _mm256_add_epi16(SUM, _mm256_maddubs_epi16(hi[0], broadcast4((Q) + 16)));   \
    IN_ORDER(SUM);                                                                    \
    for (int s_ = 1; s_ < 4; s_++) {                                                  \
      SUM = _mm256_add_epi16(SUM, _mm256_maddubs_epi16(lo[s_], broadcast4((Q) + 4 * s_)));      \
      IN_ORDER(SUM);                                                                  \
      SUM = _mm256_add_epi16(SUM, _mm256_maddubs_epi16(hi[s_], broadcast4((Q) + 16 + 4 * s_))); \
      IN_ORDER(SUM);                                                                  \
    }                                                                                 \
  } while (0)

#define Q4_1_PASS(LEVELS)                                                                                      \
  NO_JAM static void q4_1_pass_##LEVELS(const MatMulTask *t, int64_t g, int64_t r, int64_t rows) {                 \
    const QuantizedRows *x = t->x;                                                                             \
    const int64_t nb = x->blocks;                                                                              \
    const uint8_t *w = (const uint8_t *)t->weights + g * nb * 128;                                             \
    const float *d = t->scales + g * nb * 8, *m = t->mins + g * nb * 8;                                        \
    const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);                                   \
    float acc[MAX_PASS_ROWS * 8];                                                                              \
    memset(acc, 0, sizeof acc);                                                                                \
    NO_UNROLL for (int64_t b = 0; b < nb; b++) {                                                               \
      __m256i lo[4], hi[4];                                                                                    \
      for (int s = 0; s < 4; s++) {                                                                            \
        const __m256i v = _mm256_loadu_si256((const __m256i *)(w + b * 128 + s * 32));                         \
        lo[s] = _mm256_and_si256(v, low);                                                                      \
        hi[s] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);                                                \
      }                                                                                                        \
      const __m256 dv = _mm256_loadu_ps(d + b * 8), mv = _mm256_loadu_ps(m + b * 8);                           \
      NO_UNROLL for (int64_t k = 0; k < rows; k++) {                                                           \
        const int64_t rb = (r + k) * nb + b;                                                                   \
        __m256i s1, s2;                                                                                        \
        Q4_1_ROW_DOT(s1, x->q + rb * QK);                                                                      \
        __m256 dot = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(s1, ones)), _mm256_set1_ps(x->scale[rb])); \
        if (LEVELS == 2) {                                                                                     \
          Q4_1_ROW_DOT(s2, x->q2 + rb * QK);                                                                   \
          dot = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(s2, ones)), _mm256_set1_ps(x->scale2[rb]), dot); \
        }                                                                                                      \
        __m256 a = _mm256_fmadd_ps(dot, dv, _mm256_loadu_ps(acc + k * 8));                                    \
        _mm256_storeu_ps(acc + k * 8, _mm256_fmadd_ps(mv, _mm256_set1_ps(x->sum[rb]), a));                     \
      }                                                                                                        \
    }                                                                                                          \
    for (int64_t k = 0; k < rows; k++) memcpy(t->out + (r + k) * t->n + g * 8, acc + k * 8, 8 * sizeof(float)); \
  }

/* Signed x signed, as Q8_0_GROUP: |w| (registers) x (x with w's sign); int16 pairs widened every
 * step, as two of them can exceed 2^15. */
#define Q8_0_ROW_DOT(SUM, Q)                                                                           \
  do {                                                                                                 \
    SUM = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude[0], _mm256_sign_epi8(broadcast4((Q)), v[0])), ones); \
    for (int s_ = 1; s_ < 8; s_++) {                                                                   \
      SUM = _mm256_add_epi32(SUM, _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude[s_],               \
                                                                         _mm256_sign_epi8(broadcast4((Q) + 4 * s_), v[s_])), ones)); \
      IN_ORDER(SUM);                                                                                   \
    }                                                                                                  \
  } while (0)

#define Q8_0_PASS(LEVELS)                                                                                      \
  NO_JAM static void q8_0_pass_##LEVELS(const MatMulTask *t, int64_t g, int64_t r, int64_t rows) {                 \
    const QuantizedRows *x = t->x;                                                                             \
    const int64_t nb = x->blocks;                                                                              \
    const int8_t *w = (const int8_t *)t->weights + g * nb * 256;                                               \
    const float *d = t->scales + g * nb * 8;                                                                   \
    const __m256i ones = _mm256_set1_epi16(1);                                                                 \
    float acc[MAX_PASS_ROWS * 8];                                                                              \
    memset(acc, 0, sizeof acc);                                                                                \
    NO_UNROLL for (int64_t b = 0; b < nb; b++) {                                                               \
      const __m256i *v = (const __m256i *)(w + b * 256);                                                       \
      __m256i magnitude[8];                                                                                    \
      for (int s = 0; s < 8; s++) {                                                                            \
        const __m256i vs = _mm256_loadu_si256(v + s);                                                          \
        magnitude[s] = _mm256_sign_epi8(vs, vs);                                                               \
      }                                                                                                        \
      const __m256 dv = _mm256_loadu_ps(d + b * 8);                                                            \
      NO_UNROLL for (int64_t k = 0; k < rows; k++) {                                                           \
        const int64_t rb = (r + k) * nb + b;                                                                   \
        __m256i s1, s2;                                                                                        \
        Q8_0_ROW_DOT(s1, x->q + rb * QK);                                                                      \
        __m256 dot = _mm256_mul_ps(_mm256_cvtepi32_ps(s1), _mm256_set1_ps(x->scale[rb]));                      \
        if (LEVELS == 2) {                                                                                     \
          Q8_0_ROW_DOT(s2, x->q2 + rb * QK);                                                                   \
          dot = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s2), _mm256_set1_ps(x->scale2[rb]), dot);                   \
        }                                                                                                      \
        _mm256_storeu_ps(acc + k * 8, _mm256_fmadd_ps(dot, dv, _mm256_loadu_ps(acc + k * 8)));                 \
      }                                                                                                        \
    }                                                                                                          \
    for (int64_t k = 0; k < rows; k++) memcpy(t->out + (r + k) * t->n + g * 8, acc + k * 8, 8 * sizeof(float)); \
  }

Q4_1_PASS(1)
Q4_1_PASS(2)
Q8_0_PASS(1)
Q8_0_PASS(2)

/* Tiles of 2 rows x the task's 2 groups, for 4 and more rows. Zen 3 loads at most 2 vectors a
 * cycle (a broadcast counts as one) and the passes' rows each wait on a chain of 8 adds; here
 * each broadcast word feeds both groups and the 4 (row, group) sums build side by side. The
 * compiler keeps the block's 16 unpacked weight vectors on the stack (L1) and reloads them per
 * tile. Against the passes (thread CPU time, weights in cache, Zen 3): 8 rows 8-14% less, 16
 * and more 7-9% less; 2 and 3 rows, and an odd row left over, cost more, so those stay on the
 * passes and the one-row kernel. Instructions are about the same: the gain is in scheduling.
 * The integer sums are exact in any order and the float operations per lane are the passes'. */
enum { TILE_ROWS = 2, TILE_MIN_ROWS = 4 };
#define UNROLL_FULL _Pragma("GCC unroll 8")

/* Integer dots of the tile's rows (activation blocks Q and Q + QNEXT) with G groups (weights W
 * and W + WNEXT) at one block, as int16 pairs (exact: see Q4_1_GROUP). */
static inline __attribute__((always_inline)) void q4_1_tile_dots(const uint8_t *w, int64_t wnext, const int8_t *q,
                                                                int64_t qnext, int G, __m256i sum[TILE_ROWS][2]) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  UNROLL_FULL for (int s = 0; s < 4; s++) {
    __m256i lo[2], hi[2];
    UNROLL_FULL for (int g = 0; g < G; g++) {
      const __m256i v = _mm256_loadu_si256((const __m256i *)(w + g * wnext + s * 32));
      lo[g] = _mm256_and_si256(v, low);
      hi[g] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    }
    UNROLL_FULL for (int r = 0; r < TILE_ROWS; r++) {
      const __m256i a = broadcast4(q + r * qnext + 4 * s), b = broadcast4(q + r * qnext + 16 + 4 * s);
      UNROLL_FULL for (int g = 0; g < G; g++) {
        const __m256i p = _mm256_maddubs_epi16(lo[g], a);
        sum[r][g] = s == 0 ? p : _mm256_add_epi16(sum[r][g], p);
        IN_ORDER(sum[r][g]);
        sum[r][g] = _mm256_add_epi16(sum[r][g], _mm256_maddubs_epi16(hi[g], b));
        IN_ORDER(sum[r][g]);
      }
    }
  }
}

/* Rows R0, R0+1 x groups G0..G0+G-1 at block B: ACC[g][row] (8 floats each) += the block's part. */
static inline __attribute__((always_inline)) void q4_1_tile(const MatMulTask *t, int64_t g0, int64_t r0, int64_t b,
                                                           int G, int levels, float (*acc)[MAX_PASS_ROWS * 8]) {
  const QuantizedRows *x = t->x;
  const int64_t nb = x->blocks, wnext = nb * 128;
  const uint8_t *w = (const uint8_t *)t->weights + (g0 * nb + b) * 128;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i s1[TILE_ROWS][2], s2[TILE_ROWS][2];
  __m256 dot[TILE_ROWS][2];
  q4_1_tile_dots(w, wnext, x->q + (r0 * nb + b) * QK, nb * QK, G, s1);
  UNROLL_FULL for (int r = 0; r < TILE_ROWS; r++) {
    const __m256 scale = _mm256_set1_ps(x->scale[(r0 + r) * nb + b]);
    UNROLL_FULL for (int g = 0; g < G; g++)
      dot[r][g] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(s1[r][g], ones)), scale);
  }
  if (levels == 2) {
    q4_1_tile_dots(w, wnext, x->q2 + (r0 * nb + b) * QK, nb * QK, G, s2);
    UNROLL_FULL for (int r = 0; r < TILE_ROWS; r++) {
      const __m256 scale2 = _mm256_set1_ps(x->scale2[(r0 + r) * nb + b]);
      UNROLL_FULL for (int g = 0; g < G; g++)
        dot[r][g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(s2[r][g], ones)), scale2, dot[r][g]);
    }
  }
  UNROLL_FULL for (int g = 0; g < G; g++) {
    const int64_t at = ((g0 + g) * nb + b) * 8;
    const __m256 dv = _mm256_loadu_ps(t->scales + at), mv = _mm256_loadu_ps(t->mins + at);
    UNROLL_FULL for (int r = 0; r < TILE_ROWS; r++) {
      float *a = acc[g] + (r0 % MAX_PASS_ROWS + r) * 8;
      const __m256 sum = _mm256_set1_ps(x->sum[(r0 + r) * nb + b]);
      _mm256_storeu_ps(a, _mm256_fmadd_ps(mv, sum, _mm256_fmadd_ps(dot[r][g], dv, _mm256_loadu_ps(a))));
    }
  }
}

/* The tiles read 2 groups' weights, scales and mins side by side (6 streams), which the hardware
 * prefetcher follows less well than one (AVX-512 kernel: the same): ask for block b + AHEAD's
 * lines (prefetching never faults, so running past the end is harmless). */
enum { AHEAD = 32 };
static inline void tile_prefetch(const MatMulTask *t, int64_t g, int64_t b) {
  const int64_t at = g * t->x->blocks + b;
  _mm_prefetch((const char *)t->weights + at * 128, _MM_HINT_T0);
  _mm_prefetch((const char *)t->weights + at * 128 + 64, _MM_HINT_T0);
  _mm_prefetch((const char *)(t->scales + at * 8), _MM_HINT_T0);
  _mm_prefetch((const char *)(t->mins + at * 8), _MM_HINT_T0);
}

/* ROWS (even, at most MAX_PASS_ROWS) rows from R against groups G0..G0+G-1. */
#define Q4_1_TILES(G, LEVELS)                                                                                  \
  NO_JAM static void q4_1_tiles_##G##_##LEVELS(const MatMulTask *t, int64_t g0, int64_t r, int64_t rows) {     \
    float acc[2][MAX_PASS_ROWS * 8];                                                                           \
    memset(acc, 0, sizeof acc);                                                                                \
    const int64_t nb = t->x->blocks;                                                                           \
    NO_UNROLL for (int64_t b = 0; b < nb; b++) {                                                               \
      for (int g = 0; g < G; g++) tile_prefetch(t, g0 + g, b + AHEAD);                                         \
      NO_UNROLL for (int64_t k = 0; k < rows; k += TILE_ROWS) q4_1_tile(t, g0, r + k, b, G, LEVELS, acc);      \
    }                                                                                                          \
    for (int g = 0; g < G; g++)                                                                                \
      for (int64_t k = 0; k < rows; k++) memcpy(t->out + (r + k) * t->n + (g0 + g) * 8, acc[g] + k * 8, 8 * sizeof(float)); \
  }

Q4_1_TILES(1, 1)
Q4_1_TILES(2, 1)
Q4_1_TILES(1, 2)
Q4_1_TILES(2, 2)

/* One task: GROUPS_PER_TASK groups of 8 columns, every row: one row alone (accumulators in
 * registers), else up to MAX_PASS_ROWS rows a pass over the group's blocks. */
#define COLUMNS_TASK(NAME, LEVELS)                                                                 \
  static void NAME##_columns_##LEVELS(void *data, size_t task) {                                    \
    const MatMulTask *t = (const MatMulTask *)data;                                                 \
    const int64_t groups = t->n / 8, g0 = (int64_t)task * GROUPS_PER_TASK, rows = t->x->rows;      \
    const int64_t g1 = g0 + GROUPS_PER_TASK < groups ? g0 + GROUPS_PER_TASK : groups;              \
    for (int64_t g = g0; g < g1; g++) {                                                             \
      if (rows == 1) {                                                                              \
        NAME##_group_1_##LEVELS(t, g, 0);                                                           \
        continue;                                                                                   \
      }                                                                                             \
      for (int64_t r = 0; r < rows; r += MAX_PASS_ROWS)                                             \
        NAME##_pass_##LEVELS(t, g, r, rows - r < MAX_PASS_ROWS ? rows - r : MAX_PASS_ROWS);         \
    }                                                                                               \
  }

/* Q4_1: one row alone; 2 or 3 rows on the passes; else tiles of MAX_PASS_ROWS rows at a time, an
 * odd last row on the one-row kernel. */
#define Q4_1_TASK(LEVELS)                                                                          \
  static void q4_1_columns_##LEVELS(void *data, size_t task) {                                      \
    const MatMulTask *t = (const MatMulTask *)data;                                                 \
    const int64_t groups = t->n / 8, g0 = (int64_t)task * GROUPS_PER_TASK, rows = t->x->rows;      \
    const int64_t g1 = g0 + GROUPS_PER_TASK < groups ? g0 + GROUPS_PER_TASK : groups;              \
    if (rows < TILE_MIN_ROWS) {                                                                     \
      for (int64_t g = g0; g < g1; g++) {                                                           \
        if (rows == 1)                                                                              \
          q4_1_group_1_##LEVELS(t, g, 0);                                                           \
        else                                                                                        \
          q4_1_pass_##LEVELS(t, g, 0, rows);                                                        \
      }                                                                                             \
      return;                                                                                       \
    }                                                                                               \
    const int64_t even = rows / 2 * 2;                                                              \
    for (int64_t r = 0; r < even; r += MAX_PASS_ROWS) {                                             \
      const int64_t n = even - r < MAX_PASS_ROWS ? even - r : MAX_PASS_ROWS;                        \
      if (g1 - g0 == 2)                                                                             \
        q4_1_tiles_2_##LEVELS(t, g0, r, n);                                                         \
      else                                                                                          \
        q4_1_tiles_1_##LEVELS(t, g0, r, n);                                                         \
    }                                                                                               \
    if (even < rows)                                                                                \
      for (int64_t g = g0; g < g1; g++) q4_1_group_1_##LEVELS(t, g, even);                          \
  }
_Static_assert(GROUPS_PER_TASK == 2, "a Q4_1 tile takes a task's two groups");
_Static_assert(MAX_PASS_ROWS % TILE_ROWS == 0, "tiles fill a pass");
Q4_1_TASK(1)
Q4_1_TASK(2)

COLUMNS_TASK(q8_0, 1)
COLUMNS_TASK(q8_0, 2)


size_t scratch_bytes(int64_t rows, int64_t blocks, int levels) {
  return (size_t)(rows * blocks) * (size_t)(QK * levels + 3 * (int64_t)sizeof(float));
}

/* The scalar twin of round_block: the same float operations, one value at a time. */
static float round_block_reference(float v[QK], int8_t *q, float *sum) {
  float amax = 0.0f;
  for (int i = 0; i < QK; i++) amax = fmaxf(amax, fabsf(v[i]));
  const float d = amax / 127.0f, inv = d > 0.0f ? 1.0f / d : 0.0f;
  int32_t total = 0;
  for (int i = 0; i < QK; i++) {
    const float rounded = rintf(v[i] * inv); /* to nearest, ties to even, as _mm256_round_ps */
    const int32_t r = (int32_t)rounded;
    total += r;
    q[i] = (int8_t)(r > 127 ? 127 : r < -128 ? -128 : r);
    v[i] = fmaf(-rounded, d, v[i]);
  }
  *sum = fmaf(d, (float)total, *sum);
  return d;
}

/* The block sum for Q4_1's minimum is taken over the rounded values, as the dot product is:
 * then both terms see the same x and the rounding error scales with w = d*q + m (centred near
 * 0) rather than with q (0..15). Summing the unrounded x instead gave 94.6% greedy agreement
 * with the float model, against 98.4% (bench precision on its former 8 prompts x 64 tokens). */
QuantizedRows quantize_rows(const float *a, int64_t rows, int64_t blocks, int levels, void *scratch, int reference) {
  const int64_t n = rows * blocks;
  float *scale = (float *)scratch, *scale2 = scale + n, *sum = scale + 2 * n;
  int8_t *q = (int8_t *)(sum + n), *q2 = levels == 2 ? q + n * QK : NULL;
  for (int64_t i = 0; i < n; i++) {
    sum[i] = 0.0f;
    if (reference) {
      float v[QK];
      memcpy(v, a + i * QK, sizeof v);
      scale[i] = round_block_reference(v, q + i * QK, &sum[i]);
      if (q2 != NULL) scale2[i] = round_block_reference(v, q2 + i * QK, &sum[i]);
    } else {
      __m256 v[4];
      for (int j = 0; j < 4; j++) v[j] = _mm256_loadu_ps(a + i * QK + 8 * j);
      scale[i] = round_block(v, q + i * QK, &sum[i]);
      if (q2 != NULL) scale2[i] = round_block(v, q2 + i * QK, &sum[i]);
    }
  }
  const QuantizedRows x = {q, q2, scale, q2 != NULL ? scale2 : NULL, sum, rows, blocks};
  return x;
}

TaskFn avx2_columns_task(int format, int levels) {
  if (format == FORMAT_Q4_1) return levels == 2 ? q4_1_columns_2 : q4_1_columns_1;
  return levels == 2 ? q8_0_columns_2 : q8_0_columns_1;
}

static void reference_columns(const MatMulTask *t, int format, int64_t col0, int64_t col1);

#define REFERENCE_TASK(NAME, FORMAT)                                          \
  static void NAME##_reference_task(void *data, size_t task) {               \
    const MatMulTask *t = (const MatMulTask *)data;                           \
    const int64_t col0 = (int64_t)task * GROUPS_PER_TASK * GROUP;             \
    const int64_t col1 = col0 + GROUPS_PER_TASK * GROUP;                      \
    reference_columns(t, FORMAT, col0, col1 < t->n ? col1 : t->n);            \
  }
REFERENCE_TASK(q4_1, FORMAT_Q4_1)
REFERENCE_TASK(q8_0, FORMAT_Q8_0)

TaskFn columns_task(int kernel, int format, int levels) {
  switch (kernel) {
    case KERNEL_SCALAR: return format == FORMAT_Q4_1 ? q4_1_reference_task : q8_0_reference_task;
    case KERNEL_AVX2: return avx2_columns_task(format, levels);
    case KERNEL_AVX512: return avx512_columns_task(format, levels);
    default: return NULL;
  }
}

const char *kernel_name(int kernel) {
  switch (kernel) {
    case KERNEL_SCALAR: return "scalar";
    case KERNEL_AVX2: return "avx2";
    case KERNEL_AVX512: return "avx512-vnni";
    default: return "none";
  }
}

/* The library is compiled for AVX2 and FMA (native_ops checks the CPU before building it), so
 * the scalar and AVX2 kernels run wherever it loads. */
int kernel_runs_here(int kernel) {
  return kernel == KERNEL_SCALAR || kernel == KERNEL_AVX2 || (kernel == KERNEL_AVX512 && avx512_supported());
}

static char problem_text[240];

/* SLM_KERNEL's choice, or the fastest kernel; 0 (and problem_text) for a bad choice. */
static int choose_kernel(void) {
  const char *wanted = getenv("SLM_KERNEL");
  if (wanted == NULL || *wanted == '\0' || strcmp(wanted, "auto") == 0)
    return avx512_supported() ? KERNEL_AVX512 : KERNEL_AVX2;
  for (int kernel = KERNEL_SCALAR; kernel <= KERNEL_AVX512; kernel++)
    if (strcmp(wanted, kernel_name(kernel)) == 0) {
      if (kernel_runs_here(kernel)) return kernel;
      snprintf(problem_text, sizeof problem_text,
               "SLM_KERNEL=%s: this CPU cannot run that kernel (it lacks AVX-512 F/BW/VL/VNNI); it runs scalar "
               "and avx2, or auto",
               wanted);
      return 0;
    }
  snprintf(problem_text, sizeof problem_text,
           "SLM_KERNEL=%.40s is not a kernel: use auto, scalar, avx2 or avx512-vnni", wanted);
  return 0;
}

/* Read once, like the CPU's answer (a benign race: every thread computes the same). */
int chosen_kernel(void) {
  static int known = -1;
  int kernel = __atomic_load_n(&known, __ATOMIC_ACQUIRE);
  if (kernel < 0) {
    kernel = choose_kernel();
    __atomic_store_n(&known, kernel, __ATOMIC_RELEASE);
  }
  return kernel;
}

const char *kernel_problem(void) { return chosen_kernel() == 0 ? problem_text : NULL; }

size_t column_tasks(int64_t n) { return (size_t)((n / GROUP + GROUPS_PER_TASK - 1) / GROUPS_PER_TASK); }

/* Integer dot product of one block of column COL with activation block Q: exact, as the AVX2
 * kernel's (its int16 partial sums stay below 2^15: see Q4_1_GROUP and Q8_0_GROUP). */
static int32_t block_dot(const MatMulTask *t, int format, int64_t col, int64_t b, const int8_t *q) {
  const int64_t nb = t->x->blocks, g = col / GROUP, j = col % GROUP;
  int32_t dot = 0;
  if (format == FORMAT_Q4_1) {
    const uint8_t *w = (const uint8_t *)t->weights + (g * nb + b) * 128;
    for (int s = 0; s < 4; s++)
      for (int e = 0; e < 4; e++) {
        const uint8_t byte = w[s * 32 + j * 4 + e];
        dot += (int32_t)(byte & 0x0F) * q[4 * s + e] + (int32_t)(byte >> 4) * q[16 + 4 * s + e];
      }
  } else {
    const int8_t *w = (const int8_t *)t->weights + (g * nb + b) * 256;
    for (int s = 0; s < 8; s++)
      for (int e = 0; e < 4; e++) dot += (int32_t)w[s * 32 + j * 4 + e] * q[4 * s + e];
  }
  return dot;
}

/* Columns COL0..COL1-1 of every row. */
static void reference_columns(const MatMulTask *t, int format, int64_t col0, int64_t col1) {
  const QuantizedRows *x = t->x;
  const int64_t nb = x->blocks;
  for (int64_t r = 0; r < x->rows; r++)
    for (int64_t col = col0; col < col1; col++) {
      const int64_t at = (col / GROUP * nb) * GROUP + col % GROUP; /* scales[g][b][j], b = 0 */
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; b++) {
        const int64_t rb = r * nb + b;
        float dot = (float)block_dot(t, format, col, b, x->q + rb * QK) * x->scale[rb];
        if (x->q2 != NULL) dot = fmaf((float)block_dot(t, format, col, b, x->q2 + rb * QK), x->scale2[rb], dot);
        acc = fmaf(dot, t->scales[at + b * GROUP], acc);
        if (format == FORMAT_Q4_1) acc = fmaf(t->mins[at + b * GROUP], x->sum[rb], acc);
      }
      t->out[r * t->n + col] = acc;
    }
}

void matmul_reference(const MatMulTask *t, int format) { reference_columns(t, format, 0, t->n); }

void gather_q8_0(const int8_t *weights, const float *scales, int64_t blocks, const int64_t *ids, int64_t count, float *out) {
  for (int64_t r = 0; r < count; r++) {
    const int64_t g = ids[r] / GROUP, j = ids[r] % GROUP;
    for (int64_t b = 0; b < blocks; b++) {
      const int8_t *w = weights + (g * blocks + b) * 256 + j * 4;
      const float d = scales[(g * blocks + b) * GROUP + j];
      float *row = out + r * blocks * QK + b * QK;
      for (int s = 0; s < 8; s++)
        for (int e = 0; e < 4; e++) row[4 * s + e] = d * (float)w[s * 32 + e];
    }
  }
}

/* ---- entry points for the tests (tests/core/test_native_kernels.py), without onnxruntime ---- */
SLM_EXPORT int slm_gguf_layout_version(void) { return SLM_GGUF_LAYOUT_VERSION; }

/* Which kernel the ops run ("none" when SLM_KERNEL asks for one they cannot: see the problem). */
SLM_EXPORT const char *slm_gguf_kernel(void) { return kernel_name(chosen_kernel()); }
SLM_EXPORT const char *slm_gguf_kernel_problem(void) { return kernel_problem(); }

enum { KERNEL_CHOSEN = 0 };

/* OUT [rows, n] = A [rows, k] x the blocks, by KERNEL: the one the ops run (KERNEL_CHOSEN), or
 * KERNEL_SCALAR, KERNEL_AVX2, KERNEL_AVX512 (its tasks run one after another). Returns 0; -1 for
 * bad sizes or no memory; -2 for a kernel this CPU cannot run. */
SLM_EXPORT int slm_gguf_matmul(int format, int levels, int kernel, const float *a, int64_t rows, int64_t k,
                               const void *weights, const float *scales, const float *mins, int64_t n, float *out) {
  if ((format != FORMAT_Q4_1 && format != FORMAT_Q8_0) || (levels != 1 && levels != 2) || rows < 0 || k <= 0 ||
      k % QK != 0 || n <= 0 || n % GROUP != 0 || (format == FORMAT_Q4_1 && mins == NULL) || kernel < 0 ||
      kernel > KERNEL_AVX512)
    return -1;
  if (kernel == KERNEL_CHOSEN) kernel = chosen_kernel();
  if (!kernel_runs_here(kernel)) return -2;
  void *scratch = malloc(scratch_bytes(rows, k / QK, levels) + 1);
  if (scratch == NULL) return -1;
  const QuantizedRows x = quantize_rows(a, rows, k / QK, levels, scratch, kernel == KERNEL_SCALAR);
  MatMulTask task = {&x, weights, scales, format == FORMAT_Q4_1 ? mins : NULL, out, n};
  const TaskFn fn = columns_task(kernel, format, levels);
  for (size_t i = 0; i < column_tasks(n); i++) fn(&task, i);
  free(scratch);
  return 0;
}

SLM_EXPORT void slm_gguf_gather_q8_0(const int8_t *weights, const float *scales, int64_t blocks, const int64_t *ids,
                                     int64_t count, float *out) {
  gather_q8_0(weights, scales, blocks, ids, count, out);
}
