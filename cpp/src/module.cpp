// recforge._core: one registration function per kernel family, each in its own *_bindings.cpp.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_info(py::module_& m);
void register_similarity(py::module_& m);
void register_dense(py::module_& m);
void register_graph(py::module_& m);
void register_sampling(py::module_& m);

PYBIND11_MODULE(_core, m) {
    m.doc() = "recforge compiled CPU kernels (C++17, OpenMP). Use recforge.kernels, not this module.";
    register_info(m);
    register_similarity(m);
    register_dense(m);
    register_graph(m);
    register_sampling(m);
}
