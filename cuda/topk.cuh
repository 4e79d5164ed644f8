// Warp-level streaming top-k with the project-wide order: higher score first, equal scores by
// smaller index.
//
// One warp owns one output row. Candidates arrive 32 at a time (one per lane); those that beat
// the row's current k-th best go to a 32-entry queue in shared memory. When the queue would
// overflow (and at the end) it is sorted by rank counting and merged into the row's sorted list
// in global memory: every element's output position is its own position plus the number of
// elements of the other list that rank before it (a binary search), so the merge is exact,
// deterministic and needs no sentinels. Lists alternate between two buffers of capacity k, so
// any k works; the cost per merge is O((k / 32) log 32) per lane.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace recforge {
namespace cuda {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kWarp = 32;
constexpr int kQueue = 32;

template <class T>
__device__ __forceinline__ bool ranks_before(T sa, int64_t ia, T sb, int64_t ib) {
    return sa > sb || (sa == sb && ia < ib);
}

// How many entries of the best-first list [0, len) rank before (v, vi).
template <class T>
__device__ __forceinline__ int64_t count_before(const T* s, const int64_t* ix, int64_t len, T v, int64_t vi) {
    int64_t lo = 0, hi = len;
    while (lo < hi) {
        const int64_t mid = (lo + hi) >> 1;
        if (ranks_before(s[mid], ix[mid], v, vi)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

// Merges two best-first lists with disjoint indices into out, keeping the best `limit`.
// Called by all 32 lanes of a warp; returns the number kept.
template <class T>
__device__ int64_t merge_lists(const T* as, const int64_t* ai, int64_t na, const T* bs, const int64_t* bi,
                               int64_t nb, T* os, int64_t* oi, int64_t limit, int lane) {
    const int64_t total = min(limit, na + nb);
    for (int64_t p = lane; p < min(na, total); p += kWarp) {
        const T v = as[p];
        const int64_t vi = ai[p];
        const int64_t at = p + count_before(bs, bi, nb, v, vi);
        if (at < total) {
            os[at] = v;
            oi[at] = vi;
        }
    }
    for (int64_t p = lane; p < min(nb, total); p += kWarp) {
        const T v = bs[p];
        const int64_t vi = bi[p];
        const int64_t at = p + count_before(as, ai, na, v, vi);
        if (at < total) {
            os[at] = v;
            oi[at] = vi;
        }
    }
    __syncwarp();
    return total;
}

// The state of one row; every lane of the owning warp holds the same copy.
template <class T>
struct RowTopK {
    T* list_s[2];        // global, capacity k each
    int64_t* list_i[2];
    T* q_s;              // shared, kQueue entries
    int64_t* q_i;
    int64_t k;
    int64_t count;       // entries in list[cur]
    int cur;
    int queued;
    T worst_s;           // list[cur][k - 1] once count == k
    int64_t worst_i;

    __device__ __forceinline__ bool wants(T s, int64_t j) const {
        return count < k || ranks_before(s, j, worst_s, worst_i);
    }

    // Sorts the queue (rank counting across lanes) and merges it into the list.
    __device__ __noinline__ void flush(int lane) {
        if (queued == 0) return;
        __syncwarp();
        const bool have = lane < queued;
        const T es = have ? q_s[lane] : T(0);
        const int64_t ei = have ? q_i[lane] : int64_t(0);
        int rank = 0;
        for (int t = 0; t < queued; ++t) {
            const T os = __shfl_sync(kFullMask, es, t);
            const int64_t oi = __shfl_sync(kFullMask, ei, t);
            if (ranks_before(os, oi, es, ei)) ++rank;
        }
        __syncwarp();
        if (have) {
            q_s[rank] = es;
            q_i[rank] = ei;
        }
        __syncwarp();
        const int next = cur ^ 1;
        count = merge_lists(list_s[cur], list_i[cur], count, q_s, q_i, int64_t(queued), list_s[next],
                            list_i[next], k, lane);
        cur = next;
        queued = 0;
        if (count == k) {
            worst_s = list_s[cur][k - 1];
            worst_i = list_i[cur][k - 1];
        }
        __syncwarp();
    }

    // Each lane offers at most one candidate: `pass` must already include wants() and any
    // exclusion test. All 32 lanes must call this together.
    __device__ __forceinline__ void push(bool pass, T s, int64_t j, int lane) {
        unsigned mask = __ballot_sync(kFullMask, pass);
        if (mask == 0u) return;
        int n = __popc(mask);
        if (queued + n > kQueue) {
            flush(lane);
            pass = pass && wants(s, j);
            mask = __ballot_sync(kFullMask, pass);
            if (mask == 0u) return;
            n = __popc(mask);
        }
        if (pass) {
            const int at = queued + __popc(mask & ((1u << lane) - 1u));
            q_s[at] = s;
            q_i[at] = j;
        }
        queued += n;
        __syncwarp();
    }

    // Writes the final list to out (k slots), padding with (pad_score, -1); returns the count.
    __device__ int64_t write(T* out_s, int64_t* out_i, T pad_score, int lane) const {
        for (int64_t p = lane; p < k; p += kWarp) {
            const bool real = p < count;
            out_s[p] = real ? list_s[cur][p] : pad_score;
            out_i[p] = real ? list_i[cur][p] : int64_t(-1);
        }
        return count;
    }
};

template <class T>
__device__ __forceinline__ RowTopK<T> make_row_topk(T* lists_s, int64_t* lists_i, T* q_s, int64_t* q_i,
                                                     int64_t k) {
    RowTopK<T> st;
    st.list_s[0] = lists_s;
    st.list_s[1] = lists_s + k;
    st.list_i[0] = lists_i;
    st.list_i[1] = lists_i + k;
    st.q_s = q_s;
    st.q_i = q_i;
    st.k = k;
    st.count = 0;
    st.cur = 0;
    st.queued = 0;
    st.worst_s = T(0);
    st.worst_i = 0;
    return st;
}

}  // namespace cuda
}  // namespace recforge
