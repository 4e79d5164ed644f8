// similarity_topk on the GPU: the same metrics, operands and tie rule as the CPU core
// (cpp/include/recforge/similarity.hpp), computed tile by tile:
//
//   1. accumulate: for a tile of X rows, a block per row forms the row's similarity channels
//      against every row of Y in a dense tile (rows x channels x n) in device memory: warps take
//      the row's stored entries (x_iu) in turn, lanes walk row u of Yt (coalesced) and add
//      x_iu * y_ju into channel[j] with atomic adds;
//   2. select: a warp per row turns channels into scores (the CPU's formulas, rounded the same
//      way), skips exact zeros and the row itself (symmetric mode), and keeps the k best with
//      the warp-level streaming top-k of topk.cuh.
//
// Scores equal the CPU's up to the order of floating-point additions (exact for 0/1 data).
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
};

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
            // The CPU forms a symmetric pair once, from its smaller row: scale in that order.
            const int64_t a = c.symmetric ? min(i, j) : i;
            const int64_t b = c.symmetric ? max(i, j) : j;
            const T t = ch[0] * c.x_scale[a];
            s = static_cast<double>(static_cast<T>(t * c.y_scale[b]));
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
    const size_t per_row = size_t(P::C) * n * sizeof(Acc) + size_t(2 * k) * (sizeof(T) + sizeof(int64_t));
    const size_t budget = scratch_budget(a.memory_budget);
    const int64_t tile = std::max<int64_t>(1, std::min<int64_t>(m, static_cast<int64_t>(budget / per_row)));
    Scratch<Acc> acc(size_t(tile) * P::C * n);
    Scratch<T> lists_s(size_t(tile) * 2 * k);
    Scratch<int64_t> lists_i(size_t(tile) * 2 * k);
    // Shared-memory accumulation when one row's channels fit the per-block limit.
    int device = 0, shared_optin = 0;
    RECFORGE_CUDA_CHECK(cudaGetDevice(&device));
    RECFORGE_CUDA_CHECK(cudaDeviceGetAttribute(&shared_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    const size_t row_bytes = size_t(P::C) * n * sizeof(Acc);
    // RECFORGE_CUDA_GLOBAL_ACCUMULATE=1 forces the global-memory path (tests use it to cover both).
    const char* force_global = std::getenv("RECFORGE_CUDA_GLOBAL_ACCUMULATE");
    const bool in_shared = row_bytes <= size_t(shared_optin) && !(force_global && force_global[0] == '1');
    if (in_shared) {
        RECFORGE_CUDA_CHECK(cudaFuncSetAttribute(accumulate_shared_kernel<P, T>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 static_cast<int>(row_bytes)));
    }
    const auto* xp = as_ptr<const int64_t>(a.x_indptr);
    const auto* xi = as_ptr<const int32_t>(a.x_indices);
    const auto* xd = as_ptr<const T>(a.x_data);
    const auto* tp = as_ptr<const int64_t>(a.yt_indptr);
    const auto* ti = as_ptr<const int32_t>(a.yt_indices);
    const auto* td = as_ptr<const T>(a.yt_data);
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
               as_ptr<const int64_t>(a.y_size), a.shrink, a.min_support, a.symmetric};
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
