// Exact sparse top-k similarity: row-parallel Gustavson products with a per-thread dense
// accumulator, fused with a bounded top-k selection. Memory: O(threads x n + output).
//
// General mode:   for each row i of X, s(i, j) for all rows j of Y, via Yt (Y transposed).
// Symmetric mode: Y = X, self excluded. Each pair is formed once (j > i, found by binary
//                 search in the sorted rows of Xt) and offered to the heaps of both rows, so
//                 the product costs half of what a general all-pairs product costs.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include <omp.h>

#include "recforge/csr.hpp"
#include "recforge/topk.hpp"

namespace recforge {
namespace similarity {

enum class Kind : int { Dot = 0, Jaccard = 1, Pearson = 2, Msd = 3 };

// Per-row inputs prepared in Python: optional scale (1/||row|| for cosine) and row sizes
// (non-zero counts, for Jaccard). Null pointers mean "not used".
template <class T>
struct Context {
    const T* x_scale = nullptr;
    const T* y_scale = nullptr;
    const int64_t* x_size = nullptr;
    const int64_t* y_size = nullptr;
    double shrink = 0.0;
    double min_support = 1.0;
};

// Shrinkage s * n / (n + shrink) (Koren); identity when shrink == 0.
inline double shrunk(double s, double n, double shrink) {
    return shrink > 0.0 ? s * n / (n + shrink) : s;
}

// dot: channel 0 = sum x*y; with Count, channel 1 = co-support n.
template <class T, bool Count>
struct DotPolicy {
    using Acc = T;
    static constexpr int C = Count ? 2 : 1;
    static inline void add(Acc* a, T x, T y) {
        a[0] += x * y;
        if (Count) a[1] += Acc(1);
    }
    static inline bool touched(const Acc* a) { return Count ? a[1] != Acc(0) : a[0] != Acc(0); }
    static inline double score(const Acc* a, int64_t i, int64_t j, const Context<T>& c) {
        double s = a[0];
        if (c.x_scale) s = static_cast<double>(static_cast<T>(a[0] * c.x_scale[i] * c.y_scale[j]));
        if (Count) {
            if (a[1] < c.min_support) return 0.0;
            s = shrunk(s, a[1], c.shrink);
        }
        return s;
    }
};

// jaccard on the binary pattern: c / (|x| + |y| - c), c = co-support.
template <class T>
struct JaccardPolicy {
    using Acc = T;
    static constexpr int C = 1;
    static inline void add(Acc* a, T, T) { a[0] += Acc(1); }
    static inline bool touched(const Acc* a) { return a[0] != Acc(0); }
    static inline double score(const Acc* a, int64_t i, int64_t j, const Context<T>& c) {
        const double n = a[0];
        if (n < c.min_support) return 0.0;
        const double s = n / (static_cast<double>(c.x_size[i] + c.y_size[j]) - n);
        return shrunk(s, n, c.shrink);
    }
};

// pearson over co-rated dimensions (Surprise): channels n, sum xy, sum x, sum y, sum x^2, sum y^2.
template <class T>
struct PearsonPolicy {
    using Acc = double;
    static constexpr int C = 6;
    static inline void add(Acc* a, T x, T y) {
        const double dx = x, dy = y;
        a[0] += 1.0;
        a[1] += dx * dy;
        a[2] += dx;
        a[3] += dy;
        a[4] += dx * dx;
        a[5] += dy * dy;
    }
    static inline bool touched(const Acc* a) { return a[0] != 0.0; }
    static inline double score(const Acc* a, int64_t, int64_t, const Context<T>& c) {
        const double n = a[0];
        if (n < c.min_support) return 0.0;
        const double num = n * a[1] - a[2] * a[3];
        const double den = std::sqrt((n * a[4] - a[2] * a[2]) * (n * a[5] - a[3] * a[3]));
        if (den == 0.0 || !std::isfinite(den)) return 0.0;
        return shrunk(num / den, n, c.shrink);
    }
};

// msd over co-rated dimensions (Surprise): 1 / (sum (x - y)^2 / n + 1).
template <class T>
struct MsdPolicy {
    using Acc = double;
    static constexpr int C = 2;
    static inline void add(Acc* a, T x, T y) {
        const double d = static_cast<double>(x) - static_cast<double>(y);
        a[0] += 1.0;
        a[1] += d * d;
    }
    static inline bool touched(const Acc* a) { return a[0] != 0.0; }
    static inline double score(const Acc* a, int64_t, int64_t, const Context<T>& c) {
        const double n = a[0];
        if (n < c.min_support) return 0.0;
        return shrunk(1.0 / (a[1] / n + 1.0), n, c.shrink);
    }
};

// Result rows before compaction: one growing list of entries per thread, and where each row's
// counts[r] entries (best first) start in it. Memory follows the output, not m x k.
template <class T, class I>
struct RowResults {
    std::vector<std::vector<Scored<T, I>>> parts;
    std::vector<int32_t> part;
    std::vector<int64_t> offset;
    std::vector<int64_t> counts;

    RowResults(int64_t rows, int num_parts)
        : parts(static_cast<size_t>(num_parts)), part(static_cast<size_t>(rows), 0),
          offset(static_cast<size_t>(rows), 0), counts(static_cast<size_t>(rows), 0) {}
    RowResults() = default;

    // Called by the thread that owns part p: appends row r's entries.
    void store(int64_t r, int p, const Scored<T, I>* row, int64_t count) {
        auto& dst = parts[static_cast<size_t>(p)];
        part[r] = p;
        offset[r] = static_cast<int64_t>(dst.size());
        counts[r] = count;
        dst.insert(dst.end(), row, row + count);
    }

    const Scored<T, I>* row(int64_t r) const { return parts[static_cast<size_t>(part[r])].data() + offset[r]; }
};

// I: offsets and indices of X (and of the output); J: column indices of Yt.
template <class Policy, class T, class I, class J>
class Kernel {
    using A = typename Policy::Acc;
    static constexpr int C = Policy::C;
    // float32 scores with int32 indices select on packed 64-bit keys (see topk.hpp).
    static constexpr bool kKeyed = std::is_same_v<T, float> && std::is_same_v<I, int32_t>;

public:
    // exclude (optional, pattern only): row i never returns the columns stored in its row.
    // symmetric: Y = X, each pair formed once (half product, shared row buffers).
    // exclude_self: Y = X computed as a general product; row i never returns i.
    Kernel(const CsrView<T, I>& x, const CsrView<T, I, J>& yt, const Context<T>& ctx, int64_t k,
           bool symmetric, bool exclude_self, const CsrView<T, I>* exclude = nullptr,
           size_t private_budget = size_t(512) << 20)
        : x_(x), yt_(yt), ctx_(ctx), k_(k), symmetric_(symmetric), exclude_self_(exclude_self),
          exclude_(exclude), private_budget_(private_budget) {}

    // Half product only: form the pairs (i, j > i) for the rows i in [lo, hi) alone, and return
    // for every row its best k among them (a shard of the half product; shards merge per row).
    Kernel& pair_rows(int64_t lo, int64_t hi) {
        row_lo_ = lo;
        row_hi_ = hi;
        return *this;
    }

    RowResults<T, I> run(int num_threads) const {
        const int64_t m = x_.rows;
        const int64_t lo = row_lo_, hi = row_hi_ < 0 ? m : row_hi_;
        RowResults<T, I> out(m, num_threads);
        if (symmetric_ && RowTopKSet<T, I>::bytes(m, k_) * num_threads <= private_budget_) {
            run_half_private(num_threads, lo, hi, out);
        } else if (symmetric_) {
            SharedRowTopK<T, I> heaps(m, k_);
#pragma omp parallel num_threads(num_threads)
            {
                State st(n_cols(), k_);
#pragma omp for schedule(dynamic, 8)
                for (int64_t i = lo; i < hi; ++i) {
                    const size_t kept = row_topk(i, st, [&](T s, int64_t j) {
                        if (heaps.may_enter(j, s) && !excluded(j, i)) heaps.push(j, s, static_cast<I>(i));
                    });
                    heaps.push_many(i, st.best.data(), kept);
                }
            }
#pragma omp parallel num_threads(num_threads)
            {
                const int t = omp_get_thread_num();
#pragma omp for schedule(static)
                for (int64_t i = 0; i < m; ++i) {
                    int64_t cnt = 0;
                    const Scored<T, I>* row = heaps.finish_row(i, cnt);
                    out.store(i, t, row, cnt);
                    heaps.release_row(i);
                }
            }
        } else {
#pragma omp parallel num_threads(num_threads)
            {
                const int t = omp_get_thread_num();
                State st(n_cols(), k_);
#pragma omp for schedule(dynamic, 16)
                for (int64_t i = 0; i < m; ++i) {
                    const size_t kept = row_topk(i, st, [](T, int64_t) {});
                    out.store(i, t, st.best.data(), static_cast<int64_t>(kept));
                }
            }
        }
        return out;
    }

private:
    // Half product with one set of row buffers per thread (when they fit private_budget_ bytes):
    // no locks and no cache lines shared between threads; the sets are merged row by row.

    void run_half_private(int num_threads, int64_t lo, int64_t hi, RowResults<T, I>& out) const {
        const int64_t m = x_.rows;
        std::vector<std::unique_ptr<RowTopKSet<T, I>>> sets(static_cast<size_t>(num_threads));
#pragma omp parallel num_threads(num_threads)
        {
            const int t = omp_get_thread_num();
            sets[t] = std::make_unique<RowTopKSet<T, I>>(m, k_);
            RowTopKSet<T, I>& mine = *sets[t];
            State st(n_cols(), k_);
#pragma omp for schedule(dynamic, 8)
            for (int64_t i = lo; i < hi; ++i) {
                const size_t kept = row_topk(i, st, [&](T s, int64_t j) {
                    if (!excluded(j, i)) mine.push(j, s, static_cast<I>(i));
                });
                mine.push_many(i, st.best.data(), kept);
            }
        }
#pragma omp parallel num_threads(num_threads)
        {
            const int t = omp_get_thread_num();
            std::vector<Scored<T, I>> merged;
#pragma omp for schedule(static)
            for (int64_t i = 0; i < m; ++i) {
                merged.clear();
                for (auto& set : sets) {
                    if (!set) continue;  // OpenMP may run fewer threads than asked for
                    int64_t cnt = 0;
                    const Scored<T, I>* row = set->finish_row(i, cnt);
                    merged.insert(merged.end(), row, row + cnt);
                    set->release_row(i);
                }
                const size_t kept = select_topk(merged.data(), merged.size(), static_cast<size_t>(k_));
                out.store(i, t, merged.data(), static_cast<int64_t>(kept));
            }
        }
    }

    struct State {
        std::vector<A> acc;
        std::vector<I> touched;
        std::vector<uint64_t> mark;
        std::vector<uint8_t> excluded;
        std::vector<Scored<T, I>> best;  // all non-zero candidates of the row; the best k first
        std::vector<uint64_t> keys;      // the same candidates as packed keys (float32 / int32)
        std::vector<int64_t> seg_begin;
        State(int64_t n, int64_t k)
            : acc(static_cast<size_t>(n * C), A(0)), best(static_cast<size_t>(kKeyed ? k : n)),
              keys(static_cast<size_t>(kKeyed ? n : 0)) {
            touched.reserve(static_cast<size_t>(n));
            mark.assign(static_cast<size_t>((n + 63) >> 6), 0);
            excluded.assign(static_cast<size_t>(n), 0);
            seg_begin.reserve(64);
        }
    };

    int64_t n_cols() const { return yt_.cols; }

    // Forms s(i, j) for every j that shares a dimension with row i (j > i in symmetric mode),
    // hands each non-zero score to on_pair(s, j), keeps the best k in st.best (sorted) and
    // returns how many; leaves the accumulator zeroed.
    template <class OnPair>
    size_t row_topk(int64_t i, State& st, OnPair&& on_pair) const {
        const int64_t n = n_cols();
        const int64_t lo = symmetric_ ? i + 1 : 0;
        const int64_t xb = x_.row_begin(i), xe = x_.row_end(i);
        st.seg_begin.resize(static_cast<size_t>(xe - xb));
        int64_t work = 0;
        for (int64_t p = xb; p < xe; ++p) {
            const I u = x_.indices[p];
            int64_t b = yt_.row_begin(u);
            const int64_t e = yt_.row_end(u);
            if (symmetric_) {
                b = std::upper_bound(yt_.indices + b, yt_.indices + e, static_cast<J>(i)) - yt_.indices;
            }
            st.seg_begin[p - xb] = b;
            work += e - b;
        }
        if (work == 0) return 0;
        A* acc = st.acc.data();
        size_t nc = 0;
        // Symmetric mode forms each pair once for both rows, so row i's exclusions may only
        // hide j from row i (a flag per column), not remove the pair for row j as well.
        const bool flag_excluded = symmetric_ && exclude_;
        if (flag_excluded) set_excluded_flags(i, st, 1);
        auto emit = [&](int64_t j, A* a) {
            const T s = static_cast<T>(Policy::score(a, i, j, ctx_));
            // Row j's copy of a pair formed once is scored in row j's own order, as the plain
            // product scores it, so a row's scores never depend on how the rows are blocked.
            const T s_for_j = symmetric_ ? static_cast<T>(Policy::score(a, j, i, ctx_)) : s;
            for (int c = 0; c < C; ++c) a[c] = A(0);
            if (s_for_j != T(0)) on_pair(s_for_j, j);
            if (s == T(0)) return;
            if (flag_excluded && st.excluded[j]) return;
            if constexpr (kKeyed) {
                st.keys[nc++] = pack_best_first(s, static_cast<int32_t>(j));
            } else {
                st.best[nc++] = Scored<T, I>{s, static_cast<I>(j)};
            }
        };
        // Rows with less work mark touched columns in a bitmap (branch-free, read back in
        // column order); very sparse rows keep a list of first touches instead.
        if (work >= n - lo) {
            // Dense rows: most columns are touched anyway, so scan them all and mark nothing.
            accumulate<Marking::None>(i, st);
            if (!symmetric_) clear_excluded(i, acc);
            for (int64_t j = lo; j < n; ++j) {
                A* a = acc + j * C;
                if (Policy::touched(a)) emit(j, a);
            }
        } else if (work * 4 >= (n >> 6)) {
            accumulate<Marking::Bitmap>(i, st);
            if (!symmetric_) clear_excluded(i, acc);
            uint64_t* mark = st.mark.data();
            for (int64_t w = lo >> 6, nw = (n + 63) >> 6; w < nw; ++w) {
                uint64_t bits = mark[w];
                if (!bits) continue;
                mark[w] = 0;
                while (bits) {
                    const int64_t j = (w << 6) + __builtin_ctzll(bits);
                    bits &= bits - 1;
                    emit(j, acc + j * C);
                }
            }
        } else {
            st.touched.clear();
            accumulate<Marking::List>(i, st);
            if (!symmetric_) clear_excluded(i, acc);
            for (const I j : st.touched) {
                A* a = acc + static_cast<int64_t>(j) * C;
                if (Policy::touched(a)) emit(j, a);  // an entry listed twice is zero the second time
            }
        }
        if (flag_excluded) set_excluded_flags(i, st, 0);
        if constexpr (kKeyed) {
            const size_t kept = select_topk_keys(st.keys.data(), nc, static_cast<size_t>(k_));
            for (size_t t = 0; t < kept; ++t) st.best[t] = unpack_best_first(st.keys[t]);
            return kept;
        } else {
            return select_topk(st.best.data(), nc, static_cast<size_t>(k_));
        }
    }

    void set_excluded_flags(int64_t i, State& st, uint8_t value) const {
        for (int64_t p = exclude_->row_begin(i), e = exclude_->row_end(i); p < e; ++p) {
            st.excluded[static_cast<size_t>(exclude_->indices[p])] = value;
        }
    }

    // Zeroed accumulators score 0 and are never emitted.
    void clear_excluded(int64_t i, A* acc) const {
        if (exclude_self_) {
            for (int c = 0; c < C; ++c) acc[i * C + c] = A(0);
        }
        if (!exclude_) return;
        for (int64_t p = exclude_->row_begin(i), e = exclude_->row_end(i); p < e; ++p) {
            A* a = acc + static_cast<int64_t>(exclude_->indices[p]) * C;
            for (int c = 0; c < C; ++c) a[c] = A(0);
        }
    }

    // Whether row r excludes column c (binary search in r's sorted exclude row).
    bool excluded(int64_t r, int64_t c) const {
        if (!exclude_) return false;
        const I* b = exclude_->indices + exclude_->row_begin(r);
        const I* e = exclude_->indices + exclude_->row_end(r);
        return std::binary_search(b, e, static_cast<I>(c));
    }

    enum class Marking { None, Bitmap, List };

    template <Marking Mark>
    void accumulate(int64_t i, State& st) const {
        A* acc = st.acc.data();
        uint64_t* mark = st.mark.data();
        const int64_t xb = x_.row_begin(i), xe = x_.row_end(i);
        for (int64_t p = xb; p < xe; ++p) {
            const T xv = x_.data ? x_.data[p] : T(1);
            const I u = x_.indices[p];
            const int64_t e = yt_.row_end(u);
            const J* idx = yt_.indices;
            const T* val = yt_.data;
            for (int64_t q = st.seg_begin[p - xb]; q < e; ++q) {
                const int64_t j = idx[q];
                A* a = acc + j * C;
                if (Mark == Marking::List) {
                    if (!Policy::touched(a)) st.touched.push_back(static_cast<I>(j));
                } else if (Mark == Marking::Bitmap) {
                    mark[j >> 6] |= uint64_t(1) << (j & 63);
                }
                Policy::add(a, xv, val ? val[q] : T(1));
            }
        }
    }

    const CsrView<T, I>& x_;
    const CsrView<T, I, J>& yt_;
    const Context<T>& ctx_;
    int64_t k_;
    bool symmetric_;
    bool exclude_self_;
    const CsrView<T, I>* exclude_;
    size_t private_budget_;
    int64_t row_lo_ = 0, row_hi_ = -1;  // pair_rows: the half product's rows i (all by default)
};

}  // namespace similarity
}  // namespace recforge
