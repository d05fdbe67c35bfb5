"""What the CPU running fastem can execute, asked of the CPU itself.

Built for the lowest instruction set of the build, like _openmp: it runs
before a variant of the kernels is chosen.
"""

cdef extern from *:
    """
    /* GCC and Clang read CPUID once and report a feature only when the OS
     * also saves its registers (XGETBV), so a level reported here is one
     * whose code can run. */
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static int fe_cpu_x86_64_v3(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx") && __builtin_cpu_supports("avx2")
            && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi")
            && __builtin_cpu_supports("bmi2")
    #if !defined(__clang__) && __GNUC__ >= 12
            /* the whole level: also F16C, LZCNT, MOVBE, XSAVE */
            && __builtin_cpu_supports("x86-64-v3")
    #endif
            ;
    }
    static int fe_cpu_x86_64_v4(void) {
        __builtin_cpu_init();
        return fe_cpu_x86_64_v3()
            && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq")
            && __builtin_cpu_supports("avx512vl")
    #if !defined(__clang__) && __GNUC__ >= 12
            && __builtin_cpu_supports("x86-64-v4")
    #endif
            ;
    }
    #else
    static int fe_cpu_x86_64_v3(void) { return 0; }
    static int fe_cpu_x86_64_v4(void) { return 0; }
    #endif

    #if defined(__clang__)
    #define FE_COMPILER "Clang " __clang_version__
    #elif defined(__GNUC__)
    #define FE_COMPILER "GCC " __VERSION__
    #elif defined(_MSC_VER)
    #define FE_STRINGIFY(x) #x
    #define FE_VERSION_STRING(x) FE_STRINGIFY(x)
    #define FE_COMPILER "MSVC " FE_VERSION_STRING(_MSC_FULL_VER)
    #else
    #define FE_COMPILER "unknown"
    #endif
    """
    int fe_cpu_x86_64_v3() nogil
    int fe_cpu_x86_64_v4() nogil
    const char* FE_COMPILER


def supported_levels():
    """The x86-64 levels above the baseline that this CPU and OS can run, as a
    dict {"avx2": bool, "avx512": bool} (both False on other architectures)."""
    return {"avx2": bool(fe_cpu_x86_64_v3()), "avx512": bool(fe_cpu_x86_64_v4())}


def compiler():
    """Name and version of the C compiler that built the extensions."""
    return FE_COMPILER.decode("ascii", "replace")
