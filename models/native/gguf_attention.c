/* Causal attention over per-row KV caches (declared and documented in gguf_attention.h).
 *
 * Why not onnxruntime's GroupQueryAttention: decoding several rows a step, it cost 0.7 ms a step
 * for one row and 2.0 ms for four (30 layers of SmolLM2, ~150 cached tokens; profiled), while
 * the arithmetic is ~10 MFLOP a row. Each (row, head) there is a general GEMM call with M = 1
 * that transposes and packs the head's keys first, so the packing, not the math, grows with the
 * rows. Here a query reads its keys and values in place: scores four keys at a time, a softmax
 * with a vectorized exp, then the weighted sum of values into registers.
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

/* 8 cached elements from float or half storage, as floats. */
#define LOAD_F32(p) _mm256_loadu_ps(p)
#define LOAD_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))

/* scores[i] = scale * q . k_i for keys 0..n-1 (rows of H elements), four keys a pass. */
#define SCORE(NAME, T, LOAD)                                                                         \
  static void NAME(const float *q, const T *k, int64_t n, int64_t h, float scale, float *scores) {    \
    int64_t i = 0;                                                                                   \
    for (; i + 4 <= n; i += 4) {                                                                     \
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                    \
      for (int64_t d = 0; d < h; d += 8) {                                                           \
        const __m256 qv = _mm256_loadu_ps(q + d);                                                    \
        a0 = _mm256_fmadd_ps(qv, LOAD(k + i * h + d), a0);                                           \
        a1 = _mm256_fmadd_ps(qv, LOAD(k + (i + 1) * h + d), a1);                                     \
        a2 = _mm256_fmadd_ps(qv, LOAD(k + (i + 2) * h + d), a2);                                     \
        a3 = _mm256_fmadd_ps(qv, LOAD(k + (i + 3) * h + d), a3);                                     \
      }                                                                                              \
      /* the four horizontal sums at once: lanes 0..3 of the result are a0..a3's totals */          \
      const __m256 pairs = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));          \
      const __m128 sums = _mm_add_ps(_mm256_castps256_ps128(pairs), _mm256_extractf128_ps(pairs, 1)); \
      _mm_storeu_ps(scores + i, _mm_mul_ps(sums, _mm_set1_ps(scale)));                               \
    }                                                                                                \
    for (; i < n; i++) {                                                                             \
      __m256 a = _mm256_setzero_ps();                                                                \
      for (int64_t d = 0; d < h; d += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), LOAD(k + i * h + d), a); \
      scores[i] = hsum(a) * scale;                                                                   \
    }                                                                                                \
  }
SCORE(score_f32, float, LOAD_F32)
SCORE(score_f16, uint16_t, LOAD_F16)

/* weights[0..n) = softmax(scores) in place; the buffer has room for n rounded up to 8. */
static void softmax(float *w, int64_t n) {
  float top = -INFINITY;
  for (int64_t i = 0; i < n; i++) top = w[i] > top ? w[i] : top;
  const int64_t padded = (n + 7) / 8 * 8;
  for (int64_t i = n; i < padded; i++) w[i] = -INFINITY;
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

/* out[0..H) = sum_i weights[i] * v_i, 64 columns of registers at a time. */
#define MIX(NAME, T, LOAD)                                                                           \
  static void NAME(const float *weights, const T *v, int64_t n, int64_t h, float *out) {             \
    for (int64_t d0 = 0; d0 < h; d0 += 64) {                                                         \
      const int64_t lanes = (h - d0 < 64 ? h - d0 : 64) / 8;                                         \
      __m256 acc[8];                                                                                 \
      for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();                                      \
      for (int64_t i = 0; i < n; i++) {                                                              \
        const __m256 w = _mm256_set1_ps(weights[i]);                                                 \
        const T *row = v + i * h + d0;                                                               \
        for (int64_t j = 0; j < lanes; j++) acc[j] = _mm256_fmadd_ps(w, LOAD(row + 8 * j), acc[j]);  \
      }                                                                                              \
      for (int64_t j = 0; j < lanes; j++) _mm256_storeu_ps(out + d0 + 8 * j, acc[j]);                \
    }                                                                                                \
  }
MIX(mix_f32, float, LOAD_F32)
MIX(mix_f16, uint16_t, LOAD_F16)

static void one_head(const AttentionTask *t, int64_t b, int64_t n) {
  const int64_t h = t->head_size, total = (int64_t)t->seqlens[b] + 1, past = total - t->steps;
  const int64_t kv = n / (t->heads / t->kv_heads);
  const int64_t at = (b * t->kv_heads + kv) * t->length * h;
  float q[MAX_HEAD];
  float *weights = t->scratch + (b * t->heads + n) * t->scratch_stride;
  for (int64_t s = 0; s < t->steps; s++) {
    const int64_t seen = past + s + 1; /* causal: positions 0 .. past+s */
    rotate(t, t->qkv + (b * t->steps + s) * width(t) + n * h, past + s, q);
    float *out = t->out + ((b * t->steps + s) * t->heads + n) * h;
    if (t->half) {
      score_f16(q, (const uint16_t *)t->key + at, seen, h, t->scale, weights);
      softmax(weights, seen);
      mix_f16(weights, (const uint16_t *)t->value + at, seen, h, out);
    } else {
      score_f32(q, (const float *)t->key + at, seen, h, t->scale, weights);
      softmax(weights, seen);
      mix_f32(weights, (const float *)t->value + at, seen, h, out);
    }
  }
}

size_t attention_tasks(const AttentionTask *t) { return (size_t)(t->batch * t->heads); }

void attention_head(void *task, size_t index) {
  const AttentionTask *t = (const AttentionTask *)task;
  one_head(t, (int64_t)index / t->heads, (int64_t)index % t->heads);
}
