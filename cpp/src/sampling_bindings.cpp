// Binding of the uniform negative sampler. Inputs were validated by recforge.torch.samplers
// (int64 canonical CSR arrays, users in range, every requested user with a non-positive item).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "recforge/sampling.hpp"

namespace py = pybind11;

void register_sampling(py::module_& m) {
    m.def(
        "uniform_negatives",
        [](const py::array_t<int64_t, py::array::c_style>& indptr,
           const py::array_t<int64_t, py::array::c_style>& indices, int64_t n_items,
           const py::array_t<int64_t, py::array::c_style>& users, int64_t n_neg, uint64_t seed, int num_threads) {
            const int64_t m = users.shape(0);
            py::array_t<int64_t> out({m, n_neg});
            const int64_t* p = indptr.data();
            const int64_t* x = indices.data();
            const int64_t* u = users.data();
            int64_t* y = out.mutable_data();
            {
                py::gil_scoped_release release;
                recforge::sampling::uniform_negatives(p, x, n_items, u, m, n_neg, seed, y, num_threads);
            }
            return out;
        },
        py::arg("indptr"), py::arg("indices"), py::arg("n_items"), py::arg("users"), py::arg("n_neg"),
        py::arg("seed"), py::arg("num_threads"),
        "Unchecked core of recforge.torch.samplers.UniformNegativeSampler: int64 (len(users), n_neg) "
        "uniform non-positive items; the same seed gives the same items for any num_threads.");
}
