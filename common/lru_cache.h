// common/lru_cache.h: a map with a fixed capacity that forgets its least recently used entry to
// make room for a new one (the GPU's cuBLASLt plans: one per product shape, so a run whose shapes
// keep changing must not keep every plan forever). Values are destroyed when forgotten, so a
// value type that owns resources (descriptors) frees them then. Not thread-safe: the owner locks.
#pragma once
#include <cstddef>
#include <list>
#include <map>
#include <utility>

namespace wr {

template <typename Key, typename Value>
class LruCache {
  public:
    explicit LruCache(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

    // The value of `key`, now the most recently used, or null when absent.
    Value* find(const Key& key) {
        const auto it = index_.find(key);
        if (it == index_.end()) return nullptr;
        entries_.splice(entries_.begin(), entries_, it->second);  // to the front; iterators stay valid
        return &it->second->second;
    }

    // Adds (or replaces) the value of `key` as the most recently used; when that makes more than
    // `capacity` entries, the least recently used one is destroyed. Returns the stored value.
    Value& insert(const Key& key, Value value) {
        if (Value* existing = find(key)) {
            *existing = std::move(value);
            return *existing;
        }
        entries_.emplace_front(key, std::move(value));
        index_.emplace(key, entries_.begin());
        if (entries_.size() > capacity_) {
            index_.erase(entries_.back().first);
            entries_.pop_back();
            evicted_++;
        }
        return entries_.front().second;
    }

    size_t size() const { return entries_.size(); }
    size_t capacity() const { return capacity_; }
    size_t evicted() const { return evicted_; }  // entries forgotten so far

  private:
    using Entries = std::list<std::pair<Key, Value>>;  // most recently used first
    size_t capacity_;
    size_t evicted_ = 0;
    Entries entries_;
    std::map<Key, typename Entries::iterator> index_;
};

}  // namespace wr
