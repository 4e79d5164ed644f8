// Shared pieces of the CUDA kernels: error checks, device selection, scratch memory.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace recforge {
namespace cuda {

[[noreturn]] inline void fail(cudaError_t err, const char* what) {
    cudaGetLastError();  // clear a non-sticky error so the next call starts clean
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorName(err) + " (" +
                             cudaGetErrorString(err) + ")");
}

#define RECFORGE_CUDA_CHECK(call)                                  \
    do {                                                           \
        cudaError_t recforge_err_ = (call);                        \
        if (recforge_err_ != cudaSuccess) ::recforge::cuda::fail(recforge_err_, #call); \
    } while (0)

// Checks the launch of the kernel just queued (bad configuration, no image for this device).
#define RECFORGE_CUDA_LAUNCHED(name) RECFORGE_CUDA_CHECK(cudaGetLastError())

// Makes `device` current for the calling thread for the lifetime of the guard.
class DeviceGuard {
public:
    explicit DeviceGuard(int device) {
        RECFORGE_CUDA_CHECK(cudaGetDevice(&previous_));
        if (previous_ != device) RECFORGE_CUDA_CHECK(cudaSetDevice(device));
        else previous_ = -1;
    }
    ~DeviceGuard() {
        if (previous_ >= 0) cudaSetDevice(previous_);
    }
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

private:
    int previous_ = -1;
};

// Scratch device memory owned by one kernel call.
template <class T>
class Scratch {
public:
    Scratch() = default;
    explicit Scratch(size_t count) { reset(count); }
    ~Scratch() { release(); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;

    void reset(size_t count) {
        release();
        if (count == 0) return;
        const cudaError_t err = cudaMalloc(reinterpret_cast<void**>(&ptr_), count * sizeof(T));
        if (err != cudaSuccess) {
            ptr_ = nullptr;
            fail(err, ("cudaMalloc of " + std::to_string(count * sizeof(T)) + " bytes").c_str());
        }
        count_ = count;
    }
    T* get() const { return ptr_; }
    size_t size() const { return count_; }

private:
    void release() {
        if (ptr_) cudaFree(ptr_);
        ptr_ = nullptr;
        count_ = 0;
    }
    T* ptr_ = nullptr;
    size_t count_ = 0;
};

inline cudaStream_t as_stream(uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

template <class T>
inline T* as_ptr(uintptr_t p) { return reinterpret_cast<T*>(p); }

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline int multiprocessor_count(int device) {
    int sms = 0;
    RECFORGE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    return sms;
}

// Bytes of device memory a call may use for its largest scratch buffer: a share of what is free.
inline size_t scratch_budget(size_t requested) {
    size_t free_b = 0, total_b = 0;
    RECFORGE_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const size_t cap = free_b / 3;
    if (requested) return requested < cap ? requested : cap;
    const size_t two_gib = size_t(2) << 30;
    return cap < two_gib ? cap : two_gib;
}

}  // namespace cuda
}  // namespace recforge
