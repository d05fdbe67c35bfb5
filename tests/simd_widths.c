/* Every kernel of fastem_simd.h, and the exp and log of fastem_math.h,
 * against plain loops, for whatever vector width this file is compiled for
 * (test_simd_widths.py builds it for AVX-512, AVX2 and SSE2). Prints one
 * line per failure and exits non-zero if there was any. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "fastem_math.h"
#include "fastem_simd.h"

static double uniform(void) { return rand() / (double)RAND_MAX - 0.5; }

#define CHECK_HSUM(NAME, T, V, TOL)                                            \
    do {                                                                       \
        enum { L = (int)(sizeof(V) / sizeof(T)) };                             \
        for (int n = L < 8 ? 8 : L; n <= 16; n *= 2) {                         \
            V v[16];                                                           \
            T out[16];                                                         \
            double ref[16];                                                    \
            for (int i = 0; i < n; i++) {                                      \
                ref[i] = 0;                                                    \
                for (int l = 0; l < L; l++) {                                  \
                    T x = (T)uniform();                                        \
                    v[i][l] = x;                                               \
                    ref[i] += x;                                               \
                }                                                              \
            }                                                                  \
            NAME(v, n, out);                                                   \
            for (int i = 0; i < n; i++)                                        \
                if (fabs(out[i] - ref[i]) > TOL) {                             \
                    printf(#NAME " n=%d sum %d: %g, expected %g\n", n, i,      \
                           (double)out[i], ref[i]);                            \
                    failures++;                                                \
                }                                                              \
        }                                                                      \
    } while (0)

#define CHECK_GRAM(NAME, T, SHIFT, TOL)                                        \
    do {                                                                       \
        enum { P = 96, LD = 104 };                                             \
        static T w[4 * LD], x[4 * LD];                                         \
        T c[4], out[16];                                                       \
        for (int i = 0; i < 4 * LD; i++) {                                     \
            w[i] = (T)uniform();                                               \
            x[i] = (T)uniform();                                               \
        }                                                                      \
        for (int b = 0; b < 4; b++)                                            \
            c[b] = (T)uniform();                                               \
        NAME(w, x, c, LD, P, out);                                             \
        for (int a = 0; a < 4; a++)                                            \
            for (int b = 0; b < 4; b++) {                                      \
                double ref = 0;                                                \
                for (int n = 0; n < P; n++)                                    \
                    ref += (double)w[a * LD + n] *                         \
                           ((double)x[b * LD + n] - (SHIFT ? c[b] : 0));       \
                if (fabs(out[a * 4 + b] - ref) > TOL) {                        \
                    printf(#NAME " [%d][%d]: %g, expected %g\n", a, b,         \
                           (double)out[a * 4 + b], ref);                       \
                    failures++;                                                \
                }                                                              \
            }                                                                  \
    } while (0)

#define CHECK_TRANSPOSE(NAME, T)                                               \
    do {                                                                       \
        enum { LD = 72 };                                                      \
        static T x[67 * 40], xt[40 * LD];                                      \
        /* row counts and feature counts on and off the block size */         \
        const int ns[] = {0, 3, 16, 67}, ds[] = {1, 5, 8, 16, 17, 40};         \
        for (int a = 0; a < 4; a++)                                            \
            for (int b = 0; b < 6; b++) {                                      \
                int n = ns[a], D = ds[b];                                      \
                for (int i = 0; i < n * D; i++)                                \
                    x[i] = (T)i;                                               \
                for (int i = 0; i < 40 * LD; i++)                              \
                    xt[i] = -1;                                                \
                NAME(x, n, D, xt, LD);                                         \
                for (int j = 0; j < D; j++)                                    \
                    for (int i = 0; i < LD; i++) {                             \
                        T want = i < n ? x[i * D + j] : (T)-1;                 \
                        if (xt[j * LD + i] != want) {                          \
                            printf(#NAME " n=%d D=%d (%d, %d): %g, expected %g\n", \
                                   n, D, i, j, (double)xt[j * LD + i],         \
                                   (double)want);                              \
                            failures++;                                        \
                        }                                                      \
                    }                                                          \
            }                                                                  \
    } while (0)

/* fastem_math.h in loops, as the kernels call it: built with the
 * extension's flags these loops are vector code, whose integer tricks
 * (2^k from the bits of a shifted sum, the exponent as a double) differ
 * from the scalar code's at every width */
#define DEFINE_MAP(NAME, T, F)                                                 \
    static void NAME(const T *restrict x, T *restrict y, int n)               \
    {                                                                          \
        for (int i = 0; i < n; i++)                                            \
            y[i] = F(x[i]);                                                    \
    }
DEFINE_MAP(map_exp_d, double, fe_exp)
DEFINE_MAP(map_exp_f, float, fe_expf)
DEFINE_MAP(map_log_d, double, fe_log)
DEFINE_MAP(map_log_f, float, fe_logf)

/* exp over [lo, 0] and at -inf (exactly 0), log over [1, 1e30] (relative to
 * max(|log x|, 1)), against libm in double */
#define CHECK_EXP_LOG(EXP, LOG, T, LO, TOL)                                    \
    do {                                                                       \
        enum { N = 4099 };                                                     \
        static T x[N], y[N];                                                   \
        for (int i = 0; i < N; i++)                                            \
            x[i] = (T)(LO * i / (N - 1.0));                                    \
        x[1] = (T)-INFINITY;                                                   \
        EXP(x, y, N);                                                          \
        for (int i = 0; i < N; i++) {                                          \
            double want = exp((double)x[i]);                                  \
            if (fabs(y[i] - want) > TOL * want) {                              \
                printf(#EXP "(%g): %g, expected %g\n", (double)x[i],           \
                       (double)y[i], want);                                    \
                failures++;                                                    \
            }                                                                  \
        }                                                                      \
        for (int i = 0; i < N; i++)                                            \
            x[i] = (T)pow(10.0, 30.0 * i / (N - 1.0));                         \
        LOG(x, y, N);                                                          \
        for (int i = 0; i < N; i++) {                                          \
            double want = log((double)x[i]);                                  \
            if (fabs(y[i] - want) > TOL * (want > 1 ? want : 1)) {             \
                printf(#LOG "(%g): %.17g, expected %.17g\n", (double)x[i],     \
                       (double)y[i], want);                                    \
                failures++;                                                    \
            }                                                                  \
        }                                                                      \
    } while (0)

/* q[n] = |(x_n - mu)^T U|^2 for U upper triangular (zeros below the
 * diagonal and in the padding columns, as the extension lays it out), for
 * feature counts around and between the coordinate blocks */
#define CHECK_TRI(NAME, T, DMAX, TOL)                                          \
    do {                                                                       \
        enum { P = 64, LD = 72, LDU = FE_TRI_STRIDE(64) };                     \
        static const int dims[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 64}; \
        static T xt[64 * LD], U[64 * LDU], q[P];                               \
        T mu[64];                                                              \
        for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {      \
            int D = dims[di];                                                  \
            if (D > DMAX)                                                      \
                continue;                                                      \
            int ldu = FE_TRI_STRIDE(D);                                        \
            for (int i = 0; i < D * LD; i++)                                   \
                xt[i] = (T)uniform();                                          \
            for (int i = 0; i < D; i++) {                                      \
                mu[i] = (T)uniform();                                          \
                for (int j = 0; j < ldu; j++)                                  \
                    U[i * ldu + j] = (j >= i && j < D) ? (T)uniform() : 0;     \
            }                                                                  \
            NAME(xt, P, LD, D, mu, U, ldu, q);                                 \
            for (int n = 0; n < P; n++) {                                      \
                double ref = 0;                                                \
                for (int j = 0; j < D; j++) {                                  \
                    double y = 0;                                              \
                    for (int i = 0; i <= j; i++)                               \
                        y += ((double)xt[i * LD + n] - mu[i]) * U[i * ldu + j]; \
                    ref += y * y;                                              \
                }                                                              \
                if (fabs(q[n] - ref) > TOL * (1 + ref)) {                      \
                    printf(#NAME " D=%d row %d: %g, expected %g\n", D, n,      \
                           (double)q[n], ref);                                 \
                    failures++;                                                \
                }                                                              \
            }                                                                  \
        }                                                                      \
    } while (0)

/* w[n] = r[n] (x[n] - c) and the returned sum of w */
#define CHECK_WDIFF(NAME, T, TOL)                                              \
    do {                                                                       \
        enum { P = 96 };                                                       \
        static T r[P], x[P], w[P];                                             \
        T c = (T)uniform();                                                    \
        double ref_sum = 0;                                                    \
        for (int n = 0; n < P; n++) {                                          \
            r[n] = (T)uniform();                                               \
            x[n] = (T)uniform();                                               \
        }                                                                      \
        T got = NAME(r, x, c, P, w);                                           \
        for (int n = 0; n < P; n++) {                                          \
            T want = r[n] * (x[n] - c);                                        \
            ref_sum += (double)want;                                           \
            if (w[n] != want) {                                                \
                printf(#NAME " w[%d]: %g, expected %g\n", n, (double)w[n],     \
                       (double)want);                                          \
                failures++;                                                    \
            }                                                                  \
        }                                                                      \
        if (fabs(got - ref_sum) > TOL) {                                       \
            printf(#NAME " sum: %g, expected %g\n", (double)got, ref_sum);     \
            failures++;                                                        \
        }                                                                      \
    } while (0)

/* q_k[n] = sum_i ((x_i[n] - c_ki) p_ki)^2 (p NULL: 1) for every component,
 * for component counts on and off the block size */
#define CHECK_SQDIST(NAME, T, TOL)                                             \
    do {                                                                       \
        enum { P = 64, LD = 72, D = 7, KMAX = 9 };                             \
        static T xt[D * LD], c[KMAX * D], p[KMAX * D], q[KMAX * LD];           \
        for (int i = 0; i < D * LD; i++)                                       \
            xt[i] = (T)uniform();                                              \
        for (int i = 0; i < KMAX * D; i++) {                                   \
            c[i] = (T)uniform();                                               \
            p[i] = (T)(1 + uniform());                                         \
        }                                                                      \
        for (int K = 1; K <= KMAX; K++)                                        \
            for (int scaled = 0; scaled < 2; scaled++) {                       \
                NAME(xt, P, LD, D, K, c, scaled ? p : NULL, q);                \
                for (int k = 0; k < K; k++)                                    \
                    for (int n = 0; n < P; n++) {                              \
                        double ref = 0;                                        \
                        for (int i = 0; i < D; i++) {                          \
                            double s = scaled ? p[k * D + i] : 1;              \
                            double u = ((double)xt[i * LD + n] - c[k * D + i]) * s; \
                            ref += u * u;                                      \
                        }                                                      \
                        if (fabs(q[k * LD + n] - ref) > TOL * (1 + ref)) {     \
                            printf(#NAME " K=%d scaled=%d q[%d][%d]: %g, "     \
                                   "expected %g\n", K, scaled, k, n,           \
                                   (double)q[k * LD + n], ref);                \
                            failures++;                                        \
                        }                                                      \
                    }                                                          \
            }                                                                  \
    } while (0)

/* denormals read and written as zero while flushed, and the state restored
 * (x86 only: elsewhere flushing is a no-op). The arithmetic is in functions
 * of their own, so the compiler cannot move it across the state changes. */
#if defined(__SSE__)
#define FE_CAN_FLUSH 1
#else
#define FE_CAN_FLUSH 0
#endif
static volatile double denormal = 1e-310, one = 1.0, small = 1e-300, tenth = 1e-10;
/* flushed to zero when denormal inputs read as zero, or denormal results are */
__attribute__((noinline)) static double denormal_product(void) { return denormal * one; }
__attribute__((noinline)) static double denormal_result(void) { return small * tenth; }
__attribute__((noinline)) static int denormal_is_positive(void) { return denormal > 0.0; }

#define CHECK_FLUSH()                                                          \
    do {                                                                       \
        /* volatile: compared after the state is restored, where a */          \
        /* denormal reads as itself */                                         \
        volatile double input, result;                                         \
        unsigned int old = fe_flush_denormals();                               \
        input = denormal_product();                                            \
        result = denormal_result();                                            \
        int seen = denormal_is_positive();                                     \
        fe_restore_fp_state(old);                                              \
        double kept = denormal_result();                                       \
        if (FE_CAN_FLUSH && (input != 0.0 || result != 0.0 || seen ||          \
                             kept == 0.0 || !denormal_is_positive())) {        \
            printf("fe_flush_denormals: %g x 1 = %g, 1e-300 x 1e-10 = %g, "     \
                   "read as %s while flushed; then %g\n", denormal, input,     \
                   result, seen ? "positive" : "zero", kept);                  \
            failures++;                                                        \
        }                                                                      \
    } while (0)

/* outside the kernels' ranges: NaN stays NaN, exp(-inf) = 0 and the float
 * exp overflows to inf (the double one is documented for x <= 709 only) */
#define CHECK_EXP_SPECIAL(EXP, T, BIG)                                         \
    do {                                                                       \
        static T x[8] = {NAN, -INFINITY, BIG, INFINITY, 0, 0, 0, 0}, y[8];    \
        EXP(x, y, 8);                                                          \
        if (y[0] == y[0] || y[1] != 0 || (BIG > 0 && (y[2] != INFINITY ||      \
                                                      y[3] != INFINITY))) {    \
            printf(#EXP " of NaN, -inf, %g, inf: %g %g %g %g\n", (double)BIG,  \
                   (double)y[0], (double)y[1], (double)y[2], (double)y[3]);    \
            failures++;                                                        \
        }                                                                      \
    } while (0)

int main(void)
{
    int failures = 0;
    srand(12345);
    CHECK_HSUM(fe_hsum_d, double, fe_vd, 1e-13);
    CHECK_HSUM(fe_hsum_f, float, fe_vf, 1e-5);
    CHECK_GRAM(fe_gram4_d, double, 1, 1e-12);
    CHECK_GRAM(fe_gram4_f, float, 1, 1e-4);
    CHECK_GRAM(fe_gram4_plain_d, double, 0, 1e-12);
    CHECK_GRAM(fe_gram4_plain_f, float, 0, 1e-4);
    CHECK_TRANSPOSE(fe_transpose_d, double);
    CHECK_TRANSPOSE(fe_transpose_f, float);
    CHECK_TRI(fe_tri_sqnorm_d, double, 64, 1e-12);
    CHECK_TRI(fe_tri_sqnorm_f, float, 64, 1e-4);
    CHECK_TRI(fe_tri_sqnorm2_d, double, 2, 1e-12);
    CHECK_TRI(fe_tri_sqnorm2_f, float, 2, 1e-4);
    CHECK_EXP_LOG(map_exp_d, map_log_d, double, -708.0, 2e-15);
    CHECK_EXP_LOG(map_exp_f, map_log_f, float, -87.0, 1.2e-6);
    CHECK_EXP_SPECIAL(map_exp_d, double, 0.0);
    CHECK_EXP_SPECIAL(map_exp_f, float, 100.0f);
    CHECK_WDIFF(fe_wdiff_d, double, 1e-12);
    CHECK_WDIFF(fe_wdiff_f, float, 1e-4);
    CHECK_SQDIST(fe_sqdist_d, double, 1e-12);
    CHECK_SQDIST(fe_sqdist_f, float, 1e-4);
    CHECK_FLUSH();
    printf("vector bytes %d, failures %d\n", FE_VBYTES, failures);
    return failures != 0;
}
