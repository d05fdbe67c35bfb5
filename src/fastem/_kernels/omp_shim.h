/* The one place fastem touches the OpenMP runtime: serial fallbacks when the
 * kernels are built without OpenMP, so call sites never need #ifdefs. */
#ifndef FASTEM_OMP_SHIM_H
#define FASTEM_OMP_SHIM_H
#ifdef _OPENMP
#include <omp.h>
#define FASTEM_OPENMP 1
#else
#define FASTEM_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
#endif
#endif
