/* Causal self-attention over a KV cache with a row of its own per sequence: what onnxruntime's
 * GroupQueryAttention computes for a packed QKV input with rotary embeddings (rotate-half, not
 * interleaved), no local window and no softcap, which is what a llama-family GGUF converts to.
 *
 * Row b of a call holds seqlens[b] + 1 tokens once this call's S are in: its S new tokens sit at
 * positions past .. past+S-1 (past = seqlens[b] + 1 - S), their keys and values are written into
 * the cache there, and query s attends to positions 0 .. past+s. Rows need not have the same
 * length, which is what decoding several sequences in one step needs.
 */
#ifndef SLM_GGUF_ATTENTION_H
#define SLM_GGUF_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const float *qkv;       /* [B, S, (heads + 2 * kv_heads) * head_size]: Q heads, K heads, V heads */
  const int32_t *seqlens; /* [B]: tokens of row b after this call, minus one */
  const float *cos, *sin; /* [positions, rotary / 2] */
  void *key, *value;      /* the cache, [B, kv_heads, length, head_size]: float, or IEEE half */
  float *out;             /* [B, S, heads * head_size] */
  float *scratch;         /* attention_scratch_floats(): each task's softmax weights */
  int64_t scratch_stride; /* at least the longest row + 8 */
  int64_t batch, steps, heads, kv_heads, head_size, rotary, positions, length;
  float scale;
  int half; /* the cache holds float16 (keys and values rounded once, when stored) */
} AttentionTask;

/* NULL when the task's sizes hold together (rows within the cache and the rotary tables), else
 * why not. */
const char *attention_problem(const AttentionTask *t);
/* Rotate the new keys and write them and the new values into the cache (before any head runs). */
void attention_store(const AttentionTask *t);
/* Task INDEX of attention_tasks(t): the queries of one or more query heads of one row, all its
 * steps or a range of them. With rows x kv_heads x step ranges (of 8 steps, at most 16 ranges)
 * >= 8, a task takes the query heads that share a KV head (up to 3), so each cached element is
 * widened from float16 once for all of them; else one head a task, every step, so that a single
 * decoding row still spreads over the threads. A query's arithmetic is the same either way (a row
 * gives the same bits alone and in a batch). Tasks write disjoint outputs. */
size_t attention_tasks(const AttentionTask *t);
void attention_head(void *task, size_t index);
/* Floats of t->scratch the tasks use (each its own rows of scratch_stride). */
size_t attention_scratch_floats(const AttentionTask *t);

#endif
