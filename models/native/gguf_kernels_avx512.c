/* The GGUF block matmuls with AVX-512 VNNI, used when the CPU has it (gguf_kernels.c asks
 * avx512_columns_task; it answers NULL elsewhere, and the AVX2 kernels run).
 *
 * Why: with several rows a step the AVX2 kernel is compute-bound, not memory-bound (4 rows cost
 * 1.5x one row in the q4_1 matmuls while the weights are read once). Two things cut its
 * instructions per weight byte by about four:
 *  - vpdpbusd multiplies u8 x s8, sums each 4 and adds them to an int32 lane in one instruction,
 *    where AVX2 needs maddubs + add (and a madd at the end of each block);
 *  - 512-bit vectors take two column groups (16 columns) at once: the interleaved layout of
 *    gguf_kernels.h puts group g+1 right after group g, for weights, scales and the output.
 * The integer sums are exact either way (AVX2's int16 partial sums never saturate), and the float
 * operations per lane are the AVX2 kernel's, in its order: results agree bit for bit with the
 * scalar reference (tests/core/test_native_kernels.py runs both kernels against it).
 *
 * Only the functions below are compiled for AVX-512 (target attribute), so the library still
 * loads and runs on a CPU without it.
 */
#include "gguf_kernels.h"

#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

_Static_assert(GROUPS_PER_TASK == 2, "the pair kernels take a task's two groups at once");

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

AVX512 static inline __m512i broadcast4(const int8_t *p) {
  int32_t v;
  memcpy(&v, p, sizeof v);
  return _mm512_set1_epi32(v);
}

/* 32 bytes of group g (low half) and of the next group, NEXT bytes on (high half). */
AVX512 static inline __m512i load_pair(const void *p, int64_t next) {
  const __m256i a = _mm256_loadu_si256((const __m256i *)p);
  const __m256i b = _mm256_loadu_si256((const __m256i *)((const uint8_t *)p + next));
  return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

/* The pair kernels read two streams at once, which the hardware prefetcher follows less well
 * than one: ask for both groups' block AHEAD blocks on (prefetching never faults, so running past
 * the end is harmless). Measured on 53 MB of weights, one core: 8 rows 6.41 -> 5.05 ms. */
enum { AHEAD = 16 };
AVX512 static inline void prefetch_pair(const void *p, int64_t next, int bytes) {
  for (int line = 0; line < bytes; line += 64) {
    _mm_prefetch((const char *)p + line, _MM_HINT_T0);
    _mm_prefetch((const char *)p + next + line, _MM_HINT_T0);
  }
}

AVX512 static inline __m512 load_pair_ps(const float *p, int64_t next) {
  const __m512d a = _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(p)));
  return _mm512_castpd_ps(_mm512_insertf64x4(a, _mm256_castps_pd(_mm256_loadu_ps(p + next)), 1));
}

/* ROWS rows against groups g and g+1, for 4 and more rows (compute-bound, so 512 bits pay); or
 * g twice when PAIR is 0 (the last, odd group; then only its 8 columns are stored). Each row has separate accumulators for the low and high nibbles so
 * that consecutive vpdpbusd do not wait on each other. */
#define Q4_1_PAIR(ROWS, LEVELS)                                                                          \
  AVX512 static void q4_1_pair_##ROWS##_##LEVELS(const MatMulTask *t, int64_t g, int64_t r, int pair) {   \
    const QuantizedRows *x = t->x;                                                                   \
    const int64_t nb = x->blocks, wnext = pair ? nb * 128 : 0, snext = pair ? nb * 8 : 0;            \
    const uint8_t *w = (const uint8_t *)t->weights + g * nb * 128;                                   \
    const float *d = t->scales + g * nb * 8, *m = t->mins + g * nb * 8;                              \
    const __m512i low = _mm512_set1_epi8(0x0F);                                                      \
    __m512 acc[ROWS];                                                                                \
    for (int k = 0; k < ROWS; k++) acc[k] = _mm512_setzero_ps();                                     \
    for (int64_t b = 0; b < nb; b++) {                                                               \
      __m512i s1[ROWS][2], s2[ROWS][2];                                                              \
      for (int k = 0; k < ROWS; k++) s1[k][0] = s1[k][1] = s2[k][0] = s2[k][1] = _mm512_setzero_si512(); \
      prefetch_pair(w + (b + AHEAD) * 128, wnext, 128);                                              \
      for (int s = 0; s < 4; s++) {                                                                  \
        const __m512i v = load_pair(w + b * 128 + s * 32, wnext);                                    \
        const __m512i lo = _mm512_and_si512(v, low), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low); \
        for (int k = 0; k < ROWS; k++) {                                                             \
          const int64_t at = ((r + k) * nb + b) * QK + 4 * s;                                        \
          s1[k][0] = _mm512_dpbusd_epi32(s1[k][0], lo, broadcast4(x->q + at));                       \
          s1[k][1] = _mm512_dpbusd_epi32(s1[k][1], hi, broadcast4(x->q + at + 16));                  \
          if (LEVELS == 2) {                                                                         \
            s2[k][0] = _mm512_dpbusd_epi32(s2[k][0], lo, broadcast4(x->q2 + at));                    \
            s2[k][1] = _mm512_dpbusd_epi32(s2[k][1], hi, broadcast4(x->q2 + at + 16));               \
          }                                                                                          \
        }                                                                                            \
      }                                                                                              \
      const __m512 dv = load_pair_ps(d + b * 8, snext), mv = load_pair_ps(m + b * 8, snext);         \
      for (int k = 0; k < ROWS; k++) {                                                               \
        const int64_t rb = (r + k) * nb + b;                                                         \
        const __m512i i1 = _mm512_add_epi32(s1[k][0], s1[k][1]);                                     \
        __m512 dot = _mm512_mul_ps(_mm512_cvtepi32_ps(i1), _mm512_set1_ps(x->scale[rb]));            \
        if (LEVELS == 2)                                                                             \
          dot = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s2[k][0], s2[k][1])),            \
                                _mm512_set1_ps(x->scale2[rb]), dot);                                 \
        acc[k] = _mm512_fmadd_ps(dot, dv, acc[k]);                                                   \
        acc[k] = _mm512_fmadd_ps(mv, _mm512_set1_ps(x->sum[rb]), acc[k]);                            \
      }                                                                                              \
    }                                                                                                \
    for (int k = 0; k < ROWS; k++) _mm512_mask_storeu_ps(t->out + (r + k) * t->n + g * 8, pair ? 0xFFFF : 0x00FF, acc[k]); \
  }

/* Signed x signed: vpdpbusd wants u8 x s8, so the weight's sign moves onto the activation (the
 * AVX2 kernel's sign trick; activations stay within +-127, so negating one cannot overflow). */
#define Q8_0_PAIR(ROWS, LEVELS)                                                                          \
  AVX512 static void q8_0_pair_##ROWS##_##LEVELS(const MatMulTask *t, int64_t g, int64_t r, int pair) {   \
    const QuantizedRows *x = t->x;                                                                   \
    const int64_t nb = x->blocks, wnext = pair ? nb * 256 : 0, snext = pair ? nb * 8 : 0;            \
    const int8_t *w = (const int8_t *)t->weights + g * nb * 256;                                     \
    const float *d = t->scales + g * nb * 8;                                                         \
    const __m512i zero = _mm512_setzero_si512();                                                     \
    __m512 acc[ROWS];                                                                                \
    for (int k = 0; k < ROWS; k++) acc[k] = _mm512_setzero_ps();                                     \
    for (int64_t b = 0; b < nb; b++) {                                                               \
      __m512i s1[ROWS][2], s2[ROWS][2];                                                              \
      for (int k = 0; k < ROWS; k++) s1[k][0] = s1[k][1] = s2[k][0] = s2[k][1] = _mm512_setzero_si512(); \
      prefetch_pair(w + (b + AHEAD) * 256, wnext, 256);                                              \
      for (int s = 0; s < 8; s++) {                                                                  \
        const __m512i v = load_pair(w + b * 256 + s * 32, wnext);                                    \
        const __m512i magnitude = _mm512_abs_epi8(v);                                                \
        const __mmask64 negative = _mm512_movepi8_mask(v);                                           \
        for (int k = 0; k < ROWS; k++) {                                                             \
          const int64_t at = ((r + k) * nb + b) * QK + 4 * s;                                        \
          const __m512i xq = broadcast4(x->q + at);                                                  \
          s1[k][s & 1] = _mm512_dpbusd_epi32(s1[k][s & 1], magnitude, _mm512_mask_sub_epi8(xq, negative, zero, xq)); \
          if (LEVELS == 2) {                                                                         \
            const __m512i xq2 = broadcast4(x->q2 + at);                                              \
            s2[k][s & 1] = _mm512_dpbusd_epi32(s2[k][s & 1], magnitude, _mm512_mask_sub_epi8(xq2, negative, zero, xq2)); \
          }                                                                                          \
        }                                                                                            \
      }                                                                                              \
      const __m512 dv = load_pair_ps(d + b * 8, snext);                                              \
      for (int k = 0; k < ROWS; k++) {                                                               \
        const int64_t rb = (r + k) * nb + b;                                                         \
        __m512 dot = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s1[k][0], s1[k][1])), _mm512_set1_ps(x->scale[rb])); \
        if (LEVELS == 2)                                                                             \
          dot = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s2[k][0], s2[k][1])),            \
                                _mm512_set1_ps(x->scale2[rb]), dot);                                 \
        acc[k] = _mm512_fmadd_ps(dot, dv, acc[k]);                                                   \
      }                                                                                              \
    }                                                                                                \
    for (int k = 0; k < ROWS; k++) _mm512_mask_storeu_ps(t->out + (r + k) * t->n + g * 8, pair ? 0xFFFF : 0x00FF, acc[k]); \
  }

#define ALL_ROWS(KIND, LEVELS) \
  KIND(1, LEVELS)              \
  KIND(2, LEVELS)              \
  KIND(3, LEVELS)              \
  KIND(4, LEVELS)
ALL_ROWS(Q4_1_PAIR, 1)
ALL_ROWS(Q4_1_PAIR, 2)
ALL_ROWS(Q8_0_PAIR, 1)
ALL_ROWS(Q8_0_PAIR, 2)

/* One group of 8 columns, 256 bits wide: for 1-3 rows, where the matmul is bound by reading the
 * weights, this kernel's single sequential stream reads them faster than the pair kernel's two
 * (measured: 2.9 vs 3.4 ms for 53 MB of weights on one core), and vpdpbusd still halves the work. */
AVX512 static inline __m256i broadcast4_256(const int8_t *p) {
  int32_t v;
  memcpy(&v, p, sizeof v);
  return _mm256_set1_epi32(v);
}

#define Q4_1_ONE(ROWS, LEVELS)                                                                           \
  AVX512 static void q4_1_one_##ROWS##_##LEVELS(const MatMulTask *t, int64_t g, int64_t r) {             \
    const QuantizedRows *x = t->x;                                                                   \
    const int64_t nb = x->blocks;                                                                    \
    const uint8_t *w = (const uint8_t *)t->weights + g * nb * 128;                                   \
    const float *d = t->scales + g * nb * 8, *m = t->mins + g * nb * 8;                              \
    const __m256i low = _mm256_set1_epi8(0x0F);                                                      \
    __m256 acc[ROWS];                                                                                \
    for (int k = 0; k < ROWS; k++) acc[k] = _mm256_setzero_ps();                                     \
    for (int64_t b = 0; b < nb; b++) {                                                               \
      __m256i s1[ROWS][2], s2[ROWS][2];                                                              \
      for (int k = 0; k < ROWS; k++) s1[k][0] = s1[k][1] = s2[k][0] = s2[k][1] = _mm256_setzero_si256(); \
      for (int s = 0; s < 4; s++) {                                                                  \
        const __m256i v = _mm256_loadu_si256((const __m256i *)(w + b * 128 + s * 32));               \
        const __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low); \
        for (int k = 0; k < ROWS; k++) {                                                             \
          const int64_t at = ((r + k) * nb + b) * QK + 4 * s;                                        \
          s1[k][0] = _mm256_dpbusd_epi32(s1[k][0], lo, broadcast4_256(x->q + at));                   \
          s1[k][1] = _mm256_dpbusd_epi32(s1[k][1], hi, broadcast4_256(x->q + at + 16));              \
          if (LEVELS == 2) {                                                                         \
            s2[k][0] = _mm256_dpbusd_epi32(s2[k][0], lo, broadcast4_256(x->q2 + at));                \
            s2[k][1] = _mm256_dpbusd_epi32(s2[k][1], hi, broadcast4_256(x->q2 + at + 16));           \
          }                                                                                          \
        }                                                                                            \
      }                                                                                              \
      const __m256 dv = _mm256_loadu_ps(d + b * 8), mv = _mm256_loadu_ps(m + b * 8);                 \
      for (int k = 0; k < ROWS; k++) {                                                               \
        const int64_t rb = (r + k) * nb + b;                                                         \
        __m256 dot = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s1[k][0], s1[k][1])),         \
                                   _mm256_set1_ps(x->scale[rb]));                                    \
        if (LEVELS == 2)                                                                             \
          dot = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s2[k][0], s2[k][1])),            \
                                _mm256_set1_ps(x->scale2[rb]), dot);                                 \
        acc[k] = _mm256_fmadd_ps(dot, dv, acc[k]);                                                   \
        acc[k] = _mm256_fmadd_ps(mv, _mm256_set1_ps(x->sum[rb]), acc[k]);                            \
      }                                                                                              \
    }                                                                                                \
    for (int k = 0; k < ROWS; k++) _mm256_storeu_ps(t->out + (r + k) * t->n + g * 8, acc[k]);        \
  }

#define Q8_0_ONE(ROWS, LEVELS)                                                                           \
  AVX512 static void q8_0_one_##ROWS##_##LEVELS(const MatMulTask *t, int64_t g, int64_t r) {             \
    const QuantizedRows *x = t->x;                                                                   \
    const int64_t nb = x->blocks;                                                                    \
    const int8_t *w = (const int8_t *)t->weights + g * nb * 256;                                     \
    const float *d = t->scales + g * nb * 8;                                                         \
    __m256 acc[ROWS];                                                                                \
    for (int k = 0; k < ROWS; k++) acc[k] = _mm256_setzero_ps();                                     \
    for (int64_t b = 0; b < nb; b++) {                                                               \
      __m256i s1[ROWS][2], s2[ROWS][2];                                                              \
      for (int k = 0; k < ROWS; k++) s1[k][0] = s1[k][1] = s2[k][0] = s2[k][1] = _mm256_setzero_si256(); \
      for (int s = 0; s < 8; s++) {                                                                  \
        const __m256i v = _mm256_loadu_si256((const __m256i *)(w + b * 256 + s * 32));               \
        const __m256i magnitude = _mm256_sign_epi8(v, v);                                            \
        for (int k = 0; k < ROWS; k++) {                                                             \
          const int64_t at = ((r + k) * nb + b) * QK + 4 * s;                                        \
          s1[k][s & 1] = _mm256_dpbusd_epi32(s1[k][s & 1], magnitude, _mm256_sign_epi8(broadcast4_256(x->q + at), v)); \
          if (LEVELS == 2)                                                                           \
            s2[k][s & 1] = _mm256_dpbusd_epi32(s2[k][s & 1], magnitude, _mm256_sign_epi8(broadcast4_256(x->q2 + at), v)); \
        }                                                                                            \
      }                                                                                              \
      const __m256 dv = _mm256_loadu_ps(d + b * 8);                                                  \
      for (int k = 0; k < ROWS; k++) {                                                               \
        const int64_t rb = (r + k) * nb + b;                                                         \
        __m256 dot = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s1[k][0], s1[k][1])),         \
                                   _mm256_set1_ps(x->scale[rb]));                                    \
        if (LEVELS == 2)                                                                             \
          dot = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s2[k][0], s2[k][1])),            \
                                _mm256_set1_ps(x->scale2[rb]), dot);                                 \
        acc[k] = _mm256_fmadd_ps(dot, dv, acc[k]);                                                   \
      }                                                                                              \
    }                                                                                                \
    for (int k = 0; k < ROWS; k++) _mm256_storeu_ps(t->out + (r + k) * t->n + g * 8, acc[k]);        \
  }

#define FEW_ROWS(KIND, LEVELS) \
  KIND(1, LEVELS)              \
  KIND(2, LEVELS)              \
  KIND(3, LEVELS)
FEW_ROWS(Q4_1_ONE, 1)
FEW_ROWS(Q4_1_ONE, 2)
FEW_ROWS(Q8_0_ONE, 1)
FEW_ROWS(Q8_0_ONE, 2)

/* One task: GROUPS_PER_TASK (2) groups, every row. Up to 3 rows, each group alone (ONE kernels);
 * from 4 rows on, both groups at once, 4 rows at a time and the rest in one call of their count. */
#define PAIR_TASK(NAME, LEVELS)                                                                    \
  AVX512 static void NAME##_avx512_##LEVELS(void *data, size_t task) {                             \
    const MatMulTask *t = (const MatMulTask *)data;                                                \
    const int64_t groups = t->n / GROUP, g = (int64_t)task * GROUPS_PER_TASK, rows = t->x->rows;   \
    const int pair = g + 1 < groups;                                                               \
    if (rows < 4) {                                                                                \
      for (int64_t j = g; j < g + 1 + pair; j++) {                                                 \
        if (rows == 3) NAME##_one_3_##LEVELS(t, j, 0);                                             \
        else if (rows == 2) NAME##_one_2_##LEVELS(t, j, 0);                                        \
        else if (rows == 1) NAME##_one_1_##LEVELS(t, j, 0);                                        \
      }                                                                                            \
      return;                                                                                      \
    }                                                                                              \
    int64_t r = 0;                                                                                 \
    for (; r + 4 <= rows; r += 4) NAME##_pair_4_##LEVELS(t, g, r, pair);                           \
    switch (rows - r) {                                                                            \
      case 3: NAME##_pair_3_##LEVELS(t, g, r, pair); break;                                        \
      case 2: NAME##_pair_2_##LEVELS(t, g, r, pair); break;                                        \
      case 1: NAME##_pair_1_##LEVELS(t, g, r, pair); break;                                        \
      default: break;                                                                              \
    }                                                                                              \
  }

PAIR_TASK(q4_1, 1)
PAIR_TASK(q4_1, 2)
PAIR_TASK(q8_0, 1)
PAIR_TASK(q8_0, 2)

/* The CPU's own answer (cpuid) and the OS's (xgetbv: it saves the AVX-512 registers): asked
 * directly, as __builtin_cpu_supports said no on an AVX-512 VNNI CPU in a build by Zig's cc. */
static int detect_avx512(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0; /* OSXSAVE */
  unsigned lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 0xE6) != 0xE6) return 0; /* SSE, AVX, opmask and both ZMM halves enabled */
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  const unsigned f = 1u << 16, bw = 1u << 30, vl = 1u << 31, vnni = 1u << 11;
  return (b & f) && (b & bw) && (b & vl) && (c & vnni);
}

/* Asked once: in a virtual machine cpuid traps to the hypervisor (19 us a call here), and every
 * matmul call asks which kernel to run. */
int avx512_supported(void) {
  static int known = -1;
  int answer = __atomic_load_n(&known, __ATOMIC_RELAXED);
  if (answer < 0) {
    answer = detect_avx512();
    __atomic_store_n(&known, answer, __ATOMIC_RELAXED);
  }
  return answer;
}

TaskFn avx512_columns_task(int format, int levels) {
  if (!avx512_supported()) return NULL;
  if (format == FORMAT_Q4_1) return levels == 2 ? q4_1_avx512_2 : q4_1_avx512_1;
  return levels == 2 ? q8_0_avx512_2 : q8_0_avx512_1;
}
