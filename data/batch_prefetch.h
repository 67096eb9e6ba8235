// data/batch_prefetch.h: the next training batch made on a second host thread while the device
// trains on the current one. A GPU step leaves the host waiting; making the batch (reading
// shards, masking) in that time takes it off the step. On the CPU the engine's threads are busy,
// so there the batch is made on demand (the same batches, the same order).
//
// A checkpoint must record where the *consumed* batches end, not the prefetched one, so every
// batch comes with the batcher's state right after it was made: that is what a save stores.
//
//   BatchPrefetcher<MlmBatcher, MlmBatch> batches(train, /*background=*/gpu);
//   batches.next(batch, state);   // batch as train.next_batch(batch) gives it; state: train.state() after
#pragma once
#include <future>
#include <utility>

namespace wr {

template <class Batcher, class Batch>
class BatchPrefetcher {
  public:
    using State = decltype(std::declval<const Batcher&>().state());

    // The batcher must not be used by anyone else while the prefetcher lives.
    BatchPrefetcher(Batcher& batcher, bool background) : batcher_(batcher), background_(background) {}
    ~BatchPrefetcher() {
        if (pending_.valid()) pending_.wait();
    }
    BatchPrefetcher(const BatchPrefetcher&) = delete;
    BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

    // The next batch and the batcher's state just after it; then, in the background, the one after.
    void next(Batch& batch, State& state_after) {
        if (!pending_.valid()) start();
        pending_.get();  // rethrows what making the batch threw
        std::swap(batch, ready_);
        state_after = ready_state_;
        if (background_) start();
    }

  private:
    void start() {
        pending_ = std::async(background_ ? std::launch::async : std::launch::deferred, [this] {
            batcher_.next_batch(ready_);
            ready_state_ = batcher_.state();
        });
    }

    Batcher& batcher_;
    bool background_;
    Batch ready_;
    State ready_state_{};
    std::future<void> pending_;
};

}  // namespace wr
