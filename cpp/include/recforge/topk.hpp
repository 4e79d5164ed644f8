// Bounded top-k selection with one deterministic order everywhere:
// a ranks before b  <=>  a.score > b.score, or equal scores and a.index < b.index.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace recforge {

template <class S, class I>
struct Scored {
    S score;
    I index;
};

template <class S, class I>
inline bool ranks_before(const Scored<S, I>& a, const Scored<S, I>& b) {
    return a.score > b.score || (a.score == b.score && a.index < b.index);
}

// Keeps the best min(count, k) of buf[0, count) sorted best first; returns how many.
// nth_element bounds the work to O(count + k log k): whole rows are never sorted.
template <class S, class I>
inline size_t select_topk(Scored<S, I>* buf, size_t count, size_t k) {
    auto before = [](const Scored<S, I>& a, const Scored<S, I>& b) { return ranks_before(a, b); };
    if (count > k) {
        std::nth_element(buf, buf + k, buf + count, before);
        count = k;
    }
    std::sort(buf, buf + count, before);
    return count;
}

// Heap of at most k entries with the worst on top (so a better candidate replaces it).
template <class S, class I>
struct WorstOnTop {
    bool operator()(const Scored<S, I>& a, const Scored<S, I>& b) const { return ranks_before(a, b); }
};

// m bounded heaps, one per output row, that several threads may push into at once.
// A lock-free threshold read rejects most candidates without taking the row's lock.
template <class S, class I>
class SharedRowHeaps {
public:
    SharedRowHeaps(int64_t rows, int64_t k)
        : k_(k), entries_(static_cast<size_t>(rows * k)), counts_(rows, 0),
          threshold_(rows), locks_(rows) {
        for (int64_t r = 0; r < rows; ++r) {
            threshold_[r].store(-std::numeric_limits<S>::infinity(), std::memory_order_relaxed);
            locks_[r].clear();
        }
    }

    // True when (score, index) could still enter row r (cheap, racy-but-safe pre-check:
    // the threshold only rises, so a rejected candidate would be rejected under the lock too).
    bool may_enter(int64_t r, S score) const {
        return score >= threshold_[r].load(std::memory_order_relaxed);
    }

    void push(int64_t r, S score, I index) {
        lock(r);
        push_locked(r, Scored<S, I>{score, index});
        unlock(r);
    }

    void push_many(int64_t r, const Scored<S, I>* items, size_t n) {
        lock(r);
        for (size_t t = 0; t < n; ++t) push_locked(r, items[t]);
        unlock(r);
    }

    // Sorts row r best first (call after all pushes) and returns its entries and count.
    Scored<S, I>* finish_row(int64_t r, int64_t& count) {
        Scored<S, I>* row = &entries_[static_cast<size_t>(r * k_)];
        count = counts_[r];
        std::sort_heap(row, row + count, WorstOnTop<S, I>());
        return row;
    }

private:
    void lock(int64_t r) {
        while (locks_[r].test_and_set(std::memory_order_acquire)) {
        }
    }
    void unlock(int64_t r) { locks_[r].clear(std::memory_order_release); }

    void push_locked(int64_t r, Scored<S, I> item) {
        Scored<S, I>* row = &entries_[static_cast<size_t>(r * k_)];
        int64_t& n = counts_[r];
        WorstOnTop<S, I> cmp;
        if (n < k_) {
            row[n++] = item;
            std::push_heap(row, row + n, cmp);
        } else if (ranks_before(item, row[0])) {
            std::pop_heap(row, row + n, cmp);
            row[n - 1] = item;
            std::push_heap(row, row + n, cmp);
        } else {
            return;
        }
        if (n == k_) threshold_[r].store(row[0].score, std::memory_order_relaxed);
    }

    int64_t k_;
    std::vector<Scored<S, I>> entries_;
    std::vector<int64_t> counts_;
    std::vector<std::atomic<S>> threshold_;
    std::vector<std::atomic_flag> locks_;
};

}  // namespace recforge
