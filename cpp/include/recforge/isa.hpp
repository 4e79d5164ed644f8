// The SIMD level a kernel's row loop may use, detected once at run time (`__builtin_cpu_supports`);
// the build itself stays at the x86-64 baseline.
#pragma once
#include <algorithm>

namespace recforge {

enum class Isa : int { Generic = 0, Avx2 = 1, Avx512 = 2 };

// The best level this CPU supports; `need_avx512vl`: the AVX-512 path also uses AVX-512VL.
inline Isa detect_isa(bool need_avx512vl) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && (!need_avx512vl || __builtin_cpu_supports("avx512vl")))
        return Isa::Avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
    return Isa::Generic;
}

// A requested level (-1: the best) capped at what the CPU supports.
inline Isa capped_isa(int requested, Isa best) {
    return requested < 0 ? best : static_cast<Isa>(std::min(requested, static_cast<int>(best)));
}

}  // namespace recforge
