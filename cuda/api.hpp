// Plain C++ face of the CUDA kernels, for the pybind11 module (compiled by the host compiler).
// Device memory is passed as integer addresses (uintptr_t) and streams as integer handles, so
// arrays owned by cupy, torch or recforge's own DeviceBuffer all work without copies.
// Every function blocks until its work on `stream` is done and throws std::runtime_error
// (with the CUDA error text) when anything fails.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace recforge {
namespace cuda {

struct DeviceFacts {
    int index = 0;
    std::string name;
    int major = 0;
    int minor = 0;
    size_t total_memory = 0;
    int multiprocessors = 0;
    int memory_bus_width = 0;
    size_t l2_cache = 0;
    size_t shared_memory_per_block_optin = 0;
    std::string pci_bus_id;
    bool supported = false;  // this build has code (SASS or PTX) the device can run
};

struct RuntimeFacts {
    int driver_version = 0;   // CUDA version the driver supports, e.g. 12040 (0: no driver)
    int runtime_version = 0;  // CUDA runtime linked into recforge._cuda
    std::vector<DeviceFacts> devices;
    std::string reason;       // empty when at least one device is usable
};

RuntimeFacts runtime_facts();
std::string compiled_architectures();

// Raw device memory (cudaMalloc / cudaFree) and copies.
uintptr_t device_alloc(size_t nbytes, int device);
void device_free(uintptr_t ptr, int device) noexcept;
void copy_to_device(uintptr_t dst, const void* src, size_t nbytes, int device, uintptr_t stream);
void copy_to_host(void* dst, uintptr_t src, size_t nbytes, int device, uintptr_t stream);
void copy_device(uintptr_t dst, uintptr_t src, size_t nbytes, int device, uintptr_t stream);
size_t free_memory(int device);

// similarity_topk: X (m x d CSR) against the rows of Y (n x d CSR; transposed on the device).
// indptr int64, indices int32, values float32 (f64=false) or float64 (data may be 0 = all ones).
// Writes k (score, index) per row, best first, into out_scores / out_indices (int64) and the
// number kept per row into out_counts (int64).
struct SimilarityArgs {
    uintptr_t x_indptr = 0, x_indices = 0, x_data = 0;
    int64_t m = 0, d = 0;
    uintptr_t y_indptr = 0, y_indices = 0, y_data = 0;
    int64_t n = 0;
    int kind = 0;
    bool count = false;
    int64_t k = 1;
    double shrink = 0.0, min_support = 1.0;
    uintptr_t x_scale = 0, y_scale = 0, x_size = 0, y_size = 0;  // optional (0 = absent)
    bool symmetric = false;
    bool f64 = false;
    uintptr_t excl_indptr = 0, excl_indices = 0;  // optional m x n pattern (int64): never returned
    uintptr_t out_indices = 0, out_scores = 0, out_counts = 0;
    size_t memory_budget = 0;  // bytes for the dense similarity tile (0 = automatic)
};
void similarity_topk(const SimilarityArgs& a, int device, uintptr_t stream);

// dense_topk: Q (m x d) and V (n x d) float32 row-major, optional exclusion CSR (int64 indptr
// and indices), k best per row into out_indices (int64, -1 padded) and out_scores (float32, -inf).
struct DenseTopkArgs {
    uintptr_t q = 0, v = 0;
    int64_t m = 0, n = 0, d = 0, k = 1;
    uintptr_t excl_indptr = 0, excl_indices = 0;
    uintptr_t out_indices = 0, out_scores = 0;
    size_t memory_budget = 0;
};
void dense_topk(const DenseTopkArgs& a, int device, uintptr_t stream);

// spmm: Y = A B, A CSR (rows x cols; int64 indptr, int32 indices), B cols x d row-major.
struct SpmmArgs {
    uintptr_t indptr = 0, indices = 0, data = 0;
    int64_t rows = 0, cols = 0, d = 0;
    bool f64 = false;
};
void spmm(const SpmmArgs& a, uintptr_t b, uintptr_t y, int device, uintptr_t stream);

// propagate: out = sum_l weights[l] A^l E (A square, rows x rows), E rows x d.
void propagate(const SpmmArgs& a, uintptr_t e, const std::vector<double>& weights, uintptr_t out,
               int device, uintptr_t stream);

}  // namespace cuda
}  // namespace recforge
