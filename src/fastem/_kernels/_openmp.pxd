cdef extern from "omp_shim.h":
    int FASTEM_OPENMP
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
