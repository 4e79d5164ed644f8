// What every binding checks of the arrays it receives, in O(1): the layout it reads (1-D or 2-D,
// C-contiguous, so strided views and reversed arrays are never read as if they were dense), the
// element type, and lengths. The O(nnz) structural checks of a CSR (monotone offsets, columns in
// range) are made once, vectorised, by recforge.kernels._validation before the core is called.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <string>

namespace recforge {
namespace bindings {

namespace py = pybind11;

[[noreturn]] inline void fail(const std::string& message) { throw py::value_error(message); }

// A C-contiguous array of `ndim` dimensions whose elements are of kind `kind` ('i' signed int,
// 'u' unsigned, 'f' float) and one of the sizes in `sizes` (bytes, 0-terminated list).
inline void check_array(const py::array& a, const char* name, int ndim, char kind, std::initializer_list<int> sizes) {
    if (a.ndim() != ndim) fail(std::string(name) + " must be " + std::to_string(ndim) + "-D");
    if (!(a.flags() & py::array::c_style)) fail(std::string(name) + " must be C-contiguous");
    const char k = a.dtype().kind();
    bool size_ok = false;
    for (int s : sizes) size_ok = size_ok || a.itemsize() == s;
    if (k != kind || !size_ok) fail(std::string(name) + " has dtype " + std::string(py::str(a.dtype())) + ", which this kernel does not read");
}

inline void check_same_dtype(const py::array& a, const char* name, const py::array& ref, const char* ref_name) {
    if (!a.dtype().is(ref.dtype()) && !(a.dtype().kind() == ref.dtype().kind() && a.itemsize() == ref.itemsize()))
        fail(std::string(name) + " must have the dtype of " + ref_name);
}

inline void check_length(const py::array& a, const char* name, int64_t expected) {
    if (a.shape(0) != expected)
        fail(std::string(name) + " must have length " + std::to_string(expected) + ", got " + std::to_string(a.shape(0)));
}

// An int32/int64 offsets array of rows + 1 entries, first 0, whose last entry does not exceed
// the lengths of the arrays it indexes (O(1): monotonicity was checked in Python).
inline int64_t check_offsets(const py::array& indptr, const char* name, int64_t rows, int64_t available) {
    check_array(indptr, name, 1, 'i', {4, 8});
    check_length(indptr, name, rows + 1);
    auto at = [&](int64_t i) {
        return indptr.itemsize() == 8 ? static_cast<const int64_t*>(indptr.data())[i]
                                      : static_cast<int64_t>(static_cast<const int32_t*>(indptr.data())[i]);
    };
    const int64_t nnz = at(rows);
    if (at(0) != 0 || nnz < 0 || nnz > available)
        fail(std::string(name) + " must start at 0 and end at most at the number of stored entries (" +
             std::to_string(available) + ")");
    return nnz;
}

inline int check_threads(int num_threads) {
    if (num_threads < 1) fail("num_threads must be >= 1 at the core (0 is resolved in Python)");
    return num_threads;
}

}  // namespace bindings
}  // namespace recforge
