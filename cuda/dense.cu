// dense_topk on the GPU: exact top-k by inner product with fused exclusion, any k.
//
// A block owns BM = 64 queries and one slice of the items. It walks the slice in tiles of
// BN = 128 items: the 64 x 128 score tile is computed in registers (a shared-memory tiled GEMM,
// 8 x 4 scores per thread, DK = 16 dimensions per step), and the warp that computed rows r..r+7
// offers them straight from its registers to those rows' streaming top-k (topk.cuh), which
// first drops everything that cannot beat the row's current k-th best and then skips excluded
// items (binary search in the row of the exclusion CSR). No m x n score matrix is ever written.
// When there are too few query tiles to fill the GPU, the items are split into slices and a
// second kernel merges the slices' sorted lists per query.
// Cosine is dot on unit rows, normalised by the caller exactly as the CPU path does.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "api.hpp"
#include "common.cuh"
#include "topk.cuh"

namespace recforge {
namespace cuda {
namespace {

constexpr int BM = 64;          // queries per block
constexpr int BN = 128;         // items per tile
constexpr int DK = 16;          // dimensions per shared-memory step
constexpr int kThreads = 256;   // 8 warps; warp w computes and owns rows 8w .. 8w + 7
constexpr int kRowsPerWarp = 8;
constexpr int kColsPerLane = 4;  // columns lane, lane + 32, lane + 64, lane + 96
constexpr int kPadQ = 4;         // keeps float4 reads of Qs aligned
constexpr int kPadV = 4;

constexpr int kQLoads = BM * DK / kThreads;  // elements of the Q chunk each thread stages
constexpr int kVLoads = BN * DK / kThreads;  // elements of the V chunk each thread stages

static_assert(BM == (kThreads / kWarp) * kRowsPerWarp, "each warp owns kRowsPerWarp rows");
static_assert(BM * DK % kThreads == 0 && BN * DK % kThreads == 0, "chunks split evenly over threads");
static_assert(BN == kWarp * kColsPerLane, "each lane owns kColsPerLane columns");

__device__ __forceinline__ bool excluded(const int64_t* __restrict__ ex_p, const int64_t* __restrict__ ex_i,
                                         int64_t row, int64_t j) {
    int64_t lo = ex_p[row], hi = ex_p[row + 1];
    while (lo < hi) {
        const int64_t mid = (lo + hi) >> 1;
        const int64_t v = ex_i[mid];
        if (v == j) return true;
        if (v < j) lo = mid + 1;
        else hi = mid;
    }
    return false;
}

// Q: the chunk's rows (rows x d), V: all items (n x d). Slice s covers [s * slice_len, ...).
// Results of (row, slice) go to part_*[(row * slices + s) * k], k slots, padded -inf / -1.
__global__ void __launch_bounds__(kThreads, 2) dense_topk_kernel(
    const float* __restrict__ Q, const float* __restrict__ V, int64_t rows, int64_t n, int64_t d,
    int64_t slice_len, int64_t k, const int64_t* __restrict__ ex_p, const int64_t* __restrict__ ex_i,
    int64_t ex_row0, float* lists_s, int64_t* lists_i, float* part_s, int64_t* part_i, int64_t* part_count) {
    __shared__ __align__(16) float Qs[DK][BM + kPadQ];
    __shared__ __align__(16) float Vs[DK][BN + kPadV];
    __shared__ float q_s[BM][kQueue];
    __shared__ int64_t q_i[BM][kQueue];
    __shared__ RowTopK<float> states[BM];

    const int tid = threadIdx.x, warp = tid / kWarp, lane = tid % kWarp;
    const int64_t slices = gridDim.y, slice = blockIdx.y;
    const int64_t row0 = static_cast<int64_t>(blockIdx.x) * BM;
    const int64_t j_begin = slice * slice_len;
    const int64_t j_end = min(n, j_begin + slice_len);

    if (lane == 0) {
        for (int rr = 0; rr < kRowsPerWarp; ++rr) {
            const int r = warp * kRowsPerWarp + rr;
            const int64_t list_at = ((row0 + r) * slices + slice) * 2 * k;
            states[r] = make_row_topk<float>(lists_s + list_at, lists_i + list_at, q_s[r], q_i[r], k);
        }
    }
    __syncwarp();

    // Global -> register -> shared staging: the loads of the next (tile, DK chunk) are in flight
    // while the current chunk is multiplied.
    const int64_t chunks = d > 0 ? (d + DK - 1) / DK : 1;
    float q_next[kQLoads], v_next[kVLoads];
    auto fetch = [&](int64_t jt, int64_t k0) {
#pragma unroll
        for (int t = 0; t < kQLoads; ++t) {
            const int e = tid + t * kThreads, r = e / DK, c = e % DK;
            const int64_t gr = row0 + r, gc = k0 + c;
            q_next[t] = (gr < rows && gc < d) ? Q[gr * d + gc] : 0.0f;
        }
#pragma unroll
        for (int t = 0; t < kVLoads; ++t) {
            const int e = tid + t * kThreads, r = e / DK, c = e % DK;
            const int64_t gj = jt + r, gc = k0 + c;
            v_next[t] = (gj < j_end && gc < d) ? V[gj * d + gc] : 0.0f;
        }
    };
    fetch(j_begin, 0);

    for (int64_t j0 = j_begin; j0 < j_end; j0 += BN) {
        float acc[kRowsPerWarp][kColsPerLane];
#pragma unroll
        for (int rr = 0; rr < kRowsPerWarp; ++rr)
#pragma unroll
            for (int cc = 0; cc < kColsPerLane; ++cc) acc[rr][cc] = 0.0f;

        for (int64_t chunk = 0; chunk < chunks; ++chunk) {
            __syncthreads();  // everyone is done reading the previous chunk
#pragma unroll
            for (int t = 0; t < kQLoads; ++t) {
                const int e = tid + t * kThreads;
                Qs[e % DK][e / DK] = q_next[t];
            }
#pragma unroll
            for (int t = 0; t < kVLoads; ++t) {
                const int e = tid + t * kThreads;
                Vs[e % DK][e / DK] = v_next[t];
            }
            __syncthreads();
            if (chunk + 1 < chunks) fetch(j0, (chunk + 1) * DK);
            else if (j0 + BN < j_end) fetch(j0 + BN, 0);
#pragma unroll
            for (int kk = 0; kk < DK; ++kk) {
                const float4 a0 = *reinterpret_cast<const float4*>(&Qs[kk][warp * kRowsPerWarp]);
                const float4 a1 = *reinterpret_cast<const float4*>(&Qs[kk][warp * kRowsPerWarp + 4]);
                const float a[kRowsPerWarp] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
                float b[kColsPerLane];
#pragma unroll
                for (int cc = 0; cc < kColsPerLane; ++cc) b[cc] = Vs[kk][lane + kWarp * cc];
#pragma unroll
                for (int rr = 0; rr < kRowsPerWarp; ++rr)
#pragma unroll
                    for (int cc = 0; cc < kColsPerLane; ++cc) acc[rr][cc] = fmaf(a[rr], b[cc], acc[rr][cc]);
            }
        }

        // Offer the tile to the rows this warp owns, straight from registers.
#pragma unroll
        for (int rr = 0; rr < kRowsPerWarp; ++rr) {
            const int r = warp * kRowsPerWarp + rr;
            const int64_t row = row0 + r;
            if (row >= rows) continue;  // uniform across the warp
            RowTopK<float> st = states[r];
#pragma unroll
            for (int cc = 0; cc < kColsPerLane; ++cc) {
                const int64_t j = j0 + lane + kWarp * cc;
                const float s = acc[rr][cc];
                bool pass = j < j_end && st.wants(s, j);
                if (pass && ex_p) pass = !excluded(ex_p, ex_i, ex_row0 + row, j);
                st.push(pass, s, j, lane);
            }
            __syncwarp();
            if (lane == 0) states[r] = st;
            __syncwarp();
        }
    }

    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
        const int r = warp * kRowsPerWarp + rr;
        const int64_t row = row0 + r;
        if (row >= rows) continue;
        RowTopK<float> st = states[r];
        st.flush(lane);
        const int64_t at = (row * slices + slice) * k;
        const int64_t kept = st.write(part_s + at, part_i + at, -INFINITY, lane);
        if (part_count && lane == 0) part_count[row * slices + slice] = kept;
    }
}

// Merges the sorted lists of every slice of a row (warp per row) into the final k.
__global__ void merge_slices_kernel(int64_t rows, int64_t slices, int64_t k, const float* part_s,
                                    const int64_t* part_i, const int64_t* part_count, float* buf_s,
                                    int64_t* buf_i, float* out_s, int64_t* out_i) {
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + warp;
    if (row >= rows) return;
    float* bs[2] = {buf_s + row * 2 * k, buf_s + row * 2 * k + k};
    int64_t* bi[2] = {buf_i + row * 2 * k, buf_i + row * 2 * k + k};
    const float* cs = part_s + row * slices * k;
    const int64_t* ci = part_i + row * slices * k;
    int64_t count = part_count[row * slices];
    int cur = -1;  // -1: the current list is slice 0 itself
    for (int64_t s = 1; s < slices; ++s) {
        const int next = cur == 0 ? 1 : 0;
        const int64_t at = (row * slices + s) * k;
        count = merge_lists(cs, ci, count, part_s + at, part_i + at, part_count[row * slices + s], bs[next],
                            bi[next], k, lane);
        cur = next;
        cs = bs[cur];
        ci = bi[cur];
    }
    for (int64_t p = lane; p < k; p += kWarp) {
        const bool real = p < count;
        out_s[row * k + p] = real ? cs[p] : -INFINITY;
        out_i[row * k + p] = real ? ci[p] : int64_t(-1);
    }
}

}  // namespace

void dense_topk(const DenseTopkArgs& a, int device, uintptr_t stream_handle) {
    DeviceGuard guard(device);
    const cudaStream_t stream = as_stream(stream_handle);
    const int64_t m = a.m, n = a.n, d = a.d, k = a.k;
    if (m == 0 || n == 0) return;
    // Enough blocks to fill every multiprocessor about twice; slices are whole tiles.
    const int64_t target_blocks = 2 * int64_t(multiprocessor_count(device));
    const int64_t query_tiles = ceil_div(m, BM);
    const size_t budget = scratch_budget(a.memory_budget);
    const size_t entry = sizeof(float) + sizeof(int64_t);
    const int64_t slice_cap = std::max<int64_t>(1, static_cast<int64_t>(budget / (size_t(BM) * size_t(k) * 3 * entry)));
    int64_t slices = std::min<int64_t>(ceil_div(target_blocks, query_tiles), ceil_div(n, BN));
    slices = std::max<int64_t>(1, std::min(slices, slice_cap));
    const int64_t slice_len = ceil_div(ceil_div(n, slices), BN) * BN;
    slices = ceil_div(n, slice_len);
    // Rows per launch, bounded by the lists (2k per row and slice) and slice results.
    const size_t per_row = size_t(slices) * size_t(k) * (2 + (slices > 1 ? 1 : 0)) * entry;
    int64_t chunk = std::max<int64_t>(BM, static_cast<int64_t>(budget / per_row) / BM * BM);
    chunk = std::min(chunk, query_tiles * BM);
    if (ceil_div(chunk, BM) > int64_t(0x7fffffff)) chunk = int64_t(0x7fffffff) * BM;
    Scratch<float> lists_s(size_t(chunk) * slices * 2 * k);
    Scratch<int64_t> lists_i(size_t(chunk) * slices * 2 * k);
    Scratch<float> part_s;
    Scratch<int64_t> part_i, part_count;
    if (slices > 1) {
        part_s.reset(size_t(chunk) * slices * k);
        part_i.reset(size_t(chunk) * slices * k);
        part_count.reset(size_t(chunk) * slices);
    }
    const float* q = as_ptr<const float>(a.q);
    for (int64_t row0 = 0; row0 < m; row0 += chunk) {
        const int64_t rows = std::min(chunk, m - row0);
        float* out_s = as_ptr<float>(a.out_scores) + row0 * k;
        int64_t* out_i = as_ptr<int64_t>(a.out_indices) + row0 * k;
        const dim3 grid(static_cast<unsigned>(ceil_div(rows, BM)), static_cast<unsigned>(slices));
        dense_topk_kernel<<<grid, kThreads, 0, stream>>>(
            q + row0 * d, as_ptr<const float>(a.v), rows, n, d, slice_len, k, as_ptr<const int64_t>(a.excl_indptr),
            as_ptr<const int64_t>(a.excl_indices), row0, lists_s.get(), lists_i.get(),
            slices > 1 ? part_s.get() : out_s, slices > 1 ? part_i.get() : out_i,
            slices > 1 ? part_count.get() : nullptr);
        RECFORGE_CUDA_LAUNCHED(dense_topk_kernel);
        if (slices > 1) {
            constexpr int warps = 4;
            merge_slices_kernel<<<static_cast<unsigned>(ceil_div(rows, warps)), warps * kWarp, 0, stream>>>(
                rows, slices, k, part_s.get(), part_i.get(), part_count.get(), lists_s.get(), lists_i.get(), out_s,
                out_i);
            RECFORGE_CUDA_LAUNCHED(merge_slices_kernel);
        }
    }
    RECFORGE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace cuda
}  // namespace recforge
