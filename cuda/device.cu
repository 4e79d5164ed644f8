// Device discovery (for recforge.backends()) and raw device memory for the Python layer.
#include <cuda_runtime.h>

#include <string>

#include "api.hpp"
#include "common.cuh"

#ifndef RECFORGE_CUDA_ARCHS
#define RECFORGE_CUDA_ARCHS "unknown"
#endif

namespace recforge {
namespace cuda {
namespace {

__global__ void probe_kernel(int* out) {
    if (out) *out = 1;
}

std::string version_text(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

std::string error_text(cudaError_t err) {
    return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
}

}  // namespace

std::string compiled_architectures() { return RECFORGE_CUDA_ARCHS; }

RuntimeFacts runtime_facts() {
    RuntimeFacts f;
    cudaRuntimeGetVersion(&f.runtime_version);
    const cudaError_t drv = cudaDriverGetVersion(&f.driver_version);
    if (drv != cudaSuccess || f.driver_version == 0) {
        cudaGetLastError();
        f.driver_version = 0;
        f.reason = "no NVIDIA driver found (libcuda.so could not be loaded); install the NVIDIA driver to use CUDA";
        return f;
    }
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        cudaGetLastError();
        if (err == cudaErrorInsufficientDriver) {
            f.reason = "the NVIDIA driver is too old: it supports CUDA " + version_text(f.driver_version) +
                       ", recforge._cuda was built with CUDA " + version_text(f.runtime_version) +
                       " (update the driver, or build recforge with an older CUDA toolkit)";
        } else if (err == cudaErrorNoDevice) {
            f.reason = "no CUDA device found (driver for CUDA " + version_text(f.driver_version) + " is installed)";
        } else {
            f.reason = "the CUDA driver reports " + error_text(err);
        }
        return f;
    }
    if (count == 0) {
        f.reason = "no CUDA device found (driver for CUDA " + version_text(f.driver_version) + " is installed)";
        return f;
    }
    int current = 0;
    cudaGetDevice(&current);
    std::string unsupported;
    for (int i = 0; i < count; ++i) {
        DeviceFacts d;
        d.index = i;
        cudaDeviceProp p;
        const cudaError_t perr = cudaGetDeviceProperties(&p, i);
        if (perr != cudaSuccess) {
            cudaGetLastError();
            unsupported += " device " + std::to_string(i) + ": " + error_text(perr) + ";";
            continue;
        }
        d.name = p.name;
        d.major = p.major;
        d.minor = p.minor;
        d.total_memory = p.totalGlobalMem;
        d.multiprocessors = p.multiProcessorCount;
        d.l2_cache = static_cast<size_t>(p.l2CacheSize);
        d.shared_memory_per_block_optin = p.sharedMemPerBlockOptin;
        cudaDeviceGetAttribute(&d.memory_bus_width, cudaDevAttrGlobalMemoryBusWidth, i);
        char bus[32] = {0};
        if (cudaDeviceGetPCIBusId(bus, sizeof(bus), i) == cudaSuccess) d.pci_bus_id = bus;
        cudaGetLastError();
        // The definitive test: does this build hold code (SASS or PTX) the device can load?
        cudaFuncAttributes attr;
        cudaError_t ferr = cudaSetDevice(i);
        if (ferr == cudaSuccess) ferr = cudaFuncGetAttributes(&attr, probe_kernel);
        cudaGetLastError();
        d.supported = ferr == cudaSuccess;
        if (!d.supported) {
            unsupported += " " + d.name + " (compute capability " + std::to_string(d.major) + "." +
                           std::to_string(d.minor) + "): " + error_text(ferr) + ";";
        }
        f.devices.push_back(d);
    }
    cudaSetDevice(current);
    cudaGetLastError();
    bool any = false;
    for (const auto& d : f.devices) any = any || d.supported;
    if (!any) {
        f.reason = "no CUDA device this build can run on (recforge._cuda was built for architectures " +
                   compiled_architectures() + "):" + unsupported;
    }
    return f;
}

uintptr_t device_alloc(size_t nbytes, int device) {
    DeviceGuard guard(device);
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, nbytes ? nbytes : 1);
    if (err != cudaSuccess) fail(err, ("cudaMalloc of " + std::to_string(nbytes) + " bytes").c_str());
    return reinterpret_cast<uintptr_t>(p);
}

void device_free(uintptr_t ptr, int device) noexcept {
    if (!ptr) return;
    int previous = -1;
    if (cudaGetDevice(&previous) != cudaSuccess) previous = -1;
    if (previous != device) cudaSetDevice(device);
    cudaFree(reinterpret_cast<void*>(ptr));
    if (previous >= 0 && previous != device) cudaSetDevice(previous);
    cudaGetLastError();
}

void copy_to_device(uintptr_t dst, const void* src, size_t nbytes, int device, uintptr_t stream) {
    if (!nbytes) return;
    DeviceGuard guard(device);
    RECFORGE_CUDA_CHECK(cudaMemcpyAsync(reinterpret_cast<void*>(dst), src, nbytes, cudaMemcpyHostToDevice, as_stream(stream)));
    RECFORGE_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream)));
}

void copy_to_host(void* dst, uintptr_t src, size_t nbytes, int device, uintptr_t stream) {
    if (!nbytes) return;
    DeviceGuard guard(device);
    RECFORGE_CUDA_CHECK(cudaMemcpyAsync(dst, reinterpret_cast<const void*>(src), nbytes, cudaMemcpyDeviceToHost, as_stream(stream)));
    RECFORGE_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream)));
}

void copy_device(uintptr_t dst, uintptr_t src, size_t nbytes, int device, uintptr_t stream) {
    if (!nbytes) return;
    DeviceGuard guard(device);
    RECFORGE_CUDA_CHECK(cudaMemcpyAsync(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), nbytes,
                                        cudaMemcpyDeviceToDevice, as_stream(stream)));
    RECFORGE_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream)));
}

size_t free_memory(int device) {
    DeviceGuard guard(device);
    size_t free_b = 0, total_b = 0;
    RECFORGE_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return free_b;
}

}  // namespace cuda
}  // namespace recforge
