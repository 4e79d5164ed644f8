// Build and machine facts for `recforge info` and recforge.backends().
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <omp.h>

#include <string>
#include <vector>

namespace py = pybind11;

namespace {

std::vector<std::string> cpu_features() {
    std::vector<std::string> found;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) found.emplace_back("sse4.2");
    if (__builtin_cpu_supports("avx")) found.emplace_back("avx");
    if (__builtin_cpu_supports("avx2")) found.emplace_back("avx2");
    if (__builtin_cpu_supports("fma")) found.emplace_back("fma");
    if (__builtin_cpu_supports("avx512f")) found.emplace_back("avx512f");
#endif
    return found;
}

}  // namespace

void register_info(py::module_& m) {
    m.def("build_info", []() {
        py::dict d;
        d["version"] = RECFORGE_VERSION;
        d["compiler"] = RECFORGE_CXX_COMPILER;
        d["build_type"] = RECFORGE_BUILD_TYPE;
        d["openmp"] = static_cast<int>(_OPENMP);
        d["cxx_standard"] = static_cast<long>(__cplusplus);
#if defined(__AVX2__)
        d["compiled_isa"] = "avx2";
#elif defined(__SSE4_2__)
        d["compiled_isa"] = "sse4.2";
#else
        d["compiled_isa"] = "x86-64 baseline (sse2)";
#endif
        return d;
    }, "Compiler, build type, OpenMP version and the ISA the core was compiled for.");
    m.def("cpu_features", &cpu_features, "SIMD features this CPU supports (detected at run time).");
    m.def("max_threads", []() { return omp_get_max_threads(); }, "OpenMP threads used when num_threads=0.");
    m.def("num_procs", []() { return omp_get_num_procs(); }, "Processors available to OpenMP.");
}
