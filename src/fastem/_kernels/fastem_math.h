/* Branch-free exp and log that the compiler can vectorise inside loops.
 *
 * libm's exp/log are opaque calls that keep a loop scalar; these are plain
 * arithmetic and bit operations, so a loop over rows calling them becomes
 * SIMD code. Accuracy: a few ulp over the ranges the kernels use (exp of
 * values <= 0, log of values >= 1), checked against libm in the tests.
 */
#ifndef FASTEM_MATH_H
#define FASTEM_MATH_H
#include <stdint.h>
#include <string.h>

/* ln 2 split in a high part with trailing zero bits and a low correction,
 * so k * LN2_HI is exact for the |k| < 2048 used here (Cody-Waite). */
#define FE_LN2_HI 0.693145751953125
#define FE_LN2_LO 1.42860682030941723212e-6
#define FE_LOG2E 1.4426950408889634
/* 1.5 * 2^52: adding it rounds a double of magnitude < 2^51 to an integer */
#define FE_EXP_SHIFT 6755399441055744.0

static inline double fe_exp(double x)
{
    /* exp(x) = 2^k exp(r), k = round(x / ln 2), |r| <= ln2 / 2; exp(r) by
     * its Taylor series to degree 13 (truncation < 4e-16 relative). Below
     * -708.39 the result is flushed to 0, so exp(-inf) == 0 exactly. For
     * x <= 709 (the kernels pass differences <= 0): there is no upper clamp,
     * which with the lower one written as a maximum (NaN kept) saves a
     * fifth of the instructions of the log-sum-exp's exp loop.
     *
     * k is rounded by adding 1.5 * 2^52 (FE_EXP_SHIFT): the sum's low
     * mantissa bits are then k itself, so 2^k is built from its bits with
     * 64-bit integer adds and shifts. A double -> int64 conversion, the
     * obvious way, is an AVX-512 instruction: without it (AVX2, SSE) GCC
     * keeps the whole loop scalar. */
    const double lo = -708.3964185322641;
    double xc = x < lo ? lo : x;
    /* fused multiply-adds: the kernels are compiled with reassociation
     * allowed, which would fold the rounding shift, or a two-step
     * reduction, into one unrounded expression; an fma is a single
     * operation it cannot split */
    double t = __builtin_fma(xc, FE_LOG2E, FE_EXP_SHIFT);
    double k = t - FE_EXP_SHIFT;
    double r = __builtin_fma(k, -FE_LN2_LO, __builtin_fma(k, -FE_LN2_HI, xc));
    /* the series as its even and odd halves in r^2, two chains of six
     * multiply-adds instead of one of thirteen: a loop of exps is bound
     * by that latency, not by the multiply-add ports, on CPUs whose
     * out-of-order window holds too few iterations to hide it */
    double r2 = r * r;
    double e = 1.0 / 479001600.0;
    e = e * r2 + 1.0 / 3628800.0;
    e = e * r2 + 1.0 / 40320.0;
    e = e * r2 + 1.0 / 720.0;
    e = e * r2 + 1.0 / 24.0;
    e = e * r2 + 0.5;
    e = e * r2 + 1.0;
    double o = 1.0 / 6227020800.0;
    o = o * r2 + 1.0 / 39916800.0;
    o = o * r2 + 1.0 / 362880.0;
    o = o * r2 + 1.0 / 5040.0;
    o = o * r2 + 1.0 / 120.0;
    o = o * r2 + 1.0 / 6.0;
    o = o * r2 + 1.0;
    double p = __builtin_fma(r, o, e);
    /* t's bits are those of 1.5 * 2^52 plus k; adding the bias 1023 and
     * shifting the exponent field into place drops the constant's bits */
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return x < lo ? 0.0 : p * scale;
}

static inline float fe_expf(float x)
{
    /* as fe_exp, degree 7 (truncation < 3e-8 relative); 0 below -87.3,
     * inf from 88.4 up (k = 128 scales by 2^128), NaN for NaN */
    const float lo = -87.33654f;
    float xc = x < lo ? lo : x;
    float k = __builtin_floorf(xc * 1.44269504f + 0.5f);
    /* k >= -126 after the lower clamp; capping it (NaN included: the
     * comparison is false) keeps the conversion to int defined */
    float kc = k <= 128.0f ? k : 128.0f;
    float r = __builtin_fmaf(kc, 2.12194440e-4f, __builtin_fmaf(kc, -0.693359375f, xc));
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* the biased exponent is in [1, 255]: shifted as unsigned */
    uint32_t bits = (uint32_t)((int32_t)kc + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x < lo ? 0.0f : p * scale;
}

static inline double fe_log(double x)
{
    /* x = 2^e m with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(t),
     * t = (m - 1) / (m + 1), |t| < 0.172, series to t^23 (< 1e-17).
     * For normal positive x (the kernels call it on sums >= 1). */
    uint64_t bits, ebits;
    memcpy(&bits, &x, sizeof bits);
    /* the biased exponent E as a double without an int64 -> double
     * conversion (AVX-512 only; see fe_exp): E in the low mantissa bits
     * of 2^52 is 2^52 + E exactly */
    ebits = (bits >> 52) | 0x4330000000000000ULL;
    double E;
    memcpy(&E, &ebits, sizeof E);
    E -= 4503599627370496.0;
    bits = (bits & 0x000FFFFFFFFFFFFFULL) | 0x3FF0000000000000ULL;
    double m;
    memcpy(&m, &bits, sizeof m);
    int big = m > 1.4142135623730951;
    m = big ? 0.5 * m : m;
    double ed = E - (big ? 1022.0 : 1023.0);
    double t = (m - 1.0) / (m + 1.0);
    double t2 = t * t, t4 = t2 * t2;
    /* sum_j t2^j / (2j + 1) as two chains in t4 (see fe_exp) */
    double a = 1.0 / 21.0;
    a = a * t4 + 1.0 / 17.0;
    a = a * t4 + 1.0 / 13.0;
    a = a * t4 + 1.0 / 9.0;
    a = a * t4 + 1.0 / 5.0;
    a = a * t4 + 1.0;
    double b = 1.0 / 23.0;
    b = b * t4 + 1.0 / 19.0;
    b = b * t4 + 1.0 / 15.0;
    b = b * t4 + 1.0 / 11.0;
    b = b * t4 + 1.0 / 7.0;
    b = b * t4 + 1.0 / 3.0;
    double p = __builtin_fma(t2, b, a);
    return ed * FE_LN2_HI + (ed * FE_LN2_LO + 2.0 * t * p);
}

static inline float fe_logf(float x)
{
    /* as fe_log, series to t^9 (< 2e-9) */
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    int32_t e = (int32_t)((bits >> 23) & 0xFF) - 127;
    bits = (bits & 0x007FFFFF) | 0x3F800000;
    float m;
    memcpy(&m, &bits, sizeof m);
    int32_t big = m > 1.41421356f;
    m = big ? 0.5f * m : m;
    float ed = (float)(e + big);
    float t = (m - 1.0f) / (m + 1.0f);
    float t2 = t * t;
    float p = 1.0f / 9.0f;
    p = p * t2 + 1.0f / 7.0f;
    p = p * t2 + 1.0f / 5.0f;
    p = p * t2 + 1.0f / 3.0f;
    p = p * t2 + 1.0f;
    return ed * 0.693359375f + (ed * -2.12194440e-4f + 2.0f * t * p);
}
#endif
