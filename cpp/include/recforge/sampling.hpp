// Uniform negative sampling: for user u with sorted positive items p_0 < ... < p_{m-1} among n
// items, draw r uniformly from {0, ..., n - m - 1} and return the r-th non-positive item,
//     j = r + #{k : p_k - k <= r},
// found by a binary search over the user's row (p_k - k is non-decreasing: it counts the
// non-positives below p_k). Each non-positive item is the image of exactly one r, so the draw is
// exactly uniform and never a positive, without a rejection loop over items.
//
// Randomness is counter-based (SplitMix64's output function over (key, counter)): sample i of a
// call draws from counter i alone, so the result depends on the seed and the inputs, never on
// the number of threads or on how the loop is scheduled.
#pragma once
#include <cstdint>

#include <omp.h>

namespace recforge {
namespace sampling {

inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// The counter-th 64-bit output of the stream named by key.
inline uint64_t counter_random(uint64_t key, uint64_t counter) {
    return mix64(mix64(key) + (counter + 1) * 0x9e3779b97f4a7c15ULL);
}

// Exactly uniform integer in [0, bound), bound >= 1: Lemire's multiply-shift, rejecting the
// 2^64 mod bound low products that would bias it (probability < bound / 2^64); a retry draws
// counter i of the next stream. The modulo is only computed when a rejection is possible.
inline uint64_t uniform_below(uint64_t key, uint64_t i, uint64_t bound) {
    unsigned __int128 product = static_cast<unsigned __int128>(counter_random(key, i)) * bound;
    if (static_cast<uint64_t>(product) < bound) {
        const uint64_t threshold = (0 - bound) % bound;
        for (uint64_t attempt = 1; static_cast<uint64_t>(product) < threshold; ++attempt)
            product = static_cast<unsigned __int128>(counter_random(key + attempt * 0xd1b54a32d192ed03ULL, i)) * bound;
    }
    return static_cast<uint64_t>(product >> 64);
}

// The r-th (0-based) item of [0, n) not in the sorted row positives[0..m).
inline int64_t nth_non_positive(const int64_t* positives, int64_t m, int64_t r) {
    int64_t lo = 0, hi = m;  // first k with positives[k] - k > r
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (positives[mid] - mid <= r) lo = mid + 1;
        else hi = mid;
    }
    return r + lo;
}

// out[i * n_neg + t] for users[i]: n_neg uniform non-positive items each. Every requested user
// must have at least one non-positive item (checked by the caller).
inline void uniform_negatives(const int64_t* indptr, const int64_t* indices, int64_t n_items,
                              const int64_t* users, int64_t n_users_requested, int64_t n_neg, uint64_t key,
                              int64_t* out, int num_threads) {
#pragma omp parallel for schedule(static) num_threads(num_threads)
    for (int64_t row = 0; row < n_users_requested; ++row) {
        const int64_t u = users[row];
        const int64_t begin = indptr[u], m = indptr[u + 1] - begin;
        const uint64_t free = static_cast<uint64_t>(n_items - m);
        for (int64_t t = 0; t < n_neg; ++t) {
            const int64_t i = row * n_neg + t;
            const uint64_t r = uniform_below(key, static_cast<uint64_t>(i), free);
            out[i] = nth_non_positive(indices + begin, m, static_cast<int64_t>(r));
        }
    }
}

}  // namespace sampling
}  // namespace recforge
