// Graph kernels: normalize_adjacency, spmm, propagate (LightGCN).
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_graph(py::module_& m) {}
