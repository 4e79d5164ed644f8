// Sparse x dense products for graph propagation (LightGCN).
//
// layer:      Y = A X, row-parallel: y_i = sum_j a_ij x_j, accumulated in a per-thread row
//             buffer (vectorised over the embedding dimension d), so every output row is
//             written once. The combination out += w * y is applied to the row while it is hot,
//             so combining layers never costs a pass of its own.
// propagate:  E_0 = E, E_{l+1} = A E_l, out = sum_l w_l E_l; the w_0 E_0 term is folded into
//             the first layer and the last layer is written straight into `out` when only it
//             is kept.
//
// When X is larger than the cache, the columns of A are visited in blocks (see Pass), so the
// gathered rows of X stay cached. The row loop is compiled three times (AVX-512, AVX2+FMA,
// baseline) and picked at run time; the build itself stays at the x86-64 baseline.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <memory>
#include <vector>

#include <omp.h>

#include "recforge/isa.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace recforge {
namespace graph {

// An uninitialised n x d buffer on transparent huge pages where the OS allows it (as numpy
// does for large arrays): the random row gathers of the next layer then miss the TLB far less.
template <class T>
class LayerBuffer {
public:
    explicit LayerBuffer(size_t count) {
        constexpr size_t huge = size_t(1) << 21;
        const size_t bytes = ((std::max<size_t>(count, 1) * sizeof(T) + huge - 1) / huge) * huge;
        void* p = nullptr;
        if (posix_memalign(&p, huge, bytes) != 0) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        madvise(p, bytes, MADV_HUGEPAGE);
#endif
        ptr_.reset(static_cast<T*>(p));
    }
    T* get() const { return ptr_.get(); }

private:
    struct Free {
        void operator()(T* p) const { std::free(p); }
    };
    std::unique_ptr<T, Free> ptr_;
};

template <class T, class I>
struct Csr {
    const I* indptr;
    const I* indices;
    const T* data;
    int64_t rows;
    int64_t cols;
};

// Column blocking: when x (cols x d) is larger than the caches, the columns of A are split
// into blocks visited in passes, so the rows of x gathered during a pass stay cached. Each row
// keeps a cursor into its (sorted) entries and a partial sum between passes; the last pass
// finishes the row and hands it to the sink.
template <class T>
struct Pass {
    int64_t* pos;       // per row: first entry not consumed by earlier passes
    uint8_t* started;   // per row: `partial` holds a sum from earlier passes
    T* partial;         // rows x d partial sums
    int64_t col_end;    // this pass consumes entries with column < col_end
    bool last;          // the last pass consumes the rest and applies the sink
};

// What one layer does with its product row y_i (all pointers are row-major, d columns):
//   next != nullptr:  next_i = y_i
//   out  != nullptr:  out_i  = base_i + w * y_i, where base_i = w0 * init_i when init != nullptr,
//                     0 when overwrite, else out_i (accumulate)
template <class T>
struct LayerSink {
    T* next = nullptr;
    T* out = nullptr;
    T w = T(1);
    const T* init = nullptr;
    T w0 = T(0);
    bool overwrite = false;
};

// Rows ahead whose x_j are prefetched: gathers from x are the random accesses of the loop.
constexpr int64_t kPrefetchDistance = 8;

template <class T, class I, int D, bool Blocked>
__attribute__((always_inline)) inline void layer_rows_body(const Csr<T, I>& a, const T* x, int64_t d_dyn,
                                                          const LayerSink<T>& s, int64_t r0, int64_t r1,
                                                          T* acc_dyn, const Pass<T>* pass) {
    const int64_t d = D > 0 ? D : d_dyn;
    // A fixed-size local accumulator lets the compiler keep it in vector registers.
    T acc_fixed[D > 0 ? D : 1];
    T* __restrict acc = D > 0 ? acc_fixed : acc_dyn;
    const int64_t nnz = static_cast<int64_t>(a.indptr[a.rows]);
    constexpr int64_t line = 64 / sizeof(T);
    const bool finish = !Blocked || pass->last;
    const int64_t col_end = Blocked && !pass->last ? pass->col_end : a.cols;
    for (int64_t i = r0; i < r1; ++i) {
        int64_t p = Blocked ? pass->pos[i] : static_cast<int64_t>(a.indptr[i]);
        const int64_t pe = a.indptr[i + 1];
        if (Blocked && !finish && (p == pe || static_cast<int64_t>(a.indices[p]) >= col_end)) continue;
        if (Blocked && pass->started[i]) {
            const T* part = pass->partial + i * d;
            for (int64_t t = 0; t < d; ++t) acc[t] = part[t];
        } else {
            for (int64_t t = 0; t < d; ++t) acc[t] = T(0);
        }
        for (; p < pe; ++p) {
            const int64_t j = a.indices[p];
            if (Blocked && j >= col_end) break;
            if (p + kPrefetchDistance < nnz) {
                const T* ahead = x + static_cast<int64_t>(a.indices[p + kPrefetchDistance]) * d;
                for (int64_t t = 0; t < d; t += line) __builtin_prefetch(ahead + t);
            }
            const T v = a.data[p];
            const T* __restrict xj = x + j * d;
            for (int64_t t = 0; t < d; ++t) acc[t] += v * xj[t];
        }
        if (!finish) {
            pass->pos[i] = p;
            pass->started[i] = 1;
            T* part = pass->partial + i * d;
            for (int64_t t = 0; t < d; ++t) part[t] = acc[t];
            continue;
        }
        if (s.next) {
            T* __restrict nx = s.next + i * d;
            for (int64_t t = 0; t < d; ++t) nx[t] = acc[t];
        }
        if (s.out) {
            T* __restrict o = s.out + i * d;
            const T w = s.w;
            if (s.init) {
                const T* e0 = s.init + i * d;
                const T w0 = s.w0;
                for (int64_t t = 0; t < d; ++t) o[t] = w0 * e0[t] + w * acc[t];
            } else if (s.overwrite) {
                for (int64_t t = 0; t < d; ++t) o[t] = w * acc[t];
            } else {
                for (int64_t t = 0; t < d; ++t) o[t] += w * acc[t];
            }
        }
    }
}

#define RECFORGE_LAYER_VARIANT(NAME, TARGET)                                                                  \
    template <class T, class I, int D, bool Blocked>                                                          \
    TARGET void NAME(const Csr<T, I>& a, const T* x, int64_t d, const LayerSink<T>& s, int64_t r0, int64_t r1, \
                     T* acc, const Pass<T>* pass) {                                                           \
        layer_rows_body<T, I, D, Blocked>(a, x, d, s, r0, r1, acc, pass);                                     \
    }
#if defined(__x86_64__) || defined(__i386__)
RECFORGE_LAYER_VARIANT(layer_rows_avx512, __attribute__((target("avx512f,avx512vl,avx2,fma,prefer-vector-width=512"))))
RECFORGE_LAYER_VARIANT(layer_rows_avx2, __attribute__((target("avx2,fma"))))
#endif
RECFORGE_LAYER_VARIANT(layer_rows_generic, )
#undef RECFORGE_LAYER_VARIANT

using recforge::Isa;

inline Isa best_isa() { return detect_isa(true); }

template <class T, class I>
using LayerFn = void (*)(const Csr<T, I>&, const T*, int64_t, const LayerSink<T>&, int64_t, int64_t, T*,
                         const Pass<T>*);

template <class T, class I, int D, bool Blocked>
LayerFn<T, I> pick_layer(Isa isa) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == Isa::Avx512) return &layer_rows_avx512<T, I, D, Blocked>;
    if (isa == Isa::Avx2) return &layer_rows_avx2<T, I, D, Blocked>;
#endif
    return &layer_rows_generic<T, I, D, Blocked>;
}

// Default column-block size of x: 16 MiB, so blocking starts once x exceeds 32 MiB, a common
// last-level cache size. (The OS-reported L3 size is not reliable inside VMs: this one reports
// 384 MB for a 32 MB cache.)
constexpr int64_t kDefaultBlockBytes = int64_t(16) << 20;

// One product Y = A X with its sink, rows split into chunks of about equal non-zero count.
// block_bytes: when x is larger than twice this (i.e. than the cache), its columns are split into
// blocks of about this size (0: never block). Measured on the 165k-node benchmark graph (x = 42 MB,
// 32 MB L3): 16 MB blocks made a product ~25% faster; on a graph whose x fits the cache, blocking
// only adds passes.
template <class T, class I, int D>
void layer(const Csr<T, I>& a, const T* x, int64_t d, const LayerSink<T>& s, int num_threads, Isa isa,
           int64_t block_bytes) {
    const int64_t rows = a.rows;
    const int64_t nnz = static_cast<int64_t>(a.indptr[rows]);
    // ~64 chunks per thread balance skewed (power-law) degrees without much scheduling cost.
    const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(rows, int64_t(num_threads) * 64));
    std::vector<int64_t> bounds(static_cast<size_t>(chunks + 1));
    bounds[0] = 0;
    for (int64_t c = 1; c < chunks; ++c) {
        // First row whose cumulative work (non-zeros + one per row) reaches c / chunks of the total.
        const int64_t target = (nnz + rows) * c / chunks;
        int64_t lo = bounds[c - 1], hi = rows;
        while (lo < hi) {
            const int64_t mid = (lo + hi) / 2;
            if (static_cast<int64_t>(a.indptr[mid]) + mid < target) lo = mid + 1; else hi = mid;
        }
        bounds[c] = lo;
    }
    bounds[chunks] = rows;
    const int64_t x_bytes = a.cols * d * static_cast<int64_t>(sizeof(T));
    const int64_t blocks = block_bytes > 0 && d > 0 && x_bytes > 2 * block_bytes ? (x_bytes + block_bytes - 1) / block_bytes : 1;
    if (blocks == 1) {
        const LayerFn<T, I> fn = pick_layer<T, I, D, false>(isa);
#pragma omp parallel num_threads(num_threads)
        {
            std::vector<T> acc(static_cast<size_t>(std::max<int64_t>(d, 1)));
#pragma omp for schedule(dynamic, 1)
            for (int64_t c = 0; c < chunks; ++c) fn(a, x, d, s, bounds[c], bounds[c + 1], acc.data(), nullptr);
        }
        return;
    }
    const LayerFn<T, I> fn = pick_layer<T, I, D, true>(isa);
    const int64_t block_cols = (a.cols + blocks - 1) / blocks;
    std::vector<int64_t> pos(static_cast<size_t>(rows));
    std::vector<uint8_t> started(static_cast<size_t>(rows), 0);
    LayerBuffer<T> partial(static_cast<size_t>(rows * d));
    for (int64_t i = 0; i < rows; ++i) pos[i] = a.indptr[i];
#pragma omp parallel num_threads(num_threads)
    {
        std::vector<T> acc(static_cast<size_t>(d));
        for (int64_t b = 0; b < blocks; ++b) {
            const Pass<T> pass{pos.data(), started.data(), partial.get(), (b + 1) * block_cols, b == blocks - 1};
#pragma omp for schedule(dynamic, 1)
            for (int64_t c = 0; c < chunks; ++c) fn(a, x, d, s, bounds[c], bounds[c + 1], acc.data(), &pass);
        }
    }
}

template <class T, class I>
void layer_any_d(const Csr<T, I>& a, const T* x, int64_t d, const LayerSink<T>& s, int num_threads, Isa isa,
                 int64_t block_bytes) {
    switch (d) {
        case 16: return layer<T, I, 16>(a, x, d, s, num_threads, isa, block_bytes);
        case 32: return layer<T, I, 32>(a, x, d, s, num_threads, isa, block_bytes);
        case 64: return layer<T, I, 64>(a, x, d, s, num_threads, isa, block_bytes);
        case 128: return layer<T, I, 128>(a, x, d, s, num_threads, isa, block_bytes);
        default: return layer<T, I, 0>(a, x, d, s, num_threads, isa, block_bytes);
    }
}

// Y = A B (rows x d).
template <class T, class I>
void spmm(const Csr<T, I>& a, const T* b, int64_t d, T* y, int num_threads, Isa isa,
          int64_t block_bytes) {
    LayerSink<T> s;
    s.next = y;
    layer_any_d(a, b, d, s, num_threads, isa, block_bytes);
}

// out = sum_{l=0..L} w_l A^l E, with L = weights.size() - 1. `out` is n x d; needs A square.
template <class T, class I>
void propagate(const Csr<T, I>& a, const T* e, int64_t d, const std::vector<double>& weights, T* out,
               int num_threads, Isa isa, int64_t block_bytes) {
    const int64_t n = a.rows;
    const int64_t layers = static_cast<int64_t>(weights.size()) - 1;
    // Only layers up to the last one with a non-zero weight matter.
    int64_t last_used = 0;
    for (int64_t l = 0; l <= layers; ++l)
        if (weights[l] != 0.0) last_used = l;
    if (last_used == 0) {
        const T w0 = static_cast<T>(weights[0]);
#pragma omp parallel for num_threads(num_threads) schedule(static)
        for (int64_t i = 0; i < n * d; ++i) out[i] = w0 * e[i];
        return;
    }
    // E_l for odd / even l, allocated (uninitialised) only when a later layer reads it.
    std::unique_ptr<LayerBuffer<T>> buf_a, buf_b;
    const T* x = e;
    bool out_written = false;
    for (int64_t l = 1; l <= last_used; ++l) {
        LayerSink<T> s;
        if (l < last_used) {
            std::unique_ptr<LayerBuffer<T>>& buf = (l % 2 == 1) ? buf_a : buf_b;
            if (!buf) buf.reset(new LayerBuffer<T>(static_cast<size_t>(n * d)));
            s.next = buf->get();
        }
        if (weights[l] != 0.0) {
            s.out = out;
            s.w = static_cast<T>(weights[l]);
            if (!out_written) {
                if (weights[0] != 0.0) {
                    s.init = e;
                    s.w0 = static_cast<T>(weights[0]);
                } else {
                    s.overwrite = true;
                }
                out_written = true;
            }
        }
        layer_any_d(a, x, d, s, num_threads, isa, block_bytes);
        x = s.next;
    }
}

}  // namespace graph
}  // namespace recforge
