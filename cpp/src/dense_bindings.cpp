// Binding of dense_topk. Inputs were validated by recforge.kernels.dense (C-contiguous Q and V of
// one float dtype, finite; exclude as canonical CSR with int64 indptr/indices, m x n; 1 <= k <= n).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "recforge/dense_topk.hpp"

namespace py = pybind11;
using namespace recforge;

namespace {

template <class T>
py::tuple run_typed(const py::array& Q, const py::array& V, int64_t k, int64_t out_k, const py::object& ex_indptr,
                    const py::object& ex_indices, int num_threads, dense::Isa isa) {
    const int64_t m = Q.shape(0), d = Q.shape(1), n = V.shape(0);
    dense::Exclusion ex;
    if (!ex_indptr.is_none()) {
        ex.indptr = static_cast<const int64_t*>(py::cast<py::array>(ex_indptr).data());
        ex.indices = static_cast<const int64_t*>(py::cast<py::array>(ex_indices).data());
    }
    py::array_t<int64_t> indices({m, out_k});
    py::array_t<float> scores({m, out_k});
    const T* q = static_cast<const T*>(Q.data());
    const T* v = static_cast<const T*>(V.data());
    int64_t* oi = indices.mutable_data();
    float* os = scores.mutable_data();
    {
        py::gil_scoped_release release;
        dense::dense_topk<T>(q, m, v, n, d, k, ex, oi, os, out_k, num_threads, isa);
    }
    return py::make_tuple(indices, scores);
}

py::tuple dense_topk(const py::array& Q, const py::array& V, int64_t k, int64_t out_k, const py::object& ex_indptr,
                     const py::object& ex_indices, int num_threads, int isa) {
    const dense::Isa best = dense::best_isa();
    const dense::Isa use = isa < 0 ? best : static_cast<dense::Isa>(std::min(isa, static_cast<int>(best)));
    if (Q.dtype().itemsize() == 8) return run_typed<double>(Q, V, k, out_k, ex_indptr, ex_indices, num_threads, use);
    return run_typed<float>(Q, V, k, out_k, ex_indptr, ex_indices, num_threads, use);
}

}  // namespace

void register_dense(py::module_& m) {
    m.def("dense_topk", &dense_topk, py::arg("Q"), py::arg("V"), py::arg("k"), py::arg("out_k"),
          py::arg("ex_indptr"), py::arg("ex_indices"), py::arg("num_threads"), py::arg("isa") = -1,
          "Unchecked core of recforge.kernels.dense_topk; returns (indices int64, scores float32). "
          "isa: -1 best available, 0 portable, 1 AVX2+FMA, 2 AVX-512 (capped at what the CPU has).");
    m.def("dense_isa", []() { return static_cast<int>(dense::best_isa()); },
          "Best dense_topk microkernel this CPU supports: 0 portable, 1 AVX2+FMA, 2 AVX-512.");
}
