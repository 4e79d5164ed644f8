// recforge._cuda: the pybind11 face of the CUDA kernels. Compiled by the host compiler; all
// CUDA code sits behind api.hpp. Arguments arrive validated from recforge.kernels; device
// arrays are passed as integer addresses, so cupy arrays, CUDA torch tensors and this module's
// DeviceBuffer all work without copies. The GIL is released while the GPU works.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "api.hpp"

namespace py = pybind11;
using namespace recforge::cuda;

namespace {

// Device memory owned by Python: freed when the object is collected.
class DeviceBuffer {
public:
    DeviceBuffer(size_t nbytes, int device) : nbytes_(nbytes), device_(device) {
        ptr_ = device_alloc(nbytes, device);
    }
    ~DeviceBuffer() { device_free(ptr_, device_); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    uintptr_t ptr() const { return ptr_; }
    size_t nbytes() const { return nbytes_; }
    int device() const { return device_; }

    void copy_from_host(const py::array& a, uintptr_t stream) {
        check_host(a, "copy_from_host");
        py::gil_scoped_release release;
        copy_to_device(ptr_, a.data(), static_cast<size_t>(a.nbytes()), device_, stream);
    }
    void copy_to_host_array(py::array& a, uintptr_t stream) const {
        check_host(a, "copy_to_host");
        if (!a.writeable()) throw std::invalid_argument("copy_to_host: the target array is read-only");
        void* dst = a.mutable_data();
        py::gil_scoped_release release;
        copy_to_host(dst, ptr_, static_cast<size_t>(a.nbytes()), device_, stream);
    }

private:
    void check_host(const py::array& a, const char* what) const {
        if (!(a.flags() & py::array::c_style)) throw std::invalid_argument(std::string(what) + ": array must be C-contiguous");
        if (static_cast<size_t>(a.nbytes()) > nbytes_)
            throw std::invalid_argument(std::string(what) + ": array of " + std::to_string(a.nbytes()) +
                                        " bytes does not fit a buffer of " + std::to_string(nbytes_));
    }
    uintptr_t ptr_ = 0;
    size_t nbytes_ = 0;
    int device_ = 0;
};

py::dict device_info() {
    const RuntimeFacts f = runtime_facts();
    py::list devices;
    for (const DeviceFacts& d : f.devices) {
        py::dict e;
        e["index"] = d.index;
        e["name"] = d.name;
        e["compute_capability"] = std::to_string(d.major) + "." + std::to_string(d.minor);
        e["total_memory"] = d.total_memory;
        e["total_memory_gib"] = static_cast<double>(d.total_memory) / double(1u << 30);
        e["multiprocessors"] = d.multiprocessors;
        e["memory_bus_width_bits"] = d.memory_bus_width;
        e["l2_cache_bytes"] = d.l2_cache;
        e["shared_memory_per_block_optin"] = d.shared_memory_per_block_optin;
        e["pci_bus_id"] = d.pci_bus_id;
        e["supported_by_build"] = d.supported;
        devices.append(e);
    }
    auto version = [](int v) {
        return v ? std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10) : std::string("none");
    };
    py::dict out;
    out["devices"] = devices;
    out["usable_devices"] = [&] {
        py::list u;
        for (const DeviceFacts& d : f.devices)
            if (d.supported) u.append(d.index);
        return u;
    }();
    out["driver_version"] = version(f.driver_version);
    out["runtime_version"] = version(f.runtime_version);
    out["compiled_architectures"] = compiled_architectures();
    out["runtime_linkage"] = "static";
    out["reason"] = f.reason;
    return out;
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
    m.doc() = "recforge CUDA kernels. Use recforge.kernels (backend='cuda'), not this module.";

    m.def("device_info", &device_info,
          "Driver and runtime versions, every device with name, compute capability and memory, "
          "and 'reason' (empty when a device is usable; otherwise why CUDA cannot be used).");
    m.def("compiled_architectures", &compiled_architectures, "CMAKE_CUDA_ARCHITECTURES of this build.");
    m.def("free_memory", [](int device) { return free_memory(device); }, py::arg("device") = 0);

    py::class_<DeviceBuffer>(m, "DeviceBuffer", "Device memory owned by Python (freed with the object).")
        .def(py::init<size_t, int>(), py::arg("nbytes"), py::arg("device") = 0)
        .def_property_readonly("ptr", &DeviceBuffer::ptr)
        .def_property_readonly("nbytes", &DeviceBuffer::nbytes)
        .def_property_readonly("device", &DeviceBuffer::device)
        .def("copy_from_host", &DeviceBuffer::copy_from_host, py::arg("array"), py::arg("stream") = 0)
        .def("copy_to_host", &DeviceBuffer::copy_to_host_array, py::arg("array"), py::arg("stream") = 0);

    m.def("similarity_topk",
          [](uintptr_t x_indptr, uintptr_t x_indices, uintptr_t x_data, int64_t m_rows, int64_t d,
             uintptr_t y_indptr, uintptr_t y_indices, uintptr_t y_data, int64_t n, int kind, bool count,
             int64_t k, double shrink, double min_support, uintptr_t x_scale, uintptr_t y_scale, uintptr_t x_size,
             uintptr_t y_size, bool symmetric, bool f64, uintptr_t excl_indptr, uintptr_t excl_indices,
             uintptr_t out_indices, uintptr_t out_scores, uintptr_t out_counts, int device, uintptr_t stream,
             size_t memory_budget) {
              SimilarityArgs a;
              a.x_indptr = x_indptr; a.x_indices = x_indices; a.x_data = x_data; a.m = m_rows; a.d = d;
              a.y_indptr = y_indptr; a.y_indices = y_indices; a.y_data = y_data; a.n = n;
              a.kind = kind; a.count = count; a.k = k; a.shrink = shrink; a.min_support = min_support;
              a.x_scale = x_scale; a.y_scale = y_scale; a.x_size = x_size; a.y_size = y_size;
              a.symmetric = symmetric; a.f64 = f64;
              a.excl_indptr = excl_indptr; a.excl_indices = excl_indices;
              a.out_indices = out_indices; a.out_scores = out_scores; a.out_counts = out_counts;
              a.memory_budget = memory_budget;
              py::gil_scoped_release release;
              similarity_topk(a, device, stream);
          },
          py::arg("x_indptr"), py::arg("x_indices"), py::arg("x_data"), py::arg("m"), py::arg("d"),
          py::arg("y_indptr"), py::arg("y_indices"), py::arg("y_data"), py::arg("n"), py::arg("kind"),
          py::arg("count"), py::arg("k"), py::arg("shrink"), py::arg("min_support"), py::arg("x_scale"),
          py::arg("y_scale"), py::arg("x_size"), py::arg("y_size"), py::arg("symmetric"), py::arg("f64"),
          py::arg("excl_indptr"), py::arg("excl_indices"), py::arg("out_indices"), py::arg("out_scores"), py::arg("out_counts"), py::arg("device"),
          py::arg("stream"), py::arg("memory_budget") = 0,
          "Unchecked core of similarity_topk on the GPU (device addresses of X and Y as CSR; indptr int64, indices int32).");

    m.def("dense_topk",
          [](uintptr_t q, uintptr_t v, int64_t m_rows, int64_t n, int64_t d, int64_t k, uintptr_t excl_indptr,
             uintptr_t excl_indices, uintptr_t out_indices, uintptr_t out_scores, int device, uintptr_t stream,
             size_t memory_budget) {
              DenseTopkArgs a;
              a.q = q; a.v = v; a.m = m_rows; a.n = n; a.d = d; a.k = k;
              a.excl_indptr = excl_indptr; a.excl_indices = excl_indices;
              a.out_indices = out_indices; a.out_scores = out_scores; a.memory_budget = memory_budget;
              py::gil_scoped_release release;
              dense_topk(a, device, stream);
          },
          py::arg("q"), py::arg("v"), py::arg("m"), py::arg("n"), py::arg("d"), py::arg("k"), py::arg("excl_indptr"),
          py::arg("excl_indices"), py::arg("out_indices"), py::arg("out_scores"), py::arg("device"), py::arg("stream"),
          py::arg("memory_budget") = 0,
          "Unchecked core of dense_topk on the GPU (float32 row-major Q, V; int64 exclusion CSR).");

    auto spmm_args = [](uintptr_t indptr, uintptr_t indices, uintptr_t data, int64_t rows, int64_t cols, int64_t d,
                        bool f64) {
        SpmmArgs a;
        a.indptr = indptr; a.indices = indices; a.data = data; a.rows = rows; a.cols = cols; a.d = d; a.f64 = f64;
        return a;
    };
    m.def("spmm",
          [spmm_args](uintptr_t indptr, uintptr_t indices, uintptr_t data, int64_t rows, int64_t cols, uintptr_t b,
                      int64_t d, uintptr_t y, bool f64, int device, uintptr_t stream) {
              const SpmmArgs a = spmm_args(indptr, indices, data, rows, cols, d, f64);
              py::gil_scoped_release release;
              spmm(a, b, y, device, stream);
          },
          py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("rows"), py::arg("cols"), py::arg("b"),
          py::arg("d"), py::arg("y"), py::arg("f64"), py::arg("device"), py::arg("stream"),
          "Unchecked Y = A B on the GPU (A: int64 indptr, int32 indices; B, Y row-major).");
    m.def("propagate",
          [spmm_args](uintptr_t indptr, uintptr_t indices, uintptr_t data, int64_t rows, uintptr_t e, int64_t d,
                      std::vector<double> weights, uintptr_t out, bool f64, int device, uintptr_t stream) {
              const SpmmArgs a = spmm_args(indptr, indices, data, rows, rows, d, f64);
              py::gil_scoped_release release;
              propagate(a, e, weights, out, device, stream);
          },
          py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("rows"), py::arg("e"), py::arg("d"),
          py::arg("weights"), py::arg("out"), py::arg("f64"), py::arg("device"), py::arg("stream"),
          "Unchecked out = sum_l weights[l] A^l E on the GPU.");
}
