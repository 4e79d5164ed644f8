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

// Result rows before compaction: row r holds counts[r] entries at entries[r * k], best first.
template <class T, class I>
struct RowResults {
    int64_t k = 0;
    std::vector<Scored<T, I>> entries;
    std::vector<int64_t> counts;
};

template <class Policy, class T, class I>
class Kernel {
    using A = typename Policy::Acc;
    static constexpr int C = Policy::C;

public:
    Kernel(const CsrView<T, I>& x, const CsrView<T, I>& yt, const Context<T>& ctx, int64_t k,
           bool symmetric)
        : x_(x), yt_(yt), ctx_(ctx), k_(k), symmetric_(symmetric) {}

    RowResults<T, I> run(int num_threads) const {
        const int64_t m = x_.rows;
        RowResults<T, I> out;
        out.k = k_;
        out.counts.assign(m, 0);
        if (symmetric_) {
            SharedRowHeaps<T, I> heaps(m, k_);
#pragma omp parallel num_threads(num_threads)
            {
                State st(n_cols(), x_.cols);
#pragma omp for schedule(dynamic, 8)
                for (int64_t i = 0; i < m; ++i) {
                    const size_t nc = candidates(i, st);
                    for (size_t t = 0; t < nc; ++t) {
                        const auto& c = st.cand[t];
                        if (heaps.may_enter(c.index, c.score)) heaps.push(c.index, c.score, static_cast<I>(i));
                    }
                    const size_t kept = select_topk(st.cand.data(), nc, static_cast<size_t>(k_));
                    heaps.push_many(i, st.cand.data(), kept);
                }
            }
            out.entries.resize(static_cast<size_t>(m * k_));
#pragma omp parallel for num_threads(num_threads) schedule(static)
            for (int64_t i = 0; i < m; ++i) {
                int64_t cnt = 0;
                const Scored<T, I>* row = heaps.finish_row(i, cnt);
                std::copy(row, row + cnt, out.entries.begin() + i * k_);
                out.counts[i] = cnt;
            }
        } else {
            out.entries.resize(static_cast<size_t>(m * k_));
#pragma omp parallel num_threads(num_threads)
            {
                State st(n_cols(), x_.cols);
#pragma omp for schedule(dynamic, 16)
                for (int64_t i = 0; i < m; ++i) {
                    const size_t nc = candidates(i, st);
                    const size_t kept = select_topk(st.cand.data(), nc, static_cast<size_t>(k_));
                    std::copy(st.cand.begin(), st.cand.begin() + kept, out.entries.begin() + i * k_);
                    out.counts[i] = static_cast<int64_t>(kept);
                }
            }
        }
        return out;
    }

private:
    struct State {
        std::vector<A> acc;
        std::vector<I> touched;
        std::vector<Scored<T, I>> cand;
        std::vector<int64_t> seg_begin;
        State(int64_t n, int64_t d) : acc(static_cast<size_t>(n * C), A(0)), cand(static_cast<size_t>(n)) {
            touched.reserve(static_cast<size_t>(n));
            seg_begin.reserve(64);
        }
    };

    int64_t n_cols() const { return yt_.cols; }

    // Forms s(i, j) for every j that shares a dimension with row i (j > i in symmetric mode),
    // writes the non-zero ones to st.cand and leaves the accumulator zeroed.
    size_t candidates(int64_t i, State& st) const {
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
                b = std::upper_bound(yt_.indices + b, yt_.indices + e, static_cast<I>(i)) - yt_.indices;
            }
            st.seg_begin[p - xb] = b;
            work += e - b;
        }
        if (work == 0) return 0;
        A* acc = st.acc.data();
        size_t nc = 0;
        // A full scan of [lo, n) beats per-entry first-touch checks once the row is dense enough.
        if (work * 4 >= n - lo) {
            accumulate<false>(i, st);
            for (int64_t j = lo; j < n; ++j) {
                A* a = acc + j * C;
                if (!Policy::touched(a)) continue;
                nc += emit(i, j, a, st, nc);
            }
        } else {
            st.touched.clear();
            accumulate<true>(i, st);
            for (const I j : st.touched) {
                A* a = acc + static_cast<int64_t>(j) * C;
                if (!Policy::touched(a)) continue;  // a repeated entry, already emitted
                nc += emit(i, j, a, st, nc);
            }
        }
        return nc;
    }

    template <bool Track>
    void accumulate(int64_t i, State& st) const {
        A* acc = st.acc.data();
        const int64_t xb = x_.row_begin(i), xe = x_.row_end(i);
        for (int64_t p = xb; p < xe; ++p) {
            const T xv = x_.data ? x_.data[p] : T(1);
            const I u = x_.indices[p];
            const int64_t e = yt_.row_end(u);
            const I* idx = yt_.indices;
            const T* val = yt_.data;
            for (int64_t q = st.seg_begin[p - xb]; q < e; ++q) {
                const int64_t j = idx[q];
                A* a = acc + j * C;
                if (Track && !Policy::touched(a)) st.touched.push_back(static_cast<I>(j));
                Policy::add(a, xv, val ? val[q] : T(1));
            }
        }
    }

    // Scores the pair, resets its accumulator, and appends it unless the score is exactly 0.
    size_t emit(int64_t i, int64_t j, A* a, State& st, size_t at) const {
        const T s = static_cast<T>(Policy::score(a, i, j, ctx_));
        for (int c = 0; c < C; ++c) a[c] = A(0);
        if (s == T(0)) return 0;
        st.cand[at] = Scored<T, I>{s, static_cast<I>(j)};
        return 1;
    }

    const CsrView<T, I>& x_;
    const CsrView<T, I>& yt_;
    const Context<T>& ctx_;
    int64_t k_;
    bool symmetric_;
};

}  // namespace similarity
}  // namespace recforge
