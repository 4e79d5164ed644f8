// Binding of dense_topk. Inputs were validated by recforge.kernels.dense (C-contiguous Q and V of
// one float dtype, finite; exclude as canonical CSR with int64 indptr/indices, m x n; 1 <= k <= n).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <variant>

#include "array_checks.hpp"
#include "recforge/dense_topk.hpp"

namespace py = pybind11;
using namespace recforge;
using namespace recforge::bindings;

namespace {

// V packed once (dense::PackedItems) for many dense_topk calls; immutable, shared by the calls.
struct PackedDenseItems {
    std::variant<dense::PackedItems<float>, dense::PackedItems<double>> items;
    int64_t n, d;
    int itemsize;
    dense::Isa isa;

    template <class T>
    const T* data() const { return std::get<dense::PackedItems<T>>(items).data.get(); }
};

std::shared_ptr<PackedDenseItems> pack_items(const py::array& V, int num_threads, int isa) {
    check_threads(num_threads);
    check_array(V, "V", 2, 'f', {4, 8});
    const int64_t n = V.shape(0), d = V.shape(1);
    const Isa use = capped_isa(isa, dense::best_isa());
    const int itemsize = static_cast<int>(V.dtype().itemsize());
    py::gil_scoped_release release;
    if (itemsize == 8) {
        auto packed = dense::pack<double>(static_cast<const double*>(V.data()), n, d, num_threads, use);
        return std::make_shared<PackedDenseItems>(PackedDenseItems{std::move(packed), n, d, itemsize, use});
    }
    auto packed = dense::pack<float>(static_cast<const float*>(V.data()), n, d, num_threads, use);
    return std::make_shared<PackedDenseItems>(PackedDenseItems{std::move(packed), n, d, itemsize, use});
}

template <class T>
py::tuple run_typed(const py::array& Q, const py::array& V, int64_t k, int64_t out_k, const py::object& ex_indptr,
                    const py::object& ex_indices, int num_threads, dense::Isa isa, const PackedDenseItems* packed) {
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
        dense::dense_topk<T>(q, m, v, n, d, k, ex, oi, os, out_k, num_threads, isa,
                             packed ? packed->data<T>() : nullptr);
    }
    return py::make_tuple(indices, scores);
}

py::tuple dense_topk(const py::array& Q, const py::array& V, int64_t k, int64_t out_k, const py::object& ex_indptr,
                     const py::object& ex_indices, int num_threads, int isa,
                     const std::shared_ptr<PackedDenseItems>& packed) {
    check_threads(num_threads);
    check_array(Q, "Q", 2, 'f', {4, 8});
    check_array(V, "V", 2, 'f', {4, 8});
    check_same_dtype(V, "V", Q, "Q");
    if (Q.shape(1) != V.shape(1)) fail("Q and V must have the same number of columns");
    if (k < 1 || k > V.shape(0) || out_k < k) fail("need 1 <= k <= rows of V and out_k >= k");
    if (ex_indptr.is_none() != ex_indices.is_none()) fail("ex_indptr and ex_indices go together");
    if (!ex_indptr.is_none()) {
        const auto ep = py::cast<py::array>(ex_indptr), ei = py::cast<py::array>(ex_indices);
        check_array(ep, "ex_indptr", 1, 'i', {8});
        check_array(ei, "ex_indices", 1, 'i', {8});
        check_offsets(ep, "ex_indptr", Q.shape(0), ei.shape(0));
    }
    Isa use = capped_isa(isa, dense::best_isa());
    if (packed) {  // V's layout was fixed when it was packed: same shape, dtype and microkernel
        if (packed->n != V.shape(0) || packed->d != V.shape(1) || packed->itemsize != V.dtype().itemsize())
            fail("packed items do not match V (shape or dtype)");
        use = packed->isa;
    }
    const PackedDenseItems* p = packed.get();
    if (Q.dtype().itemsize() == 8) return run_typed<double>(Q, V, k, out_k, ex_indptr, ex_indices, num_threads, use, p);
    return run_typed<float>(Q, V, k, out_k, ex_indptr, ex_indices, num_threads, use, p);
}

}  // namespace

void register_dense(py::module_& m) {
    py::class_<PackedDenseItems, std::shared_ptr<PackedDenseItems>>(
        m, "PackedDenseItems", "V packed once in the panel layout of one dense_topk microkernel (immutable).")
        .def_readonly("n", &PackedDenseItems::n)
        .def_readonly("d", &PackedDenseItems::d)
        .def_readonly("itemsize", &PackedDenseItems::itemsize)
        .def_property_readonly("isa", [](const PackedDenseItems& p) { return static_cast<int>(p.isa); });
    m.def("dense_pack", &pack_items, py::kw_only(), py::arg("V"), py::arg("num_threads"), py::arg("isa") = -1,
          "V (C-contiguous float32/float64, n x d) packed for dense_topk(packed=...) calls with this V.");
    m.def("dense_topk", &dense_topk, py::kw_only(), py::arg("Q"), py::arg("V"), py::arg("k"), py::arg("out_k"),
          py::arg("ex_indptr").none(true) = py::none(), py::arg("ex_indices").none(true) = py::none(),
          py::arg("num_threads"), py::arg("isa") = -1, py::arg("packed").none(true) = nullptr,
          "Core of recforge.kernels.dense_topk (keyword arguments only; O(1) layout checks, the caller "
          "guarantees the exclusion CSR's structure); returns (indices int64, scores float32). "
          "isa: -1 best available, 0 portable, 1 AVX2+FMA, 2 AVX-512 (capped at what the CPU has); "
          "packed: V as dense_pack packed it (then its microkernel is used and V's values are not read).");
    m.def("dense_isa", []() { return static_cast<int>(dense::best_isa()); },
          "Best dense_topk microkernel this CPU supports: 0 portable, 1 AVX2+FMA, 2 AVX-512.");
}
