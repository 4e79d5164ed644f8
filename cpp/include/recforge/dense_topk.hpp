// Exact dense top-k retrieval: scores s(i, j) = <Q_i, V_j>, for each query i the k best items j,
// never an item of that query's row of the `exclude` CSR.
//
// The scores never reach memory as an m x n matrix: a register-blocked microkernel computes an
// MR x NR tile of scores from packed operands and, still in registers, compares every score
// with its row's current k-th best (the threshold). Only the rare scores that beat it leave
// the tile: they are checked against the row's exclusion list (a cursor that moves forward,
// since items arrive in increasing order) and kept in that row's candidate buffer (see Selector).
//
// Work is split into blocks of up to QB queries (one per OpenMP task); a block walks all items
// panel by panel, so memory is O(n d) for the packed items plus O(threads x QB x k). A handful
// of queries (m <= kFewQueries) instead splits the panels between threads, each panel packed on
// the fly into an L1-sized buffer (or read from items packed once by the caller: PackedItems).
//
// Batch invariance: every score is the same microkernel's sum, c = fma(q_c, v_c, c) for
// c = 0 .. d-1 in order from 0, whatever the number of queries, the blocking, the thread count
// or whether the items were packed beforehand; so a query's result does not depend, to the
// last bit, on which other queries share its call.
// Microkernels (queries x items per tile): AVX-512 8 x 32 (float64 8 x 16), AVX2+FMA 6 x 16
// (6 x 8) and portable C++ 4 x 8, picked at run time (`__builtin_cpu_supports`); the build
// itself stays at the x86-64 baseline.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include <omp.h>

#include "recforge/isa.hpp"
#include "recforge/topk.hpp"

namespace recforge {
namespace dense {

// Items of each query that must never be returned: row i's sorted columns are
// indices[indptr[i] .. indptr[i+1]). indptr == nullptr means "no exclusion".
struct Exclusion {
    const int64_t* indptr = nullptr;
    const int64_t* indices = nullptr;
};

using recforge::Isa;

inline Isa best_isa() { return detect_isa(false); }

// --- microkernels -------------------------------------------------------------------------
// Each computes tile[i][l] = sum_c qp[c][i] * vp[c][l] for the first R <= MR rows of an MR x NR
// tile (qp: packed queries, d x MR; vp: packed items, d x NR), in order c = 0..d-1 whatever R, stores
// it, and sets bit l of masks[i] when tile[i][l] > thr[i].

template <class T>
struct GenericKernel {
    static constexpr int MR = 4;
    static constexpr int NR = 8;
    template <int R = MR>
    static void tile(const T* qp, const T* vp, int64_t d, const T* thr, T* out, uint64_t* masks) {
        T c[MR][NR] = {};
        for (int64_t kk = 0; kk < d; ++kk) {
            const T* a = qp + kk * MR;
            const T* b = vp + kk * NR;
            for (int i = 0; i < R; ++i)
                for (int l = 0; l < NR; ++l) c[i][l] += a[i] * b[l];
        }
        for (int i = 0; i < R; ++i) {
            uint64_t mk = 0;
            for (int l = 0; l < NR; ++l) {
                out[i * NR + l] = c[i][l];
                mk |= static_cast<uint64_t>(c[i][l] > thr[i]) << l;
            }
            masks[i] = mk;
        }
    }
};

#if defined(__x86_64__) || defined(__i386__)
struct Avx2Kernel {
    static constexpr int MR = 6;
    static constexpr int NR = 16;
    template <int R = MR>
    __attribute__((target("avx2,fma"))) static void tile(const float* qp, const float* vp, int64_t d,
                                                         const float* thr, float* out, uint64_t* masks) {
        __m256 c[MR][2];
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) c[i][0] = c[i][1] = _mm256_setzero_ps();
        for (int64_t kk = 0; kk < d; ++kk) {
            const __m256 b0 = _mm256_load_ps(vp + kk * NR);
            const __m256 b1 = _mm256_load_ps(vp + kk * NR + 8);
            const float* a = qp + kk * MR;
#pragma GCC unroll 6
            for (int i = 0; i < R; ++i) {
                const __m256 ai = _mm256_broadcast_ss(a + i);
                c[i][0] = _mm256_fmadd_ps(ai, b0, c[i][0]);
                c[i][1] = _mm256_fmadd_ps(ai, b1, c[i][1]);
            }
        }
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) {
            const __m256 t = _mm256_broadcast_ss(thr + i);
            _mm256_store_ps(out + i * NR, c[i][0]);
            _mm256_store_ps(out + i * NR + 8, c[i][1]);
            const unsigned lo = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(c[i][0], t, _CMP_GT_OQ)));
            const unsigned hi = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(c[i][1], t, _CMP_GT_OQ)));
            masks[i] = lo | (hi << 8);
        }
    }
};

struct Avx512Kernel {
    static constexpr int MR = 8;
    static constexpr int NR = 32;
    template <int R = MR>
    __attribute__((target("avx512f"))) static void tile(const float* qp, const float* vp, int64_t d,
                                                       const float* thr, float* out, uint64_t* masks) {
        __m512 c[MR][2];
#pragma GCC unroll 8
        for (int i = 0; i < R; ++i) c[i][0] = c[i][1] = _mm512_setzero_ps();
        for (int64_t kk = 0; kk < d; ++kk) {
            const __m512 b0 = _mm512_load_ps(vp + kk * NR);
            const __m512 b1 = _mm512_load_ps(vp + kk * NR + 16);
            const float* a = qp + kk * MR;
#pragma GCC unroll 8
            for (int i = 0; i < R; ++i) {
                const __m512 ai = _mm512_set1_ps(a[i]);
                c[i][0] = _mm512_fmadd_ps(ai, b0, c[i][0]);
                c[i][1] = _mm512_fmadd_ps(ai, b1, c[i][1]);
            }
        }
#pragma GCC unroll 8
        for (int i = 0; i < R; ++i) {
            const __m512 t = _mm512_set1_ps(thr[i]);
            _mm512_store_ps(out + i * NR, c[i][0]);
            _mm512_store_ps(out + i * NR + 16, c[i][1]);
            const uint64_t lo = _mm512_cmp_ps_mask(c[i][0], t, _CMP_GT_OQ);
            const uint64_t hi = _mm512_cmp_ps_mask(c[i][1], t, _CMP_GT_OQ);
            masks[i] = lo | (hi << 16);
        }
    }
};

// float64 twins of the two kernels above (half the lanes per register).
struct Avx2KernelF64 {
    static constexpr int MR = 6;
    static constexpr int NR = 8;
    template <int R = MR>
    __attribute__((target("avx2,fma"))) static void tile(const double* qp, const double* vp, int64_t d,
                                                         const double* thr, double* out, uint64_t* masks) {
        __m256d c[MR][2];
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) c[i][0] = c[i][1] = _mm256_setzero_pd();
        for (int64_t kk = 0; kk < d; ++kk) {
            const __m256d b0 = _mm256_load_pd(vp + kk * NR);
            const __m256d b1 = _mm256_load_pd(vp + kk * NR + 4);
            const double* a = qp + kk * MR;
#pragma GCC unroll 6
            for (int i = 0; i < R; ++i) {
                const __m256d ai = _mm256_broadcast_sd(a + i);
                c[i][0] = _mm256_fmadd_pd(ai, b0, c[i][0]);
                c[i][1] = _mm256_fmadd_pd(ai, b1, c[i][1]);
            }
        }
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) {
            const __m256d t = _mm256_broadcast_sd(thr + i);
            _mm256_store_pd(out + i * NR, c[i][0]);
            _mm256_store_pd(out + i * NR + 4, c[i][1]);
            const unsigned lo = static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(c[i][0], t, _CMP_GT_OQ)));
            const unsigned hi = static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(c[i][1], t, _CMP_GT_OQ)));
            masks[i] = lo | (hi << 4);
        }
    }
};

struct Avx512KernelF64 {
    static constexpr int MR = 8;
    static constexpr int NR = 16;
    template <int R = MR>
    __attribute__((target("avx512f"))) static void tile(const double* qp, const double* vp, int64_t d,
                                                       const double* thr, double* out, uint64_t* masks) {
        __m512d c[MR][2];
#pragma GCC unroll 8
        for (int i = 0; i < R; ++i) c[i][0] = c[i][1] = _mm512_setzero_pd();
        for (int64_t kk = 0; kk < d; ++kk) {
            const __m512d b0 = _mm512_load_pd(vp + kk * NR);
            const __m512d b1 = _mm512_load_pd(vp + kk * NR + 8);
            const double* a = qp + kk * MR;
#pragma GCC unroll 8
            for (int i = 0; i < R; ++i) {
                const __m512d ai = _mm512_set1_pd(a[i]);
                c[i][0] = _mm512_fmadd_pd(ai, b0, c[i][0]);
                c[i][1] = _mm512_fmadd_pd(ai, b1, c[i][1]);
            }
        }
#pragma GCC unroll 8
        for (int i = 0; i < R; ++i) {
            const __m512d t = _mm512_set1_pd(thr[i]);
            _mm512_store_pd(out + i * NR, c[i][0]);
            _mm512_store_pd(out + i * NR + 8, c[i][1]);
            const uint64_t lo = _mm512_cmp_pd_mask(c[i][0], t, _CMP_GT_OQ);
            const uint64_t hi = _mm512_cmp_pd_mask(c[i][1], t, _CMP_GT_OQ);
            masks[i] = lo | (hi << 8);
        }
    }
};
#endif

// --- aligned scratch ----------------------------------------------------------------------

template <class T>
struct AlignedBuffer {
    struct Free {
        void operator()(T* p) const { std::free(p); }
    };
    std::unique_ptr<T, Free> ptr;
    explicit AlignedBuffer(size_t count) {
        const size_t bytes = ((std::max<size_t>(count, 1) * sizeof(T) + 63) / 64) * 64;
        ptr.reset(static_cast<T*>(std::aligned_alloc(64, bytes)));
        if (!ptr) throw std::bad_alloc();
    }
    T* get() const { return ptr.get(); }
};

#if defined(__x86_64__) || defined(__i386__)
// dst[c * dst_stride + r] = src[r * src_stride + c] for an 8 x 8 block of floats.
__attribute__((target("avx2"))) inline void transpose8x8(const float* src, int64_t src_stride, float* dst,
                                                         int64_t dst_stride) {
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * src_stride);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int h = 0; h < 8; h += 4) {
        u[h] = _mm256_shuffle_ps(t[h], t[h + 2], 0x44);
        u[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], 0xEE);
        u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0x44);
        u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0xEE);
    }
    for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(dst + i * dst_stride, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
        _mm256_storeu_ps(dst + (i + 4) * dst_stride, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
    }
}
#endif

// Items packed panel by panel: panel p holds items [p NR, p NR + NR) as d rows of NR values
// (zeros past n). Full float panels of the AVX2/AVX-512 kernels (NR >= 16, so the CPU has
// AVX2) move in 8 x 8 register transposes.
template <class T, int NR>
inline void pack_panel(const T* V, int64_t n, int64_t d, int64_t p, T* dst) {
#if defined(__x86_64__) || defined(__i386__)
    if constexpr (std::is_same_v<T, float> && NR >= 16 && NR % 8 == 0) {
        if ((p + 1) * NR <= n) {
            const float* base = V + p * NR * d;
            const int64_t d8 = d - d % 8;
            for (int lb = 0; lb < NR; lb += 8) {
                for (int64_t kk = 0; kk < d8; kk += 8) transpose8x8(base + lb * d + kk, d, dst + kk * NR + lb, NR);
                for (int64_t kk = d8; kk < d; ++kk)
                    for (int l = lb; l < lb + 8; ++l) dst[kk * NR + l] = base[l * d + kk];
            }
            return;
        }
    }
#endif
    for (int l = 0; l < NR; ++l) {
        const int64_t j = p * NR + l;
        if (j < n) {
            const T* src = V + j * d;
            for (int64_t kk = 0; kk < d; ++kk) dst[kk * NR + l] = src[kk];
        } else {
            for (int64_t kk = 0; kk < d; ++kk) dst[kk * NR + l] = T(0);
        }
    }
}

template <class T, int NR>
AlignedBuffer<T> pack_items(const T* V, int64_t n, int64_t d, int num_threads) {
    const int64_t panels = (n + NR - 1) / NR;
    AlignedBuffer<T> packed(static_cast<size_t>(panels * d * NR));
    T* out = packed.get();
#pragma omp parallel for num_threads(num_threads) schedule(static)
    for (int64_t p = 0; p < panels; ++p) pack_panel<T, NR>(V, n, d, p, out + p * d * NR);
    return packed;
}

// Queries packed group by group as d x MR (zeros past the last row).
template <class T, int MR>
inline void pack_queries(const T* Q, int64_t rows, int64_t d, T* dst) {
    const int64_t groups = (rows + MR - 1) / MR;
    for (int64_t g = 0; g < groups; ++g) {
        T* out = dst + g * d * MR;
        for (int i = 0; i < MR; ++i) {
            const int64_t r = g * MR + i;
            for (int64_t kk = 0; kk < d; ++kk) out[kk * MR + i] = r < rows ? Q[r * d + kk] : T(0);
        }
    }
}

// The running top-k of one query over items visited in increasing order, exclusion fused.
// Candidates that beat the threshold are appended to a buffer of 2k; when it fills, the k best
// are kept (nth_element) and the threshold becomes the k-th best score. That is O(1) amortised
// per candidate for any k (a heap pays log k each). Since later items have larger indices, a
// candidate tying the threshold ranks after it, so `s > thr` is the exact admission test.
template <class T>
struct Selector {
    Scored<T, int64_t>* entries;  // capacity 2k
    int64_t k;
    int64_t count = 0;
    T thr = -std::numeric_limits<T>::infinity();
    const int64_t* ex = nullptr;
    int64_t cursor = 0, cursor_end = 0;

    inline void offer(int64_t j, T s) {
        if (!(s > thr)) return;
        while (cursor < cursor_end && ex[cursor] < j) ++cursor;
        if (cursor < cursor_end && ex[cursor] == j) return;
        entries[count++] = Scored<T, int64_t>{s, j};
        if (count == 2 * k) {
            auto before = [](const Scored<T, int64_t>& x, const Scored<T, int64_t>& y) { return ranks_before(x, y); };
            std::nth_element(entries, entries + (k - 1), entries + count, before);
            count = k;
            thr = entries[k - 1].score;
        }
    }

    // Sorts the best min(count, k) to the front, best first; returns how many.
    int64_t finish() { return static_cast<int64_t>(select_topk(entries, static_cast<size_t>(count), static_cast<size_t>(k))); }
};

// Kernel::tile<R> for a group's live rows R = 1..MR: the padding rows of a last, partial group
// (a single query: MR - 1 of them) cost nothing. Every score is the same in-order sum.
template <class Kernel, int R = 1, class T>
inline void tile_live(int live, const T* qp, const T* vp, int64_t d, const T* thr, T* out, uint64_t* masks) {
    if constexpr (R < Kernel::MR) {
        if (live != R) return tile_live<Kernel, R + 1>(live, qp, vp, d, thr, out, masks);
    }
    Kernel::template tile<R>(qp, vp, d, thr, out, masks);
}

// Scores one packed panel against the used query groups and offers what beats each row's
// threshold to that row's selector.
template <class T, class Kernel>
inline void score_panel(const T* qpack, int64_t used_groups, int64_t rows, const T* vp, int64_t p, int64_t d,
                        uint64_t valid, T* thr, Selector<T>* sel, T* tile) {
    constexpr int MR = Kernel::MR;
    constexpr int NR = Kernel::NR;
    uint64_t masks[MR];
    for (int64_t g = 0; g < used_groups; ++g) {
        const int live = static_cast<int>(std::min<int64_t>(MR, rows - g * MR));
        if (live == MR)
            Kernel::template tile<MR>(qpack + g * d * MR, vp, d, thr + g * MR, tile, masks);
        else
            tile_live<Kernel>(live, qpack + g * d * MR, vp, d, thr + g * MR, tile, masks);
        for (int i = 0; i < live; ++i) {
            uint64_t mk = masks[i] & valid;
            while (mk) {
                const int l = __builtin_ctzll(mk);
                mk &= mk - 1;
                Selector<T>& row = sel[g * MR + i];
                row.offer(p * NR + l, tile[i * NR + l]);
                thr[g * MR + i] = row.thr;
            }
        }
    }
}

// Best first, then pad with (-1, -inf) when fewer than out_k items were eligible.
template <class T>
inline void write_row(Selector<T>& h, int64_t* oi, float* os, int64_t out_k) {
    const int64_t kept = h.finish();
    for (int64_t t = 0; t < kept; ++t) {
        oi[t] = h.entries[t].index;
        os[t] = static_cast<float>(h.entries[t].score);
    }
    for (int64_t t = kept; t < out_k; ++t) {
        oi[t] = -1;
        os[t] = -std::numeric_limits<float>::infinity();
    }
}

template <int NR>
inline uint64_t last_panel_mask(int64_t n) {
    return (n % NR) == 0 ? ~uint64_t(0) : ((uint64_t(1) << (n % NR)) - 1);
}

// Many queries: blocks of queries (one OpenMP task each) walk the packed items.
template <class T, class Kernel>
void run_blocks(const T* Q, int64_t m, const T* vp_all, int64_t n, int64_t d, int64_t k, const Exclusion& ex,
                int64_t* out_indices, float* out_scores, int64_t out_k, int num_threads) {
    constexpr int MR = Kernel::MR;
    constexpr int NR = Kernel::NR;
    constexpr int64_t kMaxGroups = 32;       // up to 32 x MR queries per block
    constexpr int64_t kPanelsPerChunk = 16;  // items visited by all groups of a block before moving on
    const int64_t panels = (n + NR - 1) / NR;
    const int64_t per_thread = (m + num_threads - 1) / num_threads;
    // The candidate buffers of a block stay within ~2 MiB (about an L2), so a large k shrinks the block.
    const int64_t buffer_groups = std::max<int64_t>(1, (int64_t(1) << 17) / (MR * 2 * k));
    const int64_t groups = std::max<int64_t>(
        1, std::min({kMaxGroups, buffer_groups, (per_thread + MR - 1) / MR}));
    const int64_t qb = groups * MR;
    const int64_t blocks = (m + qb - 1) / qb;
    const uint64_t last_valid = last_panel_mask<NR>(n);

#pragma omp parallel num_threads(num_threads)
    {
        AlignedBuffer<T> qpack(static_cast<size_t>(groups * d * MR));
        AlignedBuffer<T> tile(static_cast<size_t>(MR * NR));
        std::vector<Scored<T, int64_t>> cand_store(static_cast<size_t>(qb * 2 * k));
        std::vector<Selector<T>> sel(static_cast<size_t>(qb));
        std::vector<T> thr(static_cast<size_t>(qb));  // sel[r].thr, contiguous for the microkernel

#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < blocks; ++b) {
            const int64_t r0 = b * qb;
            const int64_t rows = std::min(qb, m - r0);
            const int64_t used_groups = (rows + MR - 1) / MR;
            pack_queries<T, MR>(Q + r0 * d, rows, d, qpack.get());
            for (int64_t r = 0; r < qb; ++r) {
                sel[r] = Selector<T>{cand_store.data() + r * 2 * k, k};
                if (ex.indptr && r < rows) {
                    sel[r].ex = ex.indices;
                    sel[r].cursor = ex.indptr[r0 + r];
                    sel[r].cursor_end = ex.indptr[r0 + r + 1];
                }
                thr[r] = sel[r].thr;
            }
            for (int64_t p0 = 0; p0 < panels; p0 += kPanelsPerChunk) {
                const int64_t p1 = std::min(panels, p0 + kPanelsPerChunk);
                for (int64_t p = p0; p < p1; ++p)
                    score_panel<T, Kernel>(qpack.get(), used_groups, rows, vp_all + p * d * NR, p, d,
                                           p == panels - 1 ? last_valid : ~uint64_t(0), thr.data(), sel.data(),
                                           tile.get());
            }
            for (int64_t r = 0; r < rows; ++r)
                write_row(sel[r], out_indices + (r0 + r) * out_k, out_scores + (r0 + r) * out_k, out_k);
        }
    }
}

// --- few queries ---------------------------------------------------------------------------
// Packing all items costs about as much as a few passes over V, so a handful of queries splits
// the panels between threads instead, each thread packing one panel at a time into an L1-sized
// buffer (or reading the caller's packed items); the threads' partial top-k lists are merged per
// query at the end. The scores are the same microkernel's as above.

constexpr int64_t kFewQueries = 8;

template <class T, class Kernel>
void run_panels(const T* Q, int64_t m, const T* V, const T* vp_all, int64_t n, int64_t d, int64_t k,
                const Exclusion& ex, int64_t* out_indices, float* out_scores, int64_t out_k, int num_threads) {
    constexpr int MR = Kernel::MR;
    constexpr int NR = Kernel::NR;
    const int64_t panels = (n + NR - 1) / NR;
    const int64_t groups = (m + MR - 1) / MR;
    const uint64_t last_valid = last_panel_mask<NR>(n);
    AlignedBuffer<T> qpack(static_cast<size_t>(groups * d * MR));
    pack_queries<T, MR>(Q, m, d, qpack.get());
    // Waking threads costs more than scanning a few million values: split only larger scans.
    const int64_t parts =
        std::max<int64_t>(1, std::min<int64_t>({int64_t(num_threads), panels, m * n * d / (int64_t(1) << 22)}));
    std::vector<Scored<T, int64_t>> store(static_cast<size_t>(parts * m * 2 * k));
    std::vector<int64_t> counts(static_cast<size_t>(parts * m));
#pragma omp parallel for num_threads(static_cast<int>(parts)) schedule(static, 1)
    for (int64_t part = 0; part < parts; ++part) {
        const int64_t p0 = panels * part / parts, p1 = panels * (part + 1) / parts;
        AlignedBuffer<T> panel(vp_all ? 1 : static_cast<size_t>(d * NR));
        AlignedBuffer<T> tile(static_cast<size_t>(MR * NR));
        std::vector<Selector<T>> sel(static_cast<size_t>(groups * MR));
        std::vector<T> thr(static_cast<size_t>(groups * MR), -std::numeric_limits<T>::infinity());
        for (int64_t i = 0; i < m; ++i) {
            sel[i].entries = store.data() + (part * m + i) * 2 * k;
            sel[i].k = k;
            if (ex.indptr) {
                sel[i].ex = ex.indices;
                sel[i].cursor =
                    std::lower_bound(ex.indices + ex.indptr[i], ex.indices + ex.indptr[i + 1], p0 * NR) - ex.indices;
                sel[i].cursor_end = ex.indptr[i + 1];
            }
        }
        for (int64_t p = p0; p < p1; ++p) {
            if (!vp_all) pack_panel<T, NR>(V, n, d, p, panel.get());
            score_panel<T, Kernel>(qpack.get(), groups, m, vp_all ? vp_all + p * d * NR : panel.get(), p, d,
                                   p == panels - 1 ? last_valid : ~uint64_t(0), thr.data(), sel.data(), tile.get());
        }
        for (int64_t i = 0; i < m; ++i) counts[part * m + i] = sel[i].count;
    }
    std::vector<Scored<T, int64_t>> merged(static_cast<size_t>(parts * 2 * k));
    for (int64_t i = 0; i < m; ++i) {
        size_t total = 0;
        for (int64_t part = 0; part < parts; ++part) {
            const auto* src = store.data() + (part * m + i) * 2 * k;
            std::copy(src, src + counts[part * m + i], merged.begin() + total);
            total += static_cast<size_t>(counts[part * m + i]);
        }
        Selector<T> all{merged.data(), k};
        all.count = static_cast<int64_t>(total);
        write_row(all, out_indices + i * out_k, out_scores + i * out_k, out_k);
    }
}

template <class T, class Kernel>
void run(const T* Q, int64_t m, const T* V, const T* packed, int64_t n, int64_t d, int64_t k, const Exclusion& ex,
         int64_t* out_indices, float* out_scores, int64_t out_k, int num_threads) {
    if (m <= kFewQueries)
        return run_panels<T, Kernel>(Q, m, V, packed, n, d, k, ex, out_indices, out_scores, out_k, num_threads);
    if (packed)
        return run_blocks<T, Kernel>(Q, m, packed, n, d, k, ex, out_indices, out_scores, out_k, num_threads);
    const AlignedBuffer<T> own = pack_items<T, Kernel::NR>(V, n, d, num_threads);
    run_blocks<T, Kernel>(Q, m, own.get(), n, d, k, ex, out_indices, out_scores, out_k, num_threads);
}

// Calls f(Kernel{}) with the microkernel dense_topk uses for T on `isa`.
template <class T, class F>
decltype(auto) with_kernel(Isa isa, F&& f) {
#if defined(__x86_64__) || defined(__i386__)
    if constexpr (std::is_same_v<T, float>) {
        if (isa == Isa::Avx512) return f(Avx512Kernel{});
        if (isa == Isa::Avx2) return f(Avx2Kernel{});
    } else {
        if (isa == Isa::Avx512) return f(Avx512KernelF64{});
        if (isa == Isa::Avx2) return f(Avx2KernelF64{});
    }
#endif
    return f(GenericKernel<T>{});
}

// Items packed once for many dense_topk calls with the same V: the panel layout of `isa`'s
// microkernel (NR items per panel).
template <class T>
struct PackedItems {
    AlignedBuffer<T> data;
    int64_t n, d;
    Isa isa;
};

template <class T>
PackedItems<T> pack(const T* V, int64_t n, int64_t d, int num_threads, Isa isa) {
    return with_kernel<T>(isa, [&](auto kernel) {
        return PackedItems<T>{pack_items<T, decltype(kernel)::NR>(V, n, d, num_threads), n, d, isa};
    });
}

// Entry point: picks the microkernel (the best the CPU supports unless `isa` asks for a lower one).
// k <= n; out_k >= k columns are written (the rest padded). `packed`, when given, is V packed by
// pack() for the same isa, and V is then not read.
template <class T>
void dense_topk(const T* Q, int64_t m, const T* V, int64_t n, int64_t d, int64_t k, const Exclusion& ex,
                int64_t* out_indices, float* out_scores, int64_t out_k, int num_threads, Isa isa,
                const T* packed = nullptr) {
    with_kernel<T>(isa, [&](auto kernel) {
        run<T, decltype(kernel)>(Q, m, V, packed, n, d, k, ex, out_indices, out_scores, out_k, num_threads);
    });
}

}  // namespace dense
}  // namespace recforge
