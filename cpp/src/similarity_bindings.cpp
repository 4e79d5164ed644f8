// Binding of similarity_topk. Inputs were validated and canonicalised by
// recforge.kernels (sorted, duplicate-free CSR; finite values; matching dtypes); the binding
// re-checks in O(1) the layout, dtypes and lengths of every array it reads (array_checks.hpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <limits>
#include <stdexcept>

#include "array_checks.hpp"
#include "recforge/similarity.hpp"

namespace py = pybind11;
using namespace recforge;
using namespace recforge::similarity;
using namespace recforge::bindings;

namespace {

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
            const auto* row = r.row(i);
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

// The arguments of one similarity_topk call, checked (O(1) each) against what the kernel reads.
struct SimilarityCall {
    py::array x_indptr, x_indices, x_data;
    int64_t m = 0, d = 0;
    py::array yt_indptr, yt_indices;
    py::object yt_data, x_scale, y_scale, x_size, y_size, ex_indptr, ex_indices;
    int64_t n = 0;
    Kind kind = Kind::Dot;
    bool count = false;
    int64_t k = 1;
    double shrink = 0.0, min_support = 1.0;
    bool symmetric = false, exclude_self = false;
    int num_threads = 1;
    int64_t private_budget = 0;
    int64_t pair_rows_begin = 0, pair_rows_end = -1;

    void check() const {
        if (m < 0 || d < 0 || n < 0) fail("m, d and n must be >= 0");
        if (k < 1) fail("k must be >= 1");
        if (pair_rows_begin != 0 || pair_rows_end != -1) {
            if (!symmetric) fail("pair_rows_begin/pair_rows_end need the half product (symmetric=True)");
            if (pair_rows_begin < 0 || pair_rows_begin > pair_rows_end || pair_rows_end > m)
                fail("pair rows must satisfy 0 <= pair_rows_begin <= pair_rows_end <= m");
        }
        check_threads(num_threads);
        check_array(x_indices, "x_indices", 1, 'i', {4, 8});
        check_same_dtype(x_indptr, "x_indptr", x_indices, "x_indices");
        check_array(x_data, "x_data", 1, 'f', {4, 8});
        check_offsets(x_indptr, "x_indptr", m, std::min<int64_t>(x_indices.shape(0), x_data.shape(0)));
        if (yt_indices.itemsize() == 2) check_array(yt_indices, "yt_indices", 1, 'u', {2});
        else check_same_dtype(yt_indices, "yt_indices", x_indices, "x_indices");
        check_array(yt_indices, "yt_indices", 1, yt_indices.dtype().kind(), {2, 4, 8});
        check_same_dtype(yt_indptr, "yt_indptr", x_indices, "x_indices");
        int64_t yt_available = yt_indices.shape(0);
        if (!yt_data.is_none()) {
            const auto values = py::cast<py::array>(yt_data);
            check_array(values, "yt_data", 1, 'f', {4, 8});
            check_same_dtype(values, "yt_data", x_data, "x_data");
            yt_available = std::min<int64_t>(yt_available, values.shape(0));
        }
        check_offsets(yt_indptr, "yt_indptr", d, yt_available);
        if (yt_indices.itemsize() == 2 && n > 65535) fail("uint16 yt_indices need n <= 65535");
        check_optional(x_scale, "x_scale", x_data, m);
        check_optional(y_scale, "y_scale", x_data, n);
        check_optional_sizes(x_size, "x_size", m);
        check_optional_sizes(y_size, "y_size", n);
        if (kind == Kind::Jaccard && (x_size.is_none() || y_size.is_none())) fail("jaccard needs x_size and y_size");
        if (ex_indptr.is_none() != ex_indices.is_none()) fail("ex_indptr and ex_indices go together");
        if (!ex_indptr.is_none()) {
            const auto ep = py::cast<py::array>(ex_indptr), ei = py::cast<py::array>(ex_indices);
            check_same_dtype(ei, "ex_indices", x_indices, "x_indices");
            check_array(ei, "ex_indices", 1, 'i', {4, 8});
            check_same_dtype(ep, "ex_indptr", x_indices, "x_indices");
            check_offsets(ep, "ex_indptr", m, ei.shape(0));
        }
    }

private:
    static void check_optional(const py::object& a, const char* name, const py::array& like, int64_t length) {
        if (a.is_none()) return;
        const auto arr = py::cast<py::array>(a);
        check_array(arr, name, 1, 'f', {4, 8});
        check_same_dtype(arr, name, like, "x_data");
        check_length(arr, name, length);
    }
    static void check_optional_sizes(const py::object& a, const char* name, int64_t length) {
        if (a.is_none()) return;
        const auto arr = py::cast<py::array>(a);
        check_array(arr, name, 1, 'i', {8});
        check_length(arr, name, length);
    }
};

template <class T>
const T* optional_ptr(const py::object& a) {
    return a.is_none() ? nullptr : static_cast<const T*>(py::cast<py::array>(a).data());
}

template <class T, class I, class J>
py::tuple run_typed(const SimilarityCall& c) {
    CsrView<T, I> x{static_cast<const I*>(c.x_indptr.data()), static_cast<const I*>(c.x_indices.data()),
                    static_cast<const T*>(c.x_data.data()), c.m, c.d};
    CsrView<T, I, J> yt{static_cast<const I*>(c.yt_indptr.data()), static_cast<const J*>(c.yt_indices.data()),
                        optional_ptr<T>(c.yt_data), c.d, c.n};
    if (c.kind == Kind::Jaccard) x.data = yt.data = nullptr;  // pattern only
    CsrView<T, I> ex{};
    const bool has_exclude = !c.ex_indptr.is_none();
    if (has_exclude) {
        ex = CsrView<T, I>{static_cast<const I*>(py::cast<py::array>(c.ex_indptr).data()),
                           static_cast<const I*>(py::cast<py::array>(c.ex_indices).data()), nullptr, c.m, c.n};
    }
    Context<T> ctx;
    ctx.x_scale = optional_ptr<T>(c.x_scale);
    ctx.y_scale = optional_ptr<T>(c.y_scale);
    ctx.x_size = optional_ptr<int64_t>(c.x_size);
    ctx.y_size = optional_ptr<int64_t>(c.y_size);
    ctx.shrink = c.shrink;
    ctx.min_support = c.min_support;
    RowResults<T, I> result;
    {
        py::gil_scoped_release release;
        auto go = [&](auto policy) {
            using P = decltype(policy);
            result = Kernel<P, T, I, J>(x, yt, ctx, c.k, c.symmetric, c.exclude_self, has_exclude ? &ex : nullptr,
                                        static_cast<size_t>(c.private_budget))
                         .pair_rows(c.pair_rows_begin, c.pair_rows_end)
                         .run(c.num_threads);
        };
        switch (c.kind) {
            case Kind::Dot:
                if (c.count) go(DotPolicy<T, true>{}); else go(DotPolicy<T, false>{});
                break;
            case Kind::Jaccard: go(JaccardPolicy<T>{}); break;
            case Kind::Pearson: go(PearsonPolicy<T>{}); break;
            case Kind::Msd: go(MsdPolicy<T>{}); break;
        }
    }
    return to_csr(std::move(result), c.num_threads);
}

template <class T, class I>
py::tuple run_narrow_or_not(const SimilarityCall& c) {
    if (c.yt_indices.itemsize() == 2) return run_typed<T, I, uint16_t>(c);  // uint16 columns of Yt
    return run_typed<T, I, I>(c);
}

py::tuple similarity_topk(const SimilarityCall& c) {
    c.check();
    const bool f64 = c.x_data.itemsize() == 8;
    const bool i64 = c.x_indices.itemsize() == 8;
    if (f64) return i64 ? run_narrow_or_not<double, int64_t>(c) : run_narrow_or_not<double, int32_t>(c);
    return i64 ? run_narrow_or_not<float, int64_t>(c) : run_narrow_or_not<float, int32_t>(c);
}

// Calls fn(typed pointer) for an int32 or int64 array.
template <class Fn>
auto with_index_type(const py::array& a, Fn&& fn) {
    if (a.dtype().itemsize() == 8) return fn(static_cast<const int64_t*>(a.data()));
    return fn(static_cast<const int32_t*>(a.data()));
}

// Per-row sums of squares of a CSR's values (float64), without O(nnz) temporaries.
py::array_t<double> row_square_sums(const py::array& indptr, const py::array& data, int num_threads) {
    check_threads(num_threads);
    check_array(data, "data", 1, 'f', {4, 8});
    const int64_t m = indptr.ndim() == 1 ? indptr.shape(0) - 1 : -1;
    if (m < 0) fail("indptr must be 1-D with at least one entry");
    check_offsets(indptr, "indptr", m, data.shape(0));
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
py::array_t<double> row_weight_sums(const py::array& indptr, const py::array& indices, const py::array& weights,
                                    int num_threads) {
    check_threads(num_threads);
    check_array(indices, "indices", 1, 'i', {4, 8});
    check_array(weights, "weights", 1, 'f', {8});
    const int64_t m = indptr.ndim() == 1 ? indptr.shape(0) - 1 : -1;
    if (m < 0) fail("indptr must be 1-D with at least one entry");
    check_offsets(indptr, "indptr", m, indices.shape(0));
    py::array_t<double> out(m);
    double* o = out.mutable_data();
    const double* w = static_cast<const double*>(weights.data());
    const int64_t n_weights = weights.shape(0);
    bool in_range = true;
    with_index_type(indptr, [&](const auto* p) {
        return with_index_type(indices, [&](const auto* idx) {
            py::gil_scoped_release release;
#pragma omp parallel for num_threads(num_threads) schedule(static) reduction(&& : in_range)
            for (int64_t i = 0; i < m; ++i) {
                double acc = 0.0;
                for (int64_t q = p[i]; q < static_cast<int64_t>(p[i + 1]); ++q) {
                    const int64_t c = static_cast<int64_t>(idx[q]);
                    if (c < 0 || c >= n_weights) { in_range = false; continue; }
                    acc += w[c];
                }
                o[i] = acc;
            }
            return 0;
        });
    });
    if (!in_range) fail("indices must lie in [0, len(weights))");
    return out;
}

}  // namespace

void register_similarity(py::module_& m) {
    py::enum_<Kind>(m, "SimilarityKind", "Kernel kinds of similarity_topk (recforge/similarity.hpp: Kind).")
        .value("dot", Kind::Dot)
        .value("jaccard", Kind::Jaccard)
        .value("pearson", Kind::Pearson)
        .value("msd", Kind::Msd);
    m.def("row_square_sums", &row_square_sums, py::arg("indptr"), py::arg("data"), py::arg("num_threads"),
          "Per-row sum of squared values of a CSR (float64).");
    m.def("row_weight_sums", &row_weight_sums, py::arg("indptr"), py::arg("indices"), py::arg("weights"),
          py::arg("num_threads"), "Per-row sum of weights[column] over the stored entries of a CSR.");
    m.def(
        "similarity_topk",
        [](py::array x_indptr, py::array x_indices, py::array x_data, int64_t m, int64_t d, py::array yt_indptr,
           py::array yt_indices, py::object yt_data, int64_t n, Kind kind, bool count, int64_t k, double shrink,
           double min_support, py::object x_scale, py::object y_scale, py::object x_size, py::object y_size,
           bool symmetric, bool exclude_self, py::object ex_indptr, py::object ex_indices, int num_threads,
           int64_t private_budget, int64_t pair_rows_begin, int64_t pair_rows_end) {
            SimilarityCall c;
            c.x_indptr = x_indptr; c.x_indices = x_indices; c.x_data = x_data; c.m = m; c.d = d;
            c.yt_indptr = yt_indptr; c.yt_indices = yt_indices; c.yt_data = yt_data; c.n = n;
            c.kind = kind; c.count = count; c.k = k; c.shrink = shrink; c.min_support = min_support;
            c.x_scale = x_scale; c.y_scale = y_scale; c.x_size = x_size; c.y_size = y_size;
            c.symmetric = symmetric; c.exclude_self = exclude_self; c.ex_indptr = ex_indptr; c.ex_indices = ex_indices;
            c.num_threads = num_threads; c.private_budget = private_budget;
            c.pair_rows_begin = pair_rows_begin; c.pair_rows_end = pair_rows_end;
            return similarity_topk(c);
        },
        py::kw_only(), py::arg("x_indptr"), py::arg("x_indices"), py::arg("x_data"), py::arg("m"), py::arg("d"),
        py::arg("yt_indptr"), py::arg("yt_indices"), py::arg("yt_data").none(true), py::arg("n"), py::arg("kind"),
        py::arg("count") = false, py::arg("k"), py::arg("shrink") = 0.0, py::arg("min_support") = 1.0,
        py::arg("x_scale").none(true) = py::none(), py::arg("y_scale").none(true) = py::none(),
        py::arg("x_size").none(true) = py::none(), py::arg("y_size").none(true) = py::none(),
        py::arg("symmetric") = false, py::arg("exclude_self") = false,
        py::arg("ex_indptr").none(true) = py::none(), py::arg("ex_indices").none(true) = py::none(),
        py::arg("num_threads"), py::arg("private_budget") = int64_t(512) << 20,
        py::arg("pair_rows_begin") = int64_t(0), py::arg("pair_rows_end") = int64_t(-1),
        "Core of recforge.kernels.similarity_topk (keyword arguments only); returns (indptr, indices, data). "
        "Checks layouts, dtypes and lengths in O(1); the caller guarantees the CSR structure "
        "(monotone offsets, columns in range).");
}
