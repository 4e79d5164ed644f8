// Read-only views of CSR matrices owned by Python (numpy arrays, no copies).
#pragma once
#include <cstdint>

namespace recforge {

// I: offsets type; J: column index type (narrower than I where the columns allow, e.g.
// uint16 for up to 65,535 columns, to cut the bytes streamed per stored value).
template <class T, class I, class J = I>
struct CsrView {
    const I* indptr;   // rows + 1 offsets
    const J* indices;  // column of each stored value, sorted within a row, no duplicates
    const T* data;     // stored values (may be null where only the pattern is used)
    int64_t rows;
    int64_t cols;

    int64_t row_begin(int64_t r) const { return static_cast<int64_t>(indptr[r]); }
    int64_t row_end(int64_t r) const { return static_cast<int64_t>(indptr[r + 1]); }
    int64_t nnz() const { return static_cast<int64_t>(indptr[rows]); }
};

}  // namespace recforge
