// Bounded top-k selection with one deterministic order everywhere:
// a ranks before b  <=>  a.score > b.score, or equal scores and a.index < b.index.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>
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

// Keys that order (float score, int32 index) pairs best first as plain unsigned integers:
// high half = score mapped to an order-reversing unsigned form, low half = index.
inline uint64_t pack_best_first(float score, int32_t index) {
    uint32_t bits;
    std::memcpy(&bits, &score, sizeof bits);
    bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);  // ascending with the float
    return (static_cast<uint64_t>(~bits) << 32) | static_cast<uint32_t>(index);
}

inline Scored<float, int32_t> unpack_best_first(uint64_t key) {
    uint32_t bits = ~static_cast<uint32_t>(key >> 32);
    bits = (bits & 0x80000000u) ? (bits & 0x7fffffffu) : ~bits;
    float score;
    std::memcpy(&score, &bits, sizeof score);
    return Scored<float, int32_t>{score, static_cast<int32_t>(key & 0xffffffffu)};
}

// Best k of count packed keys (ascending = best first), sorted at the front; returns how many.
// Long rows first estimate a threshold from an evenly spaced sample (twice the expected rank
// of the k-th best), move the keys that pass it to the front, and select among those only;
// if fewer than k pass, the whole row is selected as usual. Exact either way.
inline size_t select_topk_keys(uint64_t* keys, size_t count, size_t k) {
    size_t pool = count;
    constexpr size_t kSample = 256;
    if (count > 8 * k && count >= 4 * kSample) {
        uint64_t sample[kSample];
        const size_t step = count / kSample;
        for (size_t t = 0; t < kSample; ++t) sample[t] = keys[t * step];
        const size_t rank = std::min(kSample - 1, (2 * k * kSample) / count + 1);
        std::nth_element(sample, sample + rank, sample + kSample);
        const uint64_t threshold = sample[rank];
        const size_t passed = static_cast<size_t>(
            std::partition(keys, keys + count, [threshold](uint64_t key) { return key <= threshold; }) - keys);
        if (passed >= k) pool = passed;
    }
    if (pool > k) {
        std::nth_element(keys, keys + k, keys + pool);
        pool = k;
    }
    std::sort(keys, keys + pool);
    return pool;
}

// Streaming selection of the best k of a sequence, by batches: candidates that can still
// enter are appended to a buffer of up to 2k; a full buffer is cut back to its best k with
// nth_element, which raises the admission threshold. O(1) amortised per admitted candidate,
// one comparison per rejected one, and no per-candidate heap sifts. The buffer grows with what
// is admitted (never beyond 2k), so a huge k costs memory only for the candidates that exist.
template <class S, class I>
class TopKBuffer {
public:
    explicit TopKBuffer(size_t k) : k_(k), cap_(2 * k) {}

    static size_t capacity(size_t k) { return 2 * k; }

    // Every candidate that can still enter has score >= threshold().
    S threshold() const { return kth_.score; }

    void push(Scored<S, I> c) {
        if (!ranks_before(c, kth_)) return;
        buf_.push_back(c);
        if (buf_.size() == cap_) shrink();
    }

    // Sorts the best min(n, k) entries best first at the start of the buffer; returns them.
    const Scored<S, I>* finish(int64_t& count) {
        buf_.resize(select_topk(buf_.data(), buf_.size(), k_));
        count = static_cast<int64_t>(buf_.size());
        return buf_.data();
    }

    // Frees the buffer's memory (after its entries were copied out).
    void release() { std::vector<Scored<S, I>>().swap(buf_); }

private:
    void shrink() {
        auto before = [](const Scored<S, I>& a, const Scored<S, I>& b) { return ranks_before(a, b); };
        std::nth_element(buf_.begin(), buf_.begin() + (k_ - 1), buf_.end(), before);
        buf_.resize(k_);
        kth_ = buf_[k_ - 1];
    }

    std::vector<Scored<S, I>> buf_;
    size_t k_, cap_;
    // The k-th best so far (a sentinel that everything beats until the buffer first fills).
    Scored<S, I> kth_{-std::numeric_limits<S>::infinity(), std::numeric_limits<I>::max()};
};

// One TopKBuffer per output row, owned by one thread (no locks, no shared cache lines).
template <class S, class I>
class RowTopKSet {
public:
    RowTopKSet(int64_t rows, int64_t k) : rows_(static_cast<size_t>(rows), TopKBuffer<S, I>(static_cast<size_t>(k))) {}

    // Worst-case bytes of a set (every row buffer full).
    static size_t bytes(int64_t rows, int64_t k) {
        return static_cast<size_t>(rows) * (TopKBuffer<S, I>::capacity(k) * sizeof(Scored<S, I>) + sizeof(TopKBuffer<S, I>));
    }

    void push(int64_t r, S score, I index) { rows_[r].push(Scored<S, I>{score, index}); }

    void push_many(int64_t r, const Scored<S, I>* items, size_t n) {
        for (size_t t = 0; t < n; ++t) rows_[r].push(items[t]);
    }

    // Sorts row r best first (after all pushes); returns its entries and count.
    const Scored<S, I>* finish_row(int64_t r, int64_t& count) { return rows_[r].finish(count); }

    void release_row(int64_t r) { rows_[r].release(); }

private:
    std::vector<TopKBuffer<S, I>> rows_;
};

// One TopKBuffer per output row that several threads may push into at once. A lock-free
// read of the row's threshold rejects most candidates without taking the row's lock.
template <class S, class I>
class SharedRowTopK {
public:
    SharedRowTopK(int64_t rows, int64_t k)
        : rows_(static_cast<size_t>(rows), TopKBuffer<S, I>(static_cast<size_t>(k))), threshold_(rows), locks_(rows) {
        for (int64_t r = 0; r < rows; ++r) {
            threshold_[r].store(-std::numeric_limits<S>::infinity(), std::memory_order_relaxed);
            locks_[r].clear();
        }
    }

    // The threshold only rises, so a candidate rejected here would be rejected under the lock.
    bool may_enter(int64_t r, S score) const {
        return score >= threshold_[r].load(std::memory_order_relaxed);
    }

    void push(int64_t r, S score, I index) {
        lock(r);
        rows_[r].push(Scored<S, I>{score, index});
        threshold_[r].store(rows_[r].threshold(), std::memory_order_relaxed);
        unlock(r);
    }

    void push_many(int64_t r, const Scored<S, I>* items, size_t n) {
        lock(r);
        for (size_t t = 0; t < n; ++t) rows_[r].push(items[t]);
        threshold_[r].store(rows_[r].threshold(), std::memory_order_relaxed);
        unlock(r);
    }

    // Sorts row r best first (after all pushes); returns its entries and count.
    const Scored<S, I>* finish_row(int64_t r, int64_t& count) { return rows_[r].finish(count); }

    void release_row(int64_t r) { rows_[r].release(); }

private:
    void lock(int64_t r) {
        while (locks_[r].test_and_set(std::memory_order_acquire)) {
        }
    }
    void unlock(int64_t r) { locks_[r].clear(std::memory_order_release); }

    std::vector<TopKBuffer<S, I>> rows_;
    std::vector<std::atomic<S>> threshold_;
    std::vector<std::atomic_flag> locks_;
};

}  // namespace recforge
