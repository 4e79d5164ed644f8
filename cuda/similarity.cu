// similarity_topk on the GPU: the same metrics, operands and tie rule as the CPU core
// (cpp/include/recforge/similarity.hpp), computed tile by tile:
//
//   0. transpose Y on the device (Yt: for each dimension, the rows of Y that store it);
//   1. accumulate: for a tile of X rows, a block per row forms the row's similarity channels
//      against every row of Y in a dense tile (rows x channels x n) in device memory: warps take
//      the row's stored entries (x_iu) in turn, lanes walk row u of Yt (coalesced) and add
//      x_iu * y_ju into channel[j] with atomic adds;
//   2. select: a warp per row turns channels into scores (the CPU's formulas, rounded the same
//      way), skips exact zeros, the row itself (symmetric mode) and excluded columns (binary
//      search in the row of the exclusion pattern, only for candidates that would enter the
//      top k), and keeps the k best with
//      the warp-level streaming top-k of topk.cuh.
//
// Scores equal the CPU's up to the order of floating-point additions (exact for 0/1 data).
#include <cub/device/device_scan.cuh>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "api.hpp"
#include "common.cuh"
#include "topk.cuh"

namespace recforge {
namespace cuda {
namespace {

template <class T>
struct Ctx {
    const T* x_scale;
    const T* y_scale;
    const int64_t* x_size;
    const int64_t* y_size;
    double shrink;
    double min_support;
    bool symmetric;
    const int64_t* excl_indptr;   // optional: row i never returns the columns stored in row i
    const int64_t* excl_indices;
};

// Is column j stored in row i of the exclusion pattern (sorted indices)?
__device__ __forceinline__ bool excluded(const int64_t* __restrict__ p, const int64_t* __restrict__ ix, int64_t i,
                                         int64_t j) {
    int64_t lo = p[i], hi = p[i + 1];
    while (lo < hi) {
        const int64_t mid = (lo + hi) >> 1;
        const int64_t v = ix[mid];
        if (v == j) return true;
        if (v < j) lo = mid + 1;
        else hi = mid;
    }
    return false;
}

__device__ __forceinline__ double shrunk(double s, double n, double shrink) {
    return shrink > 0.0 ? __ddiv_rn(__dmul_rn(s, n), __dadd_rn(n, shrink)) : s;
}

// dot (cosine family after reweighting): channel 0 = sum x*y, with Count channel 1 = co-support.
template <class T, bool Count>
struct DotPolicy {
    using Acc = T;
    static constexpr int C = Count ? 2 : 1;
    __device__ static void add(Acc* a, int64_t n, int64_t j, T x, T y) {
        atomicAdd(a + j, x * y);
        if constexpr (Count) atomicAdd(a + n + j, Acc(1));
    }
    __device__ static double score(const Acc* ch, int64_t i, int64_t j, const Ctx<T>& c) {
        double s = ch[0];
        if (c.x_scale) {
            // Row order (a x_i) y_j, as the CPU core forms every row (its half product, chosen
            // by a cost heuristic, may differ in the last bit).
            const T t = ch[0] * c.x_scale[i];
            s = static_cast<double>(static_cast<T>(t * c.y_scale[j]));
        }
        if constexpr (Count) {
            if (ch[1] < c.min_support) return 0.0;
            s = shrunk(s, ch[1], c.shrink);
        }
        return s;
    }
};

// jaccard on the pattern: c / (|x| + |y| - c), c = co-support.
template <class T>
struct JaccardPolicy {
    using Acc = T;
    static constexpr int C = 1;
    __device__ static void add(Acc* a, int64_t, int64_t j, T, T) { atomicAdd(a + j, Acc(1)); }
    __device__ static double score(const Acc* ch, int64_t i, int64_t j, const Ctx<T>& c) {
        const double n = ch[0];
        if (n < c.min_support) return 0.0;
        const double s = __ddiv_rn(n, __dsub_rn(static_cast<double>(c.x_size[i] + c.y_size[j]), n));
        return shrunk(s, n, c.shrink);
    }
};

// pearson over co-rated dimensions (Surprise): n, sum xy, sum x, sum y, sum x^2, sum y^2.
template <class T>
struct PearsonPolicy {
    using Acc = double;
    static constexpr int C = 6;
    __device__ static void add(Acc* a, int64_t n, int64_t j, T x, T y) {
        const double dx = x, dy = y;
        atomicAdd(a + j, 1.0);
        atomicAdd(a + n + j, __dmul_rn(dx, dy));
        atomicAdd(a + 2 * n + j, dx);
        atomicAdd(a + 3 * n + j, dy);
        atomicAdd(a + 4 * n + j, __dmul_rn(dx, dx));
        atomicAdd(a + 5 * n + j, __dmul_rn(dy, dy));
    }
    __device__ static double score(const Acc* a, int64_t, int64_t, const Ctx<T>& c) {
        const double n = a[0];
        if (n < c.min_support) return 0.0;
        const double num = __dsub_rn(__dmul_rn(n, a[1]), __dmul_rn(a[2], a[3]));
        const double vx = __dsub_rn(__dmul_rn(n, a[4]), __dmul_rn(a[2], a[2]));
        const double vy = __dsub_rn(__dmul_rn(n, a[5]), __dmul_rn(a[3], a[3]));
        const double den = __dsqrt_rn(__dmul_rn(vx, vy));
        if (den == 0.0 || !isfinite(den)) return 0.0;
        return shrunk(__ddiv_rn(num, den), n, c.shrink);
    }
};

// msd over co-rated dimensions (Surprise): 1 / (sum (x - y)^2 / n + 1).
template <class T>
struct MsdPolicy {
    using Acc = double;
    static constexpr int C = 2;
    __device__ static void add(Acc* a, int64_t n, int64_t j, T x, T y) {
        const double d = __dsub_rn(static_cast<double>(x), static_cast<double>(y));
        atomicAdd(a + j, 1.0);
        atomicAdd(a + n + j, __dmul_rn(d, d));
    }
    __device__ static double score(const Acc* a, int64_t, int64_t, const Ctx<T>& c) {
        const double n = a[0];
        if (n < c.min_support) return 0.0;
        return shrunk(__ddiv_rn(1.0, __dadd_rn(__ddiv_rn(a[1], n), 1.0)), n, c.shrink);
    }
};

// Yt = Y transposed, built on the device: count entries per column, exclusive scan (CUB, header
// only), scatter with an atomic cursor per column. The order of entries within a row of Yt is
// arbitrary, which the accumulation (atomic adds) does not care about.
__global__ void count_columns_kernel(const int32_t* __restrict__ indices, int64_t nnz,
                                     unsigned long long* __restrict__ counts) {
    for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < nnz; p += int64_t(gridDim.x) * blockDim.x)
        atomicAdd(counts + indices[p], 1ull);
}

template <class T>
__global__ void scatter_transpose_kernel(const int64_t* __restrict__ yp, const int32_t* __restrict__ yi,
                                         const T* __restrict__ yd, int64_t rows,
                                         unsigned long long* __restrict__ cursor, int32_t* __restrict__ ti,
                                         T* __restrict__ td) {
    const int64_t warps = int64_t(gridDim.x) * (blockDim.x / kWarp);
    const int lane = threadIdx.x % kWarp;
    for (int64_t r = blockIdx.x * int64_t(blockDim.x / kWarp) + threadIdx.x / kWarp; r < rows; r += warps) {
        for (int64_t p = yp[r] + lane; p < yp[r + 1]; p += kWarp) {
            const unsigned long long at = atomicAdd(cursor + yi[p], 1ull);
            ti[at] = static_cast<int32_t>(r);
            if (td) td[at] = yd[p];
        }
    }
}

template <class T>
struct DeviceCsr {
    Scratch<int64_t> indptr;
    Scratch<int32_t> indices;
    Scratch<T> data;
};

// Y (rows x cols CSR with nnz entries) transposed into t (cols x rows).
template <class T>
void transpose_on_device(const int64_t* yp, const int32_t* yi, const T* yd, int64_t rows, int64_t cols,
                         int64_t nnz, DeviceCsr<T>& t, cudaStream_t stream) {
    t.indptr.reset(size_t(cols) + 1);
    t.indices.reset(size_t(std::max<int64_t>(nnz, 1)));
    if (yd) t.data.reset(size_t(std::max<int64_t>(nnz, 1)));
    Scratch<unsigned long long> counts(size_t(cols) + 1);
    RECFORGE_CUDA_CHECK(cudaMemsetAsync(counts.get(), 0, (size_t(cols) + 1) * sizeof(unsigned long long), stream));
    if (nnz > 0) {
        const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(nnz, 256), 65535));
        count_columns_kernel<<<blocks, 256, 0, stream>>>(yi, nnz, counts.get());
        RECFORGE_CUDA_LAUNCHED(count_columns_kernel);
    }
    // indptr[0] = 0, indptr[c + 1] = counts[0] + ... + counts[c]: an exclusive scan of cols + 1
    // counts whose last count is 0.
    auto* out = reinterpret_cast<unsigned long long*>(t.indptr.get());
    size_t temp_bytes = 0;
    RECFORGE_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, temp_bytes, counts.get(), out, cols + 1, stream));
    Scratch<unsigned char> temp(std::max<size_t>(temp_bytes, 1));
    RECFORGE_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(temp.get(), temp_bytes, counts.get(), out, cols + 1, stream));
    // The cursor of column c starts at indptr[c].
    RECFORGE_CUDA_CHECK(cudaMemcpyAsync(counts.get(), out, size_t(cols) * sizeof(unsigned long long),
                                        cudaMemcpyDeviceToDevice, stream));
    if (nnz > 0 && rows > 0) {
        const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(rows, 8), 65535));
        scatter_transpose_kernel<T><<<blocks, 256, 0, stream>>>(yp, yi, yd, rows, counts.get(), t.indices.get(),
                                                                 yd ? t.data.get() : nullptr);
        RECFORGE_CUDA_LAUNCHED(scatter_transpose_kernel);
    }
    RECFORGE_CUDA_CHECK(cudaStreamSynchronize(stream));  // before `counts` and `temp` are freed
}

constexpr int kAccumulateThreads = 512;  // few rows in flight at once keeps their channels in cache
constexpr int kSelectWarps = 4;

// Adds x_iu * y_ju into channel[j] for every stored x_iu of row i (warps take entries in turn,
// lanes walk row u of Yt).
template <class P, class T>
__device__ __forceinline__ void accumulate_row(const int64_t* __restrict__ xp, const int32_t* __restrict__ xi,
                                               const T* __restrict__ xd, const int64_t* __restrict__ tp,
                                               const int32_t* __restrict__ ti, const T* __restrict__ td,
                                               int64_t n, int64_t i, typename P::Acc* a) {
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp, warps = blockDim.x / kWarp;
    const int64_t end = xp[i + 1];
    for (int64_t p = xp[i] + warp; p < end; p += warps) {
        const T xv = xd ? xd[p] : T(1);
        const int64_t u = xi[p];
        const int64_t qe = tp[u + 1];
        for (int64_t q = tp[u] + lane; q < qe; q += kWarp) {
            P::add(a, n, static_cast<int64_t>(ti[q]), xv, td ? td[q] : T(1));
        }
    }
}

// Channels accumulated straight into the (zeroed) dense tile in global memory.
template <class P, class T>
__global__ void __launch_bounds__(kAccumulateThreads) accumulate_kernel(
    const int64_t* __restrict__ xp, const int32_t* __restrict__ xi, const T* __restrict__ xd,
    const int64_t* __restrict__ tp, const int32_t* __restrict__ ti, const T* __restrict__ td, int64_t n,
    int64_t row0, typename P::Acc* __restrict__ acc) {
    accumulate_row<P, T>(xp, xi, xd, tp, ti, td, n, row0 + blockIdx.x,
                         acc + static_cast<int64_t>(blockIdx.x) * P::C * n);
}

// When a row's channels fit in shared memory: accumulate there (fast atomics), then store the
// row into the tile with coalesced writes (no memset of the tile needed).
template <class P, class T>
__global__ void __launch_bounds__(kAccumulateThreads) accumulate_shared_kernel(
    const int64_t* __restrict__ xp, const int32_t* __restrict__ xi, const T* __restrict__ xd,
    const int64_t* __restrict__ tp, const int32_t* __restrict__ ti, const T* __restrict__ td, int64_t n,
    int64_t row0, typename P::Acc* __restrict__ acc) {
    using Acc = typename P::Acc;
    extern __shared__ __align__(16) unsigned char shared_raw[];
    Acc* s = reinterpret_cast<Acc*>(shared_raw);
    const int64_t total = int64_t(P::C) * n;
    for (int64_t t = threadIdx.x; t < total; t += blockDim.x) s[t] = Acc(0);
    __syncthreads();
    accumulate_row<P, T>(xp, xi, xd, tp, ti, td, n, row0 + blockIdx.x, s);
    __syncthreads();
    Acc* a = acc + static_cast<int64_t>(blockIdx.x) * total;
    for (int64_t t = threadIdx.x; t < total; t += blockDim.x) a[t] = s[t];
}

template <class P, class T>
__global__ void select_kernel(const typename P::Acc* __restrict__ acc, int64_t rows, int64_t n, int64_t row0,
                              Ctx<T> ctx, int64_t k, T* lists_s, int64_t* lists_i, T* out_s,
                              int64_t* out_i, int64_t* out_count) {
    __shared__ T q_s[kSelectWarps][kQueue];
    __shared__ int64_t q_i[kSelectWarps][kQueue];
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    const int64_t r = static_cast<int64_t>(blockIdx.x) * kSelectWarps + warp;
    if (r >= rows) return;  // the whole warp leaves together
    const int64_t i = row0 + r;
    const typename P::Acc* a = acc + r * P::C * n;
    RowTopK<T> st = make_row_topk<T>(lists_s + r * 2 * k, lists_i + r * 2 * k, q_s[warp], q_i[warp], k);
    for (int64_t j0 = 0; j0 < n; j0 += kWarp) {
        const int64_t j = j0 + lane;
        bool pass = j < n && !(ctx.symmetric && j == i);
        T s = T(0);
        if (pass) {
            typename P::Acc ch[P::C];
#pragma unroll
            for (int c = 0; c < P::C; ++c) ch[c] = a[c * n + j];
            s = static_cast<T>(P::score(ch, i, j, ctx));
            pass = s != T(0) && st.wants(s, j);
            if (pass && ctx.excl_indptr) pass = !excluded(ctx.excl_indptr, ctx.excl_indices, i, j);
        }
        st.push(pass, s, j, lane);
    }
    st.flush(lane);
    const int64_t kept = st.write(out_s + i * k, out_i + i * k, T(0), lane);
    if (lane == 0) out_count[i] = kept;
}

template <class P, class T>
void run_policy(const SimilarityArgs& a, const Ctx<T>& ctx, cudaStream_t stream) {
    using Acc = typename P::Acc;
    const int64_t m = a.m, n = a.n, k = a.k;
    // Yt (d x n): for every dimension u, the rows j of Y that store it.
    DeviceCsr<T> yt;
    int64_t y_nnz = 0;
    RECFORGE_CUDA_CHECK(cudaMemcpyAsync(&y_nnz, as_ptr<const int64_t>(a.y_indptr) + n, sizeof(int64_t),
                                        cudaMemcpyDeviceToHost, stream));
    RECFORGE_CUDA_CHECK(cudaStreamSynchronize(stream));
    transpose_on_device<T>(as_ptr<const int64_t>(a.y_indptr), as_ptr<const int32_t>(a.y_indices),
                           as_ptr<const T>(a.y_data), n, a.d, y_nnz, yt, stream);
    const int64_t* tp = yt.indptr.get();
    const int32_t* ti = yt.indices.get();
    const T* td = a.y_data ? yt.data.get() : nullptr;
    const auto* xp = as_ptr<const int64_t>(a.x_indptr);
    const auto* xi = as_ptr<const int32_t>(a.x_indices);
    const auto* xd = as_ptr<const T>(a.x_data);

    // Rows per tile: the dense channels of a tile plus its rows' top-k lists fit the budget.
    const size_t row_bytes = size_t(P::C) * n * sizeof(Acc);
    const size_t per_row = row_bytes + size_t(2 * k) * (sizeof(T) + sizeof(int64_t));
    const size_t budget = scratch_budget(a.memory_budget);
    const int64_t tile = std::max<int64_t>(1, std::min<int64_t>(m, static_cast<int64_t>(budget / per_row)));
    Scratch<Acc> acc(size_t(tile) * P::C * n);
    Scratch<T> lists_s(size_t(tile) * 2 * k);
    Scratch<int64_t> lists_i(size_t(tile) * 2 * k);

    // Shared-memory accumulation when one row's channels fit the per-block limit.
    // RECFORGE_CUDA_GLOBAL_ACCUMULATE=1 forces the global-memory path (tests use it to cover both).
    int device = 0, shared_optin = 0;
    RECFORGE_CUDA_CHECK(cudaGetDevice(&device));
    RECFORGE_CUDA_CHECK(cudaDeviceGetAttribute(&shared_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    const char* force_global = std::getenv("RECFORGE_CUDA_GLOBAL_ACCUMULATE");
    const bool in_shared = row_bytes <= size_t(shared_optin) && !(force_global && force_global[0] == '1');
    if (in_shared) {
        RECFORGE_CUDA_CHECK(cudaFuncSetAttribute(accumulate_shared_kernel<P, T>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 static_cast<int>(row_bytes)));
    }
    for (int64_t row0 = 0; row0 < m; row0 += tile) {
        const int64_t rows = std::min(tile, m - row0);
        if (in_shared) {
            accumulate_shared_kernel<P, T><<<static_cast<unsigned>(rows), kAccumulateThreads, row_bytes, stream>>>(
                xp, xi, xd, tp, ti, td, n, row0, acc.get());
            RECFORGE_CUDA_LAUNCHED(accumulate_shared_kernel);
        } else {
            RECFORGE_CUDA_CHECK(cudaMemsetAsync(acc.get(), 0, size_t(rows) * row_bytes, stream));
            accumulate_kernel<P, T><<<static_cast<unsigned>(rows), kAccumulateThreads, 0, stream>>>(
                xp, xi, xd, tp, ti, td, n, row0, acc.get());
            RECFORGE_CUDA_LAUNCHED(accumulate_kernel);
        }
        select_kernel<P, T><<<static_cast<unsigned>(ceil_div(rows, kSelectWarps)), kSelectWarps * kWarp, 0, stream>>>(
            acc.get(), rows, n, row0, ctx, k, lists_s.get(), lists_i.get(), as_ptr<T>(a.out_scores),
            as_ptr<int64_t>(a.out_indices), as_ptr<int64_t>(a.out_counts));
        RECFORGE_CUDA_LAUNCHED(select_kernel);
    }
    RECFORGE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

template <class T>
void run_typed(const SimilarityArgs& a, cudaStream_t stream) {
    Ctx<T> ctx{as_ptr<const T>(a.x_scale), as_ptr<const T>(a.y_scale), as_ptr<const int64_t>(a.x_size),
               as_ptr<const int64_t>(a.y_size), a.shrink, a.min_support, a.symmetric,
               as_ptr<const int64_t>(a.excl_indptr), as_ptr<const int64_t>(a.excl_indices)};
    switch (a.kind) {
        case 0:
            if (a.count) run_policy<DotPolicy<T, true>, T>(a, ctx, stream);
            else run_policy<DotPolicy<T, false>, T>(a, ctx, stream);
            return;
        case 1: run_policy<JaccardPolicy<T>, T>(a, ctx, stream); return;
        case 2: run_policy<PearsonPolicy<T>, T>(a, ctx, stream); return;
        case 3: run_policy<MsdPolicy<T>, T>(a, ctx, stream); return;
        default: throw std::invalid_argument("similarity_topk: unknown kernel kind " + std::to_string(a.kind));
    }
}

}  // namespace

void similarity_topk(const SimilarityArgs& a, int device, uintptr_t stream) {
    DeviceGuard guard(device);
    if (a.m == 0 || a.n == 0) return;
    if (a.f64) run_typed<double>(a, as_stream(stream));
    else run_typed<float>(a, as_stream(stream));
}

}  // namespace cuda
}  // namespace recforge
