// kernels/embedding.h: BERT's input embeddings, the sum of three learned tables looked up per
// token: word (wte), absolute position (wpe) and token type / segment (wtt). The model then
// applies LayerNorm and dropout, which are separate ops.
//
// Forward:   out[b, t, :] = wte[ids[b, t], :] + wpe[t, :] + wtt[token_types[b, t], :]
// Backward (scatter-add; a row used by several tokens receives the sum of their gradients):
//   dwte[ids[b, t], :]         += dout[b, t, :]
//   dwpe[t, :]                 += dout[b, t, :]
//   dwtt[token_types[b, t], :] += dout[b, t, :]
// The backward pass gives each thread a block of channels and walks the tokens in order, so
// every sum has a fixed order whatever the thread count, without atomics.
//
// The caller guarantees 0 <= ids < V, T <= max positions and 0 <= token_types < types
// (the data layer validates them). token_types may be null: every token is type 0, as in
// Hugging Face when token_type_ids is not given.
// Not here: the tied MLM decoder's use of wte (that is a matmul, and its gradient is added to
// dwte by the linear op).
#pragma once
#include "kernels/common.h"

namespace wr {

// out[B, T, C]  <-  ids[B, T], token_types[B, T] (or null), wte[V, C], wpe[maxT, C], wtt[types, C]
void embedding_forward(float* out, const int* ids, const int* token_types, const float* wte, const float* wpe,
                       const float* wtt, int B, int T, int C);

// dwte[V, C], dwpe[maxT, C], dwtt[types, C]  +=  from dout[B, T, C]; any gradient may be null.
void embedding_backward(float* dwte, float* dwpe, float* dwtt, const float* dout, const int* ids,
                        const int* token_types, int B, int T, int C);

}  // namespace wr
