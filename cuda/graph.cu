// spmm and LightGCN propagation on the GPU: Y = A X for a CSR A and a row-major dense X.
//
// A block of 8 warps per output row: the row's stored entries are split into 8 contiguous
// ranges, each warp gathers the rows of X its range names (lanes cover consecutive columns,
// with 2- or 4-wide vector loads, so every read is coalesced), and the 8 partial sums are
// added in a fixed order, so results are deterministic and heavy (power-law) rows are spread
// over 8 warps. The layer sink (next layer's input, and out = w0 E + sum w_l E_l) is applied
// while the row is in registers, as the CPU core does (cpp/include/recforge/graph.hpp).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "api.hpp"
#include "common.cuh"

namespace recforge {
namespace cuda {
namespace {

constexpr int kWarpSize = 32;
constexpr int kRowWarps = 8;

template <class T, int W>
struct Vec;
template <class T>
struct Vec<T, 1> {
    T v[1];
    __device__ static Vec load(const T* p) { return Vec{{p[0]}}; }
    __device__ void store(T* p) const { p[0] = v[0]; }
};
template <>
struct Vec<float, 2> {
    float v[2];
    __device__ static Vec load(const float* p) { const float2 t = *reinterpret_cast<const float2*>(p); return Vec{{t.x, t.y}}; }
    __device__ void store(float* p) const { *reinterpret_cast<float2*>(p) = make_float2(v[0], v[1]); }
};
template <>
struct Vec<float, 4> {
    float v[4];
    __device__ static Vec load(const float* p) {
        const float4 t = *reinterpret_cast<const float4*>(p);
        return Vec{{t.x, t.y, t.z, t.w}};
    }
    __device__ void store(float* p) const { *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]); }
};
template <>
struct Vec<double, 2> {
    double v[2];
    __device__ static Vec load(const double* p) { const double2 t = *reinterpret_cast<const double2*>(p); return Vec{{t.x, t.y}}; }
    __device__ void store(double* p) const { *reinterpret_cast<double2*>(p) = make_double2(v[0], v[1]); }
};

// What a layer does with its product row y_i (the CPU's LayerSink):
//   next: next_i = y_i;  out: out_i = base_i + w y_i, base = w0 init_i | 0 (overwrite) | out_i.
template <class T>
struct Sink {
    T* next;
    T* out;
    T w;
    const T* init;
    T w0;
    bool overwrite;
};

template <class T, int W>
__global__ void __launch_bounds__(kRowWarps * kWarpSize) layer_kernel(
    const int64_t* __restrict__ indptr, const int32_t* __restrict__ indices, const T* __restrict__ data,
    const T* __restrict__ x, int64_t d, Sink<T> sink) {
    __shared__ T partial[kRowWarps][kWarpSize * W];
    const int64_t row = blockIdx.x;
    const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
    const int64_t pb = indptr[row], pe = indptr[row + 1];
    const int64_t len = pe - pb;
    const int64_t my_b = pb + len * warp / kRowWarps, my_e = pb + len * (warp + 1) / kRowWarps;
    for (int64_t c0 = 0; c0 < d; c0 += int64_t(kWarpSize) * W) {
        const int64_t col = c0 + int64_t(lane) * W;
        const bool active = col < d;  // d is a multiple of W
        T acc[W];
#pragma unroll
        for (int t = 0; t < W; ++t) acc[t] = T(0);
        for (int64_t p0 = my_b; p0 < my_e; p0 += kWarpSize) {
            const int64_t p = p0 + lane;
            const int32_t jj = p < my_e ? indices[p] : 0;
            const T vv = p < my_e ? data[p] : T(0);
            const int cnt = static_cast<int>(min(int64_t(kWarpSize), my_e - p0));
#pragma unroll 4
            for (int t = 0; t < cnt; ++t) {
                const int64_t j = __shfl_sync(0xffffffffu, jj, t);
                const T a = __shfl_sync(0xffffffffu, vv, t);
                if (active) {
                    const Vec<T, W> xv = Vec<T, W>::load(x + j * d + col);
#pragma unroll
                    for (int u = 0; u < W; ++u) acc[u] += a * xv.v[u];
                }
            }
        }
#pragma unroll
        for (int u = 0; u < W; ++u) partial[warp][lane * W + u] = acc[u];
        __syncthreads();
        // Warp 0 adds the 8 partial sums in a fixed order and applies the sink.
        if (warp == 0 && active) {
            Vec<T, W> y;
#pragma unroll
            for (int u = 0; u < W; ++u) {
                T s = partial[0][lane * W + u];
                for (int w = 1; w < kRowWarps; ++w) s += partial[w][lane * W + u];
                y.v[u] = s;
            }
            const int64_t at = row * d + col;
            if (sink.next) y.store(sink.next + at);
            if (sink.out) {
                Vec<T, W> o;
                if (sink.init) {
                    const Vec<T, W> e0 = Vec<T, W>::load(sink.init + at);
#pragma unroll
                    for (int u = 0; u < W; ++u) o.v[u] = sink.w0 * e0.v[u] + sink.w * y.v[u];
                } else if (sink.overwrite) {
#pragma unroll
                    for (int u = 0; u < W; ++u) o.v[u] = sink.w * y.v[u];
                } else {
                    o = Vec<T, W>::load(sink.out + at);
#pragma unroll
                    for (int u = 0; u < W; ++u) o.v[u] += sink.w * y.v[u];
                }
                o.store(sink.out + at);
            }
        }
        __syncthreads();
    }
}

template <class T>
__global__ void scale_kernel(const T* __restrict__ x, T w, int64_t count, T* __restrict__ y) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
        y[i] = w * x[i];
}

// Widest vector load that divides d and keeps a warp's columns within about one row of X.
template <class T>
int vector_width(int64_t d, uintptr_t x, uintptr_t y) {
    const int widest = sizeof(T) == 4 ? 4 : 2;
    for (int w = widest; w > 1; w /= 2) {
        const size_t bytes = sizeof(T) * w;
        if (d % w == 0 && d >= int64_t(kWarpSize) * w && x % bytes == 0 && y % bytes == 0) return w;
    }
    return 1;
}

template <class T>
void layer(const SpmmArgs& a, const T* x, const Sink<T>& s, cudaStream_t stream) {
    if (a.rows == 0 || a.d == 0) return;
    const uintptr_t all = reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(s.next) |
                          reinterpret_cast<uintptr_t>(s.out) | reinterpret_cast<uintptr_t>(s.init);
    const int w = vector_width<T>(a.d, all, all);
    const unsigned blocks = static_cast<unsigned>(a.rows);
    const auto* p = as_ptr<const int64_t>(a.indptr);
    const auto* i = as_ptr<const int32_t>(a.indices);
    const auto* v = as_ptr<const T>(a.data);
    const int threads = kRowWarps * kWarpSize;
    if (w == 4) layer_kernel<T, (sizeof(T) == 4 ? 4 : 1)><<<blocks, threads, 0, stream>>>(p, i, v, x, a.d, s);
    else if (w == 2) layer_kernel<T, 2><<<blocks, threads, 0, stream>>>(p, i, v, x, a.d, s);
    else layer_kernel<T, 1><<<blocks, threads, 0, stream>>>(p, i, v, x, a.d, s);
    RECFORGE_CUDA_LAUNCHED(layer_kernel);
}

template <class T>
void spmm_typed(const SpmmArgs& a, uintptr_t b, uintptr_t y, cudaStream_t stream) {
    Sink<T> s{as_ptr<T>(y), nullptr, T(1), nullptr, T(0), false};
    layer<T>(a, as_ptr<const T>(b), s, stream);
}

// out = sum_l w_l A^l E, mirroring recforge::graph::propagate (layers past the last non-zero
// weight are skipped, E_l buffers exist only when a later layer reads them).
template <class T>
void propagate_typed(const SpmmArgs& a, uintptr_t e_ptr, const std::vector<double>& weights, uintptr_t out_ptr,
                     cudaStream_t stream) {
    const T* e = as_ptr<const T>(e_ptr);
    T* out = as_ptr<T>(out_ptr);
    const int64_t layers = static_cast<int64_t>(weights.size()) - 1;
    const int64_t count = a.rows * a.d;
    int64_t last_used = 0;
    for (int64_t l = 0; l <= layers; ++l)
        if (weights[l] != 0.0) last_used = l;
    if (last_used == 0) {
        if (count) {
            scale_kernel<T><<<1024, 256, 0, stream>>>(e, static_cast<T>(weights[0]), count, out);
            RECFORGE_CUDA_LAUNCHED(scale_kernel);
        }
        return;
    }
    Scratch<T> buf[2];
    bool out_written = false;
    const T* x = e;
    for (int64_t l = 1; l <= last_used; ++l) {
        Sink<T> s{nullptr, nullptr, T(1), nullptr, T(0), false};
        if (l < last_used) {
            Scratch<T>& b = buf[l % 2];
            if (!b.get()) b.reset(size_t(count));
            s.next = b.get();
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
        layer<T>(a, x, s, stream);
        x = s.next;
    }
    RECFORGE_CUDA_CHECK(cudaStreamSynchronize(stream));  // before the layer buffers are freed
}

}  // namespace

void spmm(const SpmmArgs& a, uintptr_t b, uintptr_t y, int device, uintptr_t stream) {
    DeviceGuard guard(device);
    if (a.f64) spmm_typed<double>(a, b, y, as_stream(stream));
    else spmm_typed<float>(a, b, y, as_stream(stream));
    RECFORGE_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream)));
}

void propagate(const SpmmArgs& a, uintptr_t e, const std::vector<double>& weights, uintptr_t out, int device,
               uintptr_t stream) {
    DeviceGuard guard(device);
    if (weights.empty()) throw std::invalid_argument("propagate: weights must hold layers + 1 values");
    if (a.f64) propagate_typed<double>(a, e, weights, out, as_stream(stream));
    else propagate_typed<float>(a, e, weights, out, as_stream(stream));
    RECFORGE_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream)));
}

}  // namespace cuda
}  // namespace recforge
