// Binding of similarity_topk. Inputs were validated and canonicalised by
// recforge.kernels (sorted, duplicate-free CSR; finite values; matching dtypes).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <limits>
#include <stdexcept>

#include "recforge/similarity.hpp"

namespace py = pybind11;
using namespace recforge;
using namespace recforge::similarity;

namespace {

template <class T, class I, class J = I>
CsrView<T, I, J> view(const py::array& indptr, const py::array& indices, const py::object& data,
                      int64_t rows, int64_t cols) {
    const T* values = data.is_none() ? nullptr : static_cast<const T*>(py::cast<py::array>(data).data());
    return CsrView<T, I, J>{static_cast<const I*>(indptr.data()), static_cast<const J*>(indices.data()),
                            values, rows, cols};
}

template <class T>
const T* optional_ptr(const py::object& a) {
    return a.is_none() ? nullptr : static_cast<const T*>(py::cast<py::array>(a).data());
}

// Packs row results into CSR arrays (indptr, indices, data); index dtype = int32 when it fits.
template <class T, class I>
py::tuple to_csr(RowResults<T, I>&& r, int num_threads) {
    const int64_t m = static_cast<int64_t>(r.counts.size());
    int64_t total = 0;
    for (int64_t i = 0; i < m; ++i) total += r.counts[i];
    const bool wide = sizeof(I) == 8 || total > std::numeric_limits<int32_t>::max();
    auto fill = [&](auto* indptr, auto* indices, T* data) {
        using J = std::remove_pointer_t<decltype(indptr)>;
        indptr[0] = 0;
        for (int64_t i = 0; i < m; ++i) indptr[i + 1] = indptr[i] + static_cast<J>(r.counts[i]);
        py::gil_scoped_release release;
#pragma omp parallel for num_threads(num_threads) schedule(static)
        for (int64_t i = 0; i < m; ++i) {
            const auto* row = &r.entries[static_cast<size_t>(i * r.k)];
            for (int64_t t = 0; t < r.counts[i]; ++t) {
                indices[indptr[i] + t] = static_cast<J>(row[t].index);
                data[indptr[i] + t] = row[t].score;
            }
        }
    };
    py::array_t<T> data(total);
    if (wide) {
        py::array_t<int64_t> indptr(m + 1), indices(total);
        fill(indptr.mutable_data(), indices.mutable_data(), data.mutable_data());
        return py::make_tuple(indptr, indices, data);
    }
    py::array_t<int32_t> indptr(m + 1), indices(total);
    fill(indptr.mutable_data(), indices.mutable_data(), data.mutable_data());
    return py::make_tuple(indptr, indices, data);
}

template <class T, class I, class J>
py::tuple run_typed(const py::array& x_indptr, const py::array& x_indices, const py::object& x_data,
                    int64_t m, int64_t d, const py::array& yt_indptr, const py::array& yt_indices,
                    const py::object& yt_data, int64_t n, int kind, bool count, int64_t k,
                    double shrink, double min_support, const py::object& x_scale,
                    const py::object& y_scale, const py::object& x_size, const py::object& y_size,
                    bool symmetric, bool exclude_self, const py::object& ex_indptr, const py::object& ex_indices,
                    int num_threads, int64_t private_budget) {
    auto x = view<T, I>(x_indptr, x_indices, x_data, m, d);
    auto yt = view<T, I, J>(yt_indptr, yt_indices, yt_data, d, n);
    if (static_cast<Kind>(kind) == Kind::Jaccard) x.data = yt.data = nullptr;  // pattern only
    CsrView<T, I> ex{};
    const bool has_exclude = !ex_indptr.is_none();
    if (has_exclude) ex = view<T, I>(py::cast<py::array>(ex_indptr), py::cast<py::array>(ex_indices), py::none(), m, n);
    Context<T> ctx;
    ctx.x_scale = optional_ptr<T>(x_scale);
    ctx.y_scale = optional_ptr<T>(y_scale);
    ctx.x_size = optional_ptr<int64_t>(x_size);
    ctx.y_size = optional_ptr<int64_t>(y_size);
    ctx.shrink = shrink;
    ctx.min_support = min_support;
    RowResults<T, I> result;
    {
        py::gil_scoped_release release;
        auto go = [&](auto policy) {
            using P = decltype(policy);
            result = Kernel<P, T, I, J>(x, yt, ctx, k, symmetric, exclude_self, has_exclude ? &ex : nullptr,
                                                static_cast<size_t>(private_budget)).run(num_threads);
        };
        switch (static_cast<Kind>(kind)) {
            case Kind::Dot:
                if (count) go(DotPolicy<T, true>{}); else go(DotPolicy<T, false>{});
                break;
            case Kind::Jaccard: go(JaccardPolicy<T>{}); break;
            case Kind::Pearson: go(PearsonPolicy<T>{}); break;
            case Kind::Msd: go(MsdPolicy<T>{}); break;
        }
    }
    return to_csr(std::move(result), num_threads);
}

py::tuple similarity_topk(const py::array& x_indptr, const py::array& x_indices, const py::object& x_data,
                          int64_t m, int64_t d, const py::array& yt_indptr, const py::array& yt_indices,
                          const py::object& yt_data, int64_t n, int kind, bool count, int64_t k,
                          double shrink, double min_support, const py::object& x_scale,
                          const py::object& y_scale, const py::object& x_size,
                          const py::object& y_size, bool symmetric, bool exclude_self, const py::object& ex_indptr,
                          const py::object& ex_indices, int num_threads, int64_t private_budget) {
    const bool f64 = py::cast<py::array>(x_data).dtype().itemsize() == 8;
    const bool i64 = x_indices.dtype().itemsize() == 8;
    const bool narrow = yt_indices.dtype().itemsize() == 2;  // uint16 columns of Yt
#define RECFORGE_SIM_CALL(T, I)                                                                    \
    do {                                                                                           \
        if (narrow)                                                                                \
            return run_typed<T, I, uint16_t>(x_indptr, x_indices, x_data, m, d, yt_indptr,         \
                                             yt_indices, yt_data, n, kind, count, k, shrink,       \
                                             min_support, x_scale, y_scale, x_size, y_size,        \
                                             symmetric, exclude_self, ex_indptr, ex_indices, num_threads,       \
                                             private_budget);                                      \
        return run_typed<T, I, I>(x_indptr, x_indices, x_data, m, d, yt_indptr, yt_indices,        \
                                  yt_data, n, kind, count, k, shrink, min_support, x_scale,        \
                                  y_scale, x_size, y_size, symmetric, exclude_self, ex_indptr, ex_indices,       \
                                  num_threads, private_budget);                                    \
    } while (0)
    if (f64) {
        if (i64) RECFORGE_SIM_CALL(double, int64_t);
        RECFORGE_SIM_CALL(double, int32_t);
    }
    if (i64) RECFORGE_SIM_CALL(float, int64_t);
    RECFORGE_SIM_CALL(float, int32_t);
#undef RECFORGE_SIM_CALL
}

// Calls fn(typed pointer) for an int32 or int64 array.
template <class Fn>
auto with_index_type(const py::array& a, Fn&& fn) {
    if (a.dtype().itemsize() == 8) return fn(static_cast<const int64_t*>(a.data()));
    return fn(static_cast<const int32_t*>(a.data()));
}

// Per-row sums of squares of a CSR's values (float64), without O(nnz) temporaries.
py::array_t<double> row_square_sums(const py::array& indptr, const py::array& data, int num_threads) {
    const int64_t m = indptr.shape(0) - 1;
    py::array_t<double> out(m);
    double* o = out.mutable_data();
    const bool f64 = data.dtype().itemsize() == 8;
    with_index_type(indptr, [&](const auto* p) {
        py::gil_scoped_release release;
        auto run = [&](const auto* v) {
#pragma omp parallel for num_threads(num_threads) schedule(static)
            for (int64_t i = 0; i < m; ++i) {
                double acc = 0.0;
                for (int64_t q = p[i]; q < static_cast<int64_t>(p[i + 1]); ++q) acc += static_cast<double>(v[q]) * v[q];
                o[i] = acc;
            }
        };
        if (f64) run(static_cast<const double*>(data.data()));
        else run(static_cast<const float*>(data.data()));
        return 0;
    });
    return out;
}

// Per-row sums of weights[column] over a CSR's stored entries (e.g. the work of a product).
py::array_t<double> row_weight_sums(const py::array& indptr, const py::array& indices,
                                    const py::array_t<double, py::array::c_style>& weights, int num_threads) {
    const int64_t m = indptr.shape(0) - 1;
    py::array_t<double> out(m);
    double* o = out.mutable_data();
    const double* w = weights.data();
    with_index_type(indptr, [&](const auto* p) {
        return with_index_type(indices, [&](const auto* idx) {
            py::gil_scoped_release release;
#pragma omp parallel for num_threads(num_threads) schedule(static)
            for (int64_t i = 0; i < m; ++i) {
                double acc = 0.0;
                for (int64_t q = p[i]; q < static_cast<int64_t>(p[i + 1]); ++q) acc += w[idx[q]];
                o[i] = acc;
            }
            return 0;
        });
    });
    return out;
}

}  // namespace

void register_similarity(py::module_& m) {
    m.def("row_square_sums", &row_square_sums, py::arg("indptr"), py::arg("data"), py::arg("num_threads"),
          "Per-row sum of squared values of a CSR (float64).");
    m.def("row_weight_sums", &row_weight_sums, py::arg("indptr"), py::arg("indices"), py::arg("weights"),
          py::arg("num_threads"), "Per-row sum of weights[column] over the stored entries of a CSR.");
    m.def("similarity_topk", &similarity_topk, py::arg("x_indptr"), py::arg("x_indices"),
          py::arg("x_data"), py::arg("m"), py::arg("d"), py::arg("yt_indptr"), py::arg("yt_indices"),
          py::arg("yt_data"), py::arg("n"), py::arg("kind"), py::arg("count"), py::arg("k"),
          py::arg("shrink"), py::arg("min_support"), py::arg("x_scale"), py::arg("y_scale"),
          py::arg("x_size"), py::arg("y_size"), py::arg("symmetric"), py::arg("exclude_self"), py::arg("ex_indptr"), py::arg("ex_indices"), py::arg("num_threads"), py::arg("private_budget"),
          "Unchecked core of recforge.kernels.similarity_topk; returns (indptr, indices, data).");
}
