/* Causal attention over per-row KV caches (declared and documented in gguf_attention.h).
 *
 * Why not onnxruntime's GroupQueryAttention: decoding several rows a step, it cost 0.7 ms a step
 * for one row and 2.0 ms for four (30 layers of SmolLM2, ~150 cached tokens; profiled), while
 * the arithmetic is ~10 MFLOP a row. Each (row, head) there is a general GEMM call with M = 1
 * that transposes and packs the head's keys first, so the packing, not the math, grows with the
 * rows. Here a query reads its keys and values in place: scores four keys at a time, a softmax
 * with a vectorized exp, then the weighted sum of values into registers; the query heads of one
 * KV head share each widened key and value (SmolLM2's shapes, 8 rows of 128 tokens, one thread:
 * 25-30% less time than a head at a time; one row alone, still a head a task: 9%).
 *
 * Numerics: float32 arithmetic, the softmax shifted by the row maximum as onnxruntime does;
 * the cache is float32 or float16 (CausalAttentionF16: keys and values rounded once when stored,
 * as llama.cpp's default f16 cache does; it halves the bytes a step reads per cached token);
 * sums run in another order than its GEMM, so results agree to rounding, not bit for bit
 * (tests/core/test_gguf_attention.py compares against GroupQueryAttention and a float64
 * reference). Every row is computed alone, so a row's result is the same in any batch.
 * Needs head_size % 8 == 0 (the converter keeps GroupQueryAttention otherwise).
 */
#include "gguf_attention.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

enum { MAX_HEAD = 256 };

const char *attention_problem(const AttentionTask *t) {
  if (t->head_size % 8 != 0 || t->head_size > MAX_HEAD) return "head_size must be a multiple of 8, at most 256";
  if (t->rotary < 2 || t->rotary > t->head_size || t->rotary % 2 != 0) return "the rotary tables do not fit the heads";
  if (t->kv_heads <= 0 || t->heads % t->kv_heads != 0) return "num_heads must be a multiple of kv_num_heads";
  for (int64_t b = 0; b < t->batch; b++) {
    const int64_t total = (int64_t)t->seqlens[b] + 1;
    if (total < t->steps) return "a row holds fewer tokens than this call feeds it (seqlens_k too small)";
    if (total > t->length) return "a row holds more tokens than the KV cache has room for";
    if (total > t->positions) return "a position is past the end of the rotary tables";
    if (total + 8 > t->scratch_stride) return "the scratch rows are too short";
  }
  return NULL;
}

/* x rotated for position POS into y (rotate-half: element i pairs with i + rotary/2). */
static void rotate(const AttentionTask *t, const float *x, int64_t pos, float *y) {
  const int64_t half = t->rotary / 2;
  const float *c = t->cos + pos * half, *s = t->sin + pos * half;
  for (int64_t i = 0; i < half; i++) {
    y[i] = x[i] * c[i] - x[i + half] * s[i];
    y[i + half] = x[i + half] * c[i] + x[i] * s[i];
  }
  for (int64_t i = t->rotary; i < t->head_size; i++) y[i] = x[i];
}

static int64_t width(const AttentionTask *t) { return (t->heads + 2 * t->kv_heads) * t->head_size; }

/* N floats (a multiple of 8) into the cache at element AT, rounded to half when it holds halves. */
static void put(const AttentionTask *t, void *cache, int64_t at, const float *x, int64_t n) {
  if (!t->half) {
    memcpy((float *)cache + at, x, (size_t)n * sizeof(float));
    return;
  }
  for (int64_t i = 0; i < n; i += 8)
    _mm_storeu_si128((__m128i *)((uint16_t *)cache + at + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
}

void attention_store(const AttentionTask *t) {
  const int64_t h = t->head_size;
  float rotated[MAX_HEAD];
  for (int64_t b = 0; b < t->batch; b++) {
    const int64_t past = (int64_t)t->seqlens[b] + 1 - t->steps;
    for (int64_t s = 0; s < t->steps; s++) {
      const float *token = t->qkv + (b * t->steps + s) * width(t);
      for (int64_t j = 0; j < t->kv_heads; j++) {
        const int64_t at = ((b * t->kv_heads + j) * t->length + past + s) * h;
        rotate(t, token + (t->heads + j) * h, past + s, rotated);
        put(t, t->key, at, rotated, h);
        put(t, t->value, at, token + (t->heads + t->kv_heads + j) * h, h);
      }
    }
  }
}

static float hsum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_hadd_ps(x, x);
  x = _mm_hadd_ps(x, x);
  return _mm_cvtss_f32(x);
}

/* e^x for x <= 0 (scores minus their maximum), Cephes' expf polynomial: relative error ~2e-7;
 * below -87 it returns 0. */
static __m256 exp_nonpositive(__m256 x) {
  const __m256 low = _mm256_set1_ps(-87.0f);
  const __m256 under = _mm256_cmp_ps(x, low, _CMP_LT_OQ);
  x = _mm256_max_ps(x, low);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

/* The query heads that share a KV head are computed together (up to MAX_GROUP of them): each
 * cached element, widened from float16 once, feeds every one of them (widening costs as much as
 * the multiply-add it feeds). Per head, the arithmetic is the same whatever the group. */
enum { MAX_GROUP = 3 };

/* 8 cached elements from float or half storage, as floats. */
static inline __m256 load8(const void *cache, int64_t at, int half) {
  return half ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)cache + at)))
              : _mm256_loadu_ps((const float *)cache + at);
}

/* scores[g][i] = scale * q[g] . k_i for keys 0..n-1 of the cache (rows of H elements from
 * element AT), four keys a pass; the last n % 4 one at a time.
 * A group of heads also asks for the same keys' values as it goes, which it reads right after
 * (mix_columns): attention waits on memory here, not on arithmetic (8 rows x 128 cached tokens x
 * 30 layers, 23 MB of float16, took 2.5-4x as long as the same work on one layer's 0.8 MB of
 * cache, which stays cached), and a head's values are a short stream (16 KB at 128 tokens) that
 * was only asked for once its softmax was done. One-off harness (30 layers' caches, two threads
 * taking tasks from a shared counter one at a time; AMD EPYC Zen 3, five alternations): 4 rows x
 * 128 tokens 7% less time, 8 x 128 20%, 8 x 256 31%. A task of one head (split_of: one or two
 * decoding rows of SmolLM2) ran slower with it, so it does not ask; asking for the next
 * task's keys as well gained nothing (the other thread often runs that task). Prefetches never
 * fault. */
static inline __attribute__((always_inline)) void score_group(const AttentionTask *t, const void *cache, int64_t at,
                                                             int64_t n, float q[][MAX_HEAD], int count, int half,
                                                             float **scores) {
  const int64_t h = t->head_size, row_bytes = h * (half ? 2 : 4);
  const char *values = (const char *)t->value + at * (half ? 2 : 4);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    if (count > 1)
      for (int64_t off = 0; off < 4 * row_bytes; off += 64) _mm_prefetch(values + i * row_bytes + off, _MM_HINT_T0);
    __m256 a[MAX_GROUP][4];
    for (int g = 0; g < count; g++)
      for (int j = 0; j < 4; j++) a[g][j] = _mm256_setzero_ps();
    for (int64_t d = 0; d < h; d += 8)
      for (int j = 0; j < 4; j++) {
        const __m256 k = load8(cache, at + (i + j) * h + d, half);
        for (int g = 0; g < count; g++) a[g][j] = _mm256_fmadd_ps(_mm256_loadu_ps(q[g] + d), k, a[g][j]);
      }
    for (int g = 0; g < count; g++) {
      /* the four horizontal sums at once: lanes 0..3 of the result are a[g][0..3]'s totals */
      const __m256 pairs = _mm256_hadd_ps(_mm256_hadd_ps(a[g][0], a[g][1]), _mm256_hadd_ps(a[g][2], a[g][3]));
      const __m128 sums = _mm_add_ps(_mm256_castps256_ps128(pairs), _mm256_extractf128_ps(pairs, 1));
      _mm_storeu_ps(scores[g] + i, _mm_mul_ps(sums, _mm_set1_ps(t->scale)));
    }
  }
  for (; i < n; i++) {
    __m256 a[MAX_GROUP];
    for (int g = 0; g < count; g++) a[g] = _mm256_setzero_ps();
    for (int64_t d = 0; d < h; d += 8) {
      const __m256 k = load8(cache, at + i * h + d, half);
      for (int g = 0; g < count; g++) a[g] = _mm256_fmadd_ps(_mm256_loadu_ps(q[g] + d), k, a[g]);
    }
    for (int g = 0; g < count; g++) scores[g][i] = hsum(a[g]) * t->scale;
  }
}

/* weights[0..n) = softmax(scores) in place; the buffer has room for n rounded up to 8.
 * The maximum is taken 8 lanes at a time: the scalar running maximum it replaces was a chain of
 * dependent compares that cost more than the exponentials over a long row (a 64-token prompt
 * chunk into a row holding 1024 tokens took 16% less attention time with the vector one; one-off
 * harness, two threads, AMD EPYC Zen 3). A maximum is exact in any order, and max_ps(x, most)
 * returns MOST when x is NaN, as the scalar compare skipped it. */
static void softmax(float *w, int64_t n) {
  const int64_t padded = (n + 7) / 8 * 8;
  for (int64_t i = n; i < padded; i++) w[i] = -INFINITY;
  __m256 most = _mm256_set1_ps(-INFINITY);
  for (int64_t i = 0; i < padded; i += 8) most = _mm256_max_ps(_mm256_loadu_ps(w + i), most);
  __m128 four = _mm_max_ps(_mm256_castps256_ps128(most), _mm256_extractf128_ps(most, 1));
  four = _mm_max_ps(four, _mm_movehl_ps(four, four));
  const float top = _mm_cvtss_f32(_mm_max_ss(four, _mm_shuffle_ps(four, four, 1)));
  __m256 total = _mm256_setzero_ps();
  const __m256 shift = _mm256_set1_ps(top);
  for (int64_t i = 0; i < padded; i += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(w + i), shift));
    _mm256_storeu_ps(w + i, e);
    total = _mm256_add_ps(total, e);
  }
  const __m256 inv = _mm256_set1_ps(1.0f / hsum(total));
  for (int64_t i = 0; i < padded; i += 8) _mm256_storeu_ps(w + i, _mm256_mul_ps(_mm256_loadu_ps(w + i), inv));
}

/* out[g][D0 .. D0+8*LANES) = sum_i weights[g][i] * v_i over values 0..n-1 of the cache (rows of
 * H elements from element AT), in order of i; COUNT * LANES sums in registers. */
static inline __attribute__((always_inline)) void mix_columns(const AttentionTask *t, const void *cache, int64_t at,
                                                             int64_t n, float **weights, int count, int half,
                                                             int64_t d0, int lanes, float **out) {
  const int64_t h = t->head_size;
  __m256 acc[MAX_GROUP][8];
  for (int g = 0; g < count; g++)
    for (int j = 0; j < lanes; j++) acc[g][j] = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < lanes; j++) {
      const __m256 v = load8(cache, at + i * h + d0 + 8 * j, half);
      for (int g = 0; g < count; g++) acc[g][j] = _mm256_fmadd_ps(_mm256_set1_ps(weights[g][i]), v, acc[g][j]);
    }
  for (int g = 0; g < count; g++)
    for (int j = 0; j < lanes; j++) _mm256_storeu_ps(out[g] + d0 + 8 * j, acc[g][j]);
}

/* One task's share of a call: query heads FIRST .. FIRST+COUNT-1 of row B (one KV head between
 * them), at steps S0 .. S1-1; its softmax weights go to COUNT scratch rows from SCRATCH. */
typedef struct {
  int64_t b, first, s0, s1;
  float *scratch;
} Part;

/* Every query of a Part. Inlined per (COUNT, half) so the loops above unroll into registers. */
static inline __attribute__((always_inline)) void group_queries(const AttentionTask *t, const Part *p, int count,
                                                               int half) {
  const int64_t h = t->head_size, b = p->b, past = (int64_t)t->seqlens[b] + 1 - t->steps;
  const int64_t kv = p->first / (t->heads / t->kv_heads);
  const int64_t at = (b * t->kv_heads + kv) * t->length * h;
  /* count * lanes sums in registers, at most 12 of the 16: a group of 3 heads takes 4 lanes (32
   * columns a pass). With 2 lanes its 6 sums waited on the multiply-add latency (each adds one
   * value a row, in order); 12 keep both FMA units busy, and every sum still adds its values in
   * order, so the bits are the same. */
  const int lanes = count == 1 ? 8 : 4;
  float q[MAX_GROUP][MAX_HEAD];
  for (int64_t s = p->s0; s < p->s1; s++) {
    const int64_t seen = past + s + 1; /* causal: positions 0 .. past+s */
    float *weights[MAX_GROUP], *out[MAX_GROUP];
    for (int g = 0; g < count; g++) {
      rotate(t, t->qkv + (b * t->steps + s) * width(t) + (p->first + g) * h, past + s, q[g]);
      weights[g] = p->scratch + g * t->scratch_stride;
      out[g] = t->out + ((b * t->steps + s) * t->heads + p->first + g) * h;
    }
    score_group(t, t->key, at, seen, q, count, half, weights);
    for (int g = 0; g < count; g++) softmax(weights[g], seen);
    int64_t d0 = 0;
    for (; d0 + 8 * lanes <= h; d0 += 8 * lanes) mix_columns(t, t->value, at, seen, weights, count, half, d0, lanes, out);
    if (lanes == 4 && d0 + 16 <= h) { /* a head of 48 or 80: 16 columns left, in one pass */
      mix_columns(t, t->value, at, seen, weights, count, half, d0, 2, out);
      d0 += 16;
    }
    for (; d0 < h; d0 += 8) mix_columns(t, t->value, at, seen, weights, count, half, d0, 1, out);
  }
}

/* group_queries with COUNT and the cache's type as constants (one inlined copy each). */
static void group_task(const AttentionTask *t, const Part *p, int count) {
  switch (2 * (count < MAX_GROUP ? count : MAX_GROUP) + (t->half != 0)) {
    case 2: group_queries(t, p, 1, 0); break;
    case 3: group_queries(t, p, 1, 1); break;
    case 4: group_queries(t, p, 2, 0); break;
    case 5: group_queries(t, p, 2, 1); break;
    case 6: group_queries(t, p, 3, 0); break;
    default: group_queries(t, p, 3, 1); break;
  }
}

/* How a call is cut into tasks: PER query heads and SPAN steps a task, RANGES step ranges. The
 * query heads of one KV head go together (the largest divisor of the group up to MAX_GROUP, so
 * they share each widened key and value) when that leaves tasks enough for the threads: rows x
 * KV heads x step ranges >= 8, with ranges of 8 steps, at most MAX_RANGES of them (each task has
 * its own softmax scratch, so the ranges bound what a long prompt in one call allocates). Else,
 * and for a group with no such divisor, one head a task with all its steps: a single decoding
 * row then still spreads over the threads. (SmolLM2-135M, a 64-token prompt chunk on one row: 3
 * groups x 8 ranges.) Every query's arithmetic is the same however the call is cut. */
enum { STEPS_PER_RANGE = 8, MAX_RANGES = 16 };
typedef struct {
  int64_t per, ranges, span;
} Split;

static Split split_of(const AttentionTask *t) {
  const int64_t group = t->heads / t->kv_heads;
  int64_t ranges = (t->steps + STEPS_PER_RANGE - 1) / STEPS_PER_RANGE;
  ranges = ranges < MAX_RANGES ? ranges : MAX_RANGES;
  if (t->batch * t->kv_heads * ranges >= 8)
    for (int64_t per = MAX_GROUP; per > 1; per--)
      if (group % per == 0) return (Split){per, ranges, (t->steps + ranges - 1) / ranges};
  return (Split){1, 1, t->steps};
}

size_t attention_tasks(const AttentionTask *t) {
  const Split split = split_of(t);
  return (size_t)(t->batch * t->heads / split.per * split.ranges);
}

size_t attention_scratch_floats(const AttentionTask *t) {
  return attention_tasks(t) * (size_t)split_of(t).per * (size_t)t->scratch_stride;
}

void attention_head(void *task, size_t index) {
  const AttentionTask *t = (const AttentionTask *)task;
  const Split split = split_of(t);
  const int64_t range = (int64_t)index % split.ranges, rest = (int64_t)index / split.ranges;
  const int64_t groups = t->heads / split.per, s0 = range * split.span;
  const int64_t s1 = s0 + split.span < t->steps ? s0 + split.span : t->steps;
  const Part part = {rest / groups, rest % groups * split.per, s0, s1,
                     t->scratch + (int64_t)index * split.per * t->scratch_stride};
  group_task(t, &part, (int)split.per);
}
