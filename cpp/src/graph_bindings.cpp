// Bindings of spmm and propagate. Inputs were validated by recforge.kernels.graph (canonical CSR
// with one index dtype, values of the same float dtype as the C-contiguous dense operand, finite).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <vector>

#include "array_checks.hpp"
#include "recforge/graph.hpp"

namespace py = pybind11;
using namespace recforge;
using namespace recforge::bindings;

namespace {

template <class T, class I>
graph::Csr<T, I> csr(const py::array& indptr, const py::array& indices, const py::array& data, int64_t rows,
                     int64_t cols) {
    return graph::Csr<T, I>{static_cast<const I*>(indptr.data()), static_cast<const I*>(indices.data()),
                            static_cast<const T*>(data.data()), rows, cols};
}

template <class T, class I>
py::array run_typed(const py::array& indptr, const py::array& indices, const py::array& data, int64_t rows,
                    const py::array& X, const std::vector<double>* weights, int num_threads, graph::Isa isa,
                    int64_t block_bytes) {
    const int64_t d = X.shape(1);
    const auto a = csr<T, I>(indptr, indices, data, rows, X.shape(0));
    py::array_t<T> out({rows, d});
    const T* x = static_cast<const T*>(X.data());
    T* y = out.mutable_data();
    {
        py::gil_scoped_release release;
        if (weights) graph::propagate<T, I>(a, x, d, *weights, y, num_threads, isa, block_bytes);
        else graph::spmm<T, I>(a, x, d, y, num_threads, isa, block_bytes);
    }
    return out;
}

py::array dispatch(const py::array& indptr, const py::array& indices, const py::array& data, int64_t rows,
                   const py::array& X, const std::vector<double>* weights, int num_threads, int isa,
                   int64_t block_bytes) {
    check_threads(num_threads);
    check_array(X, "the dense operand", 2, 'f', {4, 8});
    check_array(data, "data", 1, 'f', {4, 8});
    check_same_dtype(data, "data", X, "the dense operand");
    check_array(indices, "indices", 1, 'i', {4, 8});
    check_same_dtype(indptr, "indptr", indices, "indices");
    if (rows < 0) fail("rows must be >= 0");
    check_offsets(indptr, "indptr", rows, std::min<int64_t>(indices.shape(0), data.shape(0)));
    if (weights && X.shape(0) != rows) fail("propagate needs a square A with one row of E per node");
    const Isa use = capped_isa(isa, graph::best_isa());
    if (block_bytes < 0) block_bytes = graph::kDefaultBlockBytes;
    const bool f64 = X.dtype().itemsize() == 8;
    const bool i64 = indices.dtype().itemsize() == 8;
    if (f64) {
        if (i64) return run_typed<double, int64_t>(indptr, indices, data, rows, X, weights, num_threads, use, block_bytes);
        return run_typed<double, int32_t>(indptr, indices, data, rows, X, weights, num_threads, use, block_bytes);
    }
    if (i64) return run_typed<float, int64_t>(indptr, indices, data, rows, X, weights, num_threads, use, block_bytes);
    return run_typed<float, int32_t>(indptr, indices, data, rows, X, weights, num_threads, use, block_bytes);
}

}  // namespace

void register_graph(py::module_& m) {
    m.def(
        "spmm",
        [](const py::array& indptr, const py::array& indices, const py::array& data, int64_t rows,
           const py::array& B, int num_threads, int isa, int64_t block_bytes) {
            return dispatch(indptr, indices, data, rows, B, nullptr, num_threads, isa, block_bytes);
        },
        py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("rows"), py::arg("B"),
        py::arg("num_threads"), py::arg("isa") = -1, py::arg("block_bytes") = -1,
        "Core of recforge.kernels.spmm (call it by keyword; O(1) layout checks, the caller guarantees "
        "the CSR structure): A @ B. isa: -1 best, 0 portable, 1 AVX2, 2 AVX-512; "
        "block_bytes: column-block size of B (-1 default, 0 never block).");
    m.def(
        "propagate",
        [](const py::array& indptr, const py::array& indices, const py::array& data, int64_t rows,
           const py::array& E, const std::vector<double>& weights, int num_threads, int isa,
           int64_t block_bytes) {
            return dispatch(indptr, indices, data, rows, E, &weights, num_threads, isa, block_bytes);
        },
        py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("rows"), py::arg("E"),
        py::arg("weights"), py::arg("num_threads"), py::arg("isa") = -1, py::arg("block_bytes") = -1,
        "Core of recforge.kernels.propagate (call it by keyword; checks as spmm): sum_l weights[l] A^l E.");
    m.def("graph_isa", []() { return static_cast<int>(graph::best_isa()); },
          "Best row loop this CPU supports: 0 portable, 1 AVX2+FMA, 2 AVX-512.");
}
