/* Register-blocked inner kernels of the EM passes (transpose, triangular
 * products, distances, weighted sums and scatters, lane sums), written with
 * the compiler's vector extensions (GCC and Clang).
 *
 * The same loops written as scalar code in Cython are vectorised by GCC,
 * but it then re-reads every operand that feeds several multiply-adds from
 * memory instead of keeping it in a register: 20 loads per 16 fused
 * multiply-adds in the scatter, 10 per 8 in the triangular product, so
 * both ran at the load ports' pace. Here each value is loaded once into a
 * vector variable and reused from the register.
 *
 * Vectors are 64 bytes where AVX-512 is available, 32 with AVX, else 16,
 * and the register blocks are sized so the accumulators fit the 32 (16)
 * vector registers.
 * Row blocks are feature-major, as in _em.pyx: element (row n, feature i)
 * at [i * ld + n]; P is a multiple of 32 rows.
 */
#ifndef FASTEM_SIMD_H
#define FASTEM_SIMD_H
#include <stddef.h>

#if defined(__AVX512F__)
#define FE_VBYTES 64
#define FE_TRI_TILE_D 32   /* rows: 4 vectors x 4 coordinates = 16 accumulators */
#define FE_TRI_COORDS_D 4
#define FE_TRI_TILE_F 32   /* 2 vectors x 8 coordinates */
#define FE_TRI_COORDS_F 8
#define FE_GRAM_ROWS 4
#elif defined(__AVX__)
/* 2 vectors x 4 coordinates = 8 accumulators, with the broadcasts of U
 * held in registers (FE_PIN_BROADCAST): measured faster than 4 x 2 on
 * AVX2 (see the performance log); without the pinned broadcasts neither
 * layout won consistently. */
#define FE_VBYTES 32
#define FE_TRI_TILE_D 8
#define FE_TRI_COORDS_D 4
#define FE_TRI_TILE_F 16
#define FE_TRI_COORDS_F 4
#define FE_GRAM_ROWS 2
#else
#define FE_VBYTES 16
#define FE_TRI_TILE_D 8
#define FE_TRI_COORDS_D 2
#define FE_TRI_TILE_F 16
#define FE_TRI_COORDS_F 2
#define FE_GRAM_ROWS 2
#endif

/* Row stride of the padded triangular factors: a multiple of every
 * FE_TRI_COORDS above. */
#define FE_TRI_STRIDE(D) (((D) + 7) / 8 * 8)

/* GCC folds a loaded vector into each multiply-add that uses it (a memory
 * operand per use) even when registers are free; an empty asm that claims
 * to change the value pins it in a register after one load. */
#if defined(__x86_64__) || defined(__i386__)
#define FE_IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define FE_IN_REGISTER(v) ((void)0)
#endif

/* Pin the broadcast of a scalar in a register before the multiply-adds
 * that share it. AVX-512 folds a broadcast into each multiply-add as a
 * memory operand at no cost, so there it is left to the compiler; with
 * AVX2 and SSE GCC otherwise reloads or shuffles the broadcasts among the
 * 16 registers. */
#if FE_VBYTES == 64
#define FE_PIN_BROADCAST(v) ((void)0)
#else
#define FE_PIN_BROADCAST(v) FE_IN_REGISTER(v)
#endif

/* unaligned vector views of the buffers */
typedef double fe_vd __attribute__((vector_size(FE_VBYTES), aligned(8), may_alias));
typedef float fe_vf __attribute__((vector_size(FE_VBYTES), aligned(4), may_alias));

/* Lane sums of n vectors (n a power of two, at least the lane count L):
 * out[i] = sum of the lanes of v[i]; v is overwritten. A lane-by-lane sum
 * costs L - 1 scalar additions per vector, a large share of the scatter's
 * time (16 accumulators per 4 x 4 block and chunk), above all in float32.
 * Instead vectors are merged in pairs: each vector holds G = L / s groups
 * of s lanes, every group partial sums of one v[i]; adding the first
 * halves of the groups of a and b (a's groups first) to their second
 * halves gives one vector of 2G groups of s / 2. After log2 L rounds every
 * lane is a whole sum, in the order of v. The shuffle masks are constant
 * expressions, so each shuffle is one two-source permute instruction. */
#define FE_HS_SRC(l, s, L)                                                     \
    ((l) / ((s) / 2) < (L) / (s)                                               \
         ? (l) / ((s) / 2) * (s) + (l) % ((s) / 2)                             \
         : (L) + ((l) / ((s) / 2) - (L) / (s)) * (s) + (l) % ((s) / 2))
/* (indices are wrapped into [0, 2L): rounds for groups wider than the
 * vector are compiled but never run, and Clang checks their indices) */
#define FE_WRAP(i, L) ((((i) % (2 * (L))) + 2 * (L)) % (2 * (L)))
#define FE_HS_LO(l, s, L) FE_WRAP(FE_HS_SRC(l, s, L), L)
#define FE_HS_HI(l, s, L) FE_WRAP(FE_HS_SRC(l, s, L) + (s) / 2, L)
#define FE_LANES2(f, s, L) f(0, s, L), f(1, s, L)
#define FE_LANES4(f, s, L) FE_LANES2(f, s, L), f(2, s, L), f(3, s, L)
#define FE_LANES8(f, s, L)                                                     \
    FE_LANES4(f, s, L), f(4, s, L), f(5, s, L), f(6, s, L), f(7, s, L)
#define FE_LANES16(f, s, L)                                                    \
    FE_LANES8(f, s, L), f(8, s, L), f(9, s, L), f(10, s, L), f(11, s, L),      \
    f(12, s, L), f(13, s, L), f(14, s, L), f(15, s, L)
#if FE_VBYTES == 64
#define FE_LANES_D FE_LANES8
#define FE_LANES_F FE_LANES16
#elif FE_VBYTES == 32
#define FE_LANES_D FE_LANES4
#define FE_LANES_F FE_LANES8
#else
#define FE_LANES_D FE_LANES2
#define FE_LANES_F FE_LANES4
#endif

/* A two-source shuffle with constant lane indices F(l, s, L), l < L:
 * __builtin_shufflevector (Clang, GCC 12+) or GCC's __builtin_shuffle. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define FE_SHUFFLE(a, b, M, LANES, F, s, L)                                    \
    __builtin_shufflevector(a, b, LANES(F, s, L))
#else
#define FE_SHUFFLE(a, b, M, LANES, F, s, L)                                    \
    __builtin_shuffle(a, b, (M){LANES(F, s, L)})
#endif

/* one round of merges for groups of s lanes (a no-op when s > L) */
#define FE_HS_ROUND(V, M, LANES, L, s, v, m)                                   \
    if ((s) <= (L)) {                                                          \
        for (int i = 0; i < (m) / 2; i++) {                                    \
            V a = (v)[2 * i], b = (v)[2 * i + 1];                              \
            (v)[i] = FE_SHUFFLE(a, b, M, LANES, FE_HS_LO, s, L)                \
                     + FE_SHUFFLE(a, b, M, LANES, FE_HS_HI, s, L);             \
        }                                                                      \
        (m) /= 2;                                                              \
    }

#define FE_DEFINE_HSUM(NAME, T, V, M, LANES)                                   \
static inline void NAME(V *v, int n, T *out)                                   \
{                                                                              \
    enum { L = (int)(sizeof(V) / sizeof(T)) };                                 \
    int m = n;                                                                 \
    FE_HS_ROUND(V, M, LANES, L, 16, v, m)                                      \
    FE_HS_ROUND(V, M, LANES, L, 8, v, m)                                       \
    FE_HS_ROUND(V, M, LANES, L, 4, v, m)                                       \
    FE_HS_ROUND(V, M, LANES, L, 2, v, m)                                       \
    for (int i = 0; i < m; i++)                                                \
        for (int l = 0; l < L; l++)                                            \
            out[i * L + l] = v[i][l];                                          \
}

typedef long long fe_md __attribute__((vector_size(FE_VBYTES)));
typedef int fe_mf __attribute__((vector_size(FE_VBYTES)));
FE_DEFINE_HSUM(fe_hsum_d, double, fe_vd, fe_md, FE_LANES_D)
FE_DEFINE_HSUM(fe_hsum_f, float, fe_vf, fe_mf, FE_LANES_F)

/* xt[j * ld + i] = x[i * D + j] for i < n, j < D: rows to feature-major.
 * Element by element this is a large share of a pass with many features.
 * Blocks of L rows x L features are loaded as L row vectors and transposed in
 * registers by log2 L rounds of butterflies: in the round for distance s,
 * rows r and r + s (r / s even) exchange their odd blocks of s lanes with
 * the other's even ones. What is left over (rows past the last whole
 * block, features past the last multiple of L) is copied one by one. */
#define FE_TR_LO(l, s, L)                                                      \
    FE_WRAP(((l) / (s)) % 2 == 0 ? (l) : (l) - (s) + (L), L)
#define FE_TR_HI(l, s, L)                                                      \
    FE_WRAP(((l) / (s)) % 2 == 0 ? (l) + (s) : (l) + (L), L)
#define FE_TR_ROUND(V, M, LANES, L, s, v)                                      \
    if ((s) < (L)) {                                                           \
        for (int r = 0; r < (L); r++)                                          \
            if ((r / (s)) % 2 == 0) {                                          \
                V a = (v)[r], b = (v)[r + (s)];                                \
                (v)[r] = FE_SHUFFLE(a, b, M, LANES, FE_TR_LO, s, L);           \
                (v)[r + (s)] = FE_SHUFFLE(a, b, M, LANES, FE_TR_HI, s, L);     \
            }                                                                  \
    }

#define FE_DEFINE_TRANSPOSE(NAME, T, V, M, LANES)                              \
static inline void NAME(const T *x, ptrdiff_t n, ptrdiff_t D, T *xt,           \
                        ptrdiff_t ld)                                          \
{                                                                              \
    enum { L = (int)(sizeof(V) / sizeof(T)) };                                 \
    ptrdiff_t nb = n / L * L, db = D / L * L;                                  \
    for (ptrdiff_t i0 = 0; i0 < nb; i0 += L) {                                 \
        for (ptrdiff_t j0 = 0; j0 < db; j0 += L) {                             \
            V v[L];                                                            \
            for (int r = 0; r < L; r++)                                        \
                v[r] = *(const V *)(x + (i0 + r) * D + j0);                    \
            FE_TR_ROUND(V, M, LANES, L, 8, v)                                  \
            FE_TR_ROUND(V, M, LANES, L, 4, v)                                  \
            FE_TR_ROUND(V, M, LANES, L, 2, v)                                  \
            FE_TR_ROUND(V, M, LANES, L, 1, v)                                  \
            for (int c = 0; c < L; c++)                                        \
                *(V *)(xt + (j0 + c) * ld + i0) = v[c];                        \
        }                                                                      \
        for (ptrdiff_t i = i0; i < i0 + L; i++)                                \
            for (ptrdiff_t j = db; j < D; j++)                                 \
                xt[j * ld + i] = x[i * D + j];                                 \
    }                                                                          \
    for (ptrdiff_t i = nb; i < n; i++)                                         \
        for (ptrdiff_t j = 0; j < D; j++)                                      \
            xt[j * ld + i] = x[i * D + j];                                     \
}

FE_DEFINE_TRANSPOSE(fe_transpose_d, double, fe_vd, fe_md, FE_LANES_D)
FE_DEFINE_TRANSPOSE(fe_transpose_f, float, fe_vf, fe_mf, FE_LANES_F)

/* S[a][b] = sum_n w_a[n] (x_b[n] - c_b) for a 4 x 4 block: w_a = w + a * ld,
 * x_b = x + b * ld, the differences formed as x is loaded (SHIFT 1), or
 * S[a][b] = sum_n w_a[n] x_b[n] when the caller has them already (SHIFT 0,
 * c unused: the tied scatter of the differences with themselves); as
 * FE_GRAM_ROWS rows of the block at a time (4 x 4 = 16 vector accumulators
 * with AVX-512's 32 registers, 2 x 4 otherwise); each loaded vector is
 * used 4 (or 2) times from its register. */
#define FE_DEFINE_GRAM4(NAME, T, V, HSUM, SHIFT)                               \
static inline void NAME(const T *w, const T *x, const T *c, ptrdiff_t ld,      \
                        ptrdiff_t P, T *out)                                   \
{                                                                              \
    enum { L = (int)(sizeof(V) / sizeof(T)), R = FE_GRAM_ROWS };               \
    for (int a0 = 0; a0 < 4; a0 += R) {                                        \
        V acc[R][4];                                                           \
        for (int a = 0; a < R; a++)                                            \
            for (int b = 0; b < 4; b++)                                        \
                acc[a][b] = (V){0};                                            \
        for (ptrdiff_t n = 0; n < P; n += L) {                                 \
            V wv[R], e[4];                                                     \
            for (int a = 0; a < R; a++) {                                      \
                wv[a] = *(const V *)(w + (a0 + a) * ld + n);                   \
                FE_IN_REGISTER(wv[a]);                                         \
            }                                                                  \
            for (int b = 0; b < 4; b++) {                                      \
                e[b] = *(const V *)(x + b * ld + n);                           \
                if (SHIFT)                                                     \
                    e[b] -= c[b];                                              \
                FE_IN_REGISTER(e[b]);                                          \
            }                                                                  \
            for (int a = 0; a < R; a++)                                        \
                for (int b = 0; b < 4; b++)                                    \
                    acc[a][b] += wv[a] * e[b];                                 \
        }                                                                      \
        HSUM(&acc[0][0], R * 4, out + a0 * 4);                                 \
    }                                                                          \
}

FE_DEFINE_GRAM4(fe_gram4_d, double, fe_vd, fe_hsum_d, 1)
FE_DEFINE_GRAM4(fe_gram4_f, float, fe_vf, fe_hsum_f, 1)
FE_DEFINE_GRAM4(fe_gram4_plain_d, double, fe_vd, fe_hsum_d, 0)
FE_DEFINE_GRAM4(fe_gram4_plain_f, float, fe_vf, fe_hsum_f, 0)

/* w[n] = r[n] (x[n] - c) for n < P, returning the sum of w. The sum runs
 * in A independent vector chains: with one, every vector waits for the
 * previous add (a visible share of the pass on AVX2). A L divides 32, so that P, a multiple of 32, is whole rounds. */
#define FE_DEFINE_WDIFF(NAME, T, V)                                            \
static inline T NAME(const T *r, const T *x, T c, ptrdiff_t P, T *w)           \
{                                                                              \
    enum { L = (int)(sizeof(V) / sizeof(T)), A = 32 / L < 4 ? 32 / L : 4 };    \
    V acc[A];                                                                  \
    for (int a = 0; a < A; a++)                                                \
        acc[a] = (V){0};                                                       \
    for (ptrdiff_t n = 0; n < P; n += A * L)                                   \
        for (int a = 0; a < A; a++) {                                          \
            V v = *(const V *)(r + n + a * L) * (*(const V *)(x + n + a * L) - c); \
            *(V *)(w + n + a * L) = v;                                         \
            acc[a] += v;                                                       \
        }                                                                      \
    for (int a = 1; a < A; a++)                                                \
        acc[0] += acc[a];                                                      \
    T total = 0;                                                               \
    for (int l = 0; l < L; l++)                                                \
        total += acc[0][l];                                                    \
    return total;                                                              \
}

FE_DEFINE_WDIFF(fe_wdiff_d, double, fe_vd)
FE_DEFINE_WDIFF(fe_wdiff_f, float, fe_vf)

/* q[n] = |y_n|^2 with y_j = sum_{i <= j} (x_i[n] - mu_i) U[i * ldu + j], the
 * differences formed as x is loaded. U is upper triangular, row-major with
 * row stride ldu >= D rounded up to a multiple of C, and holds zeros below
 * the diagonal and in the padding columns, so no loop needs a bound check.
 * Tiles of TILE rows (dividing 32); C output coordinates at a time: C x
 * (TILE / lanes) vector accumulators, each tile vector of x loaded once per
 * row of U and used C times. */
#define FE_DEFINE_TRI(NAME, T, V, TILE, C)                                     \
static inline void NAME(const T *xt, ptrdiff_t P, ptrdiff_t ld, ptrdiff_t D,   \
                        const T *mu, const T *U, ptrdiff_t ldu, T *q)          \
{                                                                              \
    enum { L = (int)(sizeof(V) / sizeof(T)), TV = TILE / L };                  \
    for (ptrdiff_t n0 = 0; n0 < P; n0 += TILE) {                               \
        V qt[TV];                                                              \
        for (int t = 0; t < TV; t++)                                           \
            qt[t] = (V){0};                                                    \
        for (ptrdiff_t j = 0; j < D; j += C) {                                 \
            V acc[C][TV];                                                      \
            for (int c = 0; c < C; c++)                                        \
                for (int t = 0; t < TV; t++)                                   \
                    acc[c][t] = (V){0};                                        \
            /* rows i <= j of U reach all C coordinates; the pointers step \
             * by rows (with -fwrapv, index products i * ld are not         \
             * strength-reduced and cost registers) */                      \
            const T *mi = mu, *mend = mu + j + 1;                              \
            const T *xi = xt + n0, *ui = U + j;                                \
            for (; mi < mend; mi++, xi += ld, ui += ldu) {                     \
                V x[TV];                                                       \
                for (int t = 0; t < TV; t++) {                                 \
                    x[t] = *(const V *)(xi + t * L) - *mi;                     \
                    FE_IN_REGISTER(x[t]);                                      \
                }                                                              \
                for (int c = 0; c < C; c++) {                                  \
                    V u = (V){0} + ui[c];                                      \
                    FE_PIN_BROADCAST(u);                                       \
                    for (int t = 0; t < TV; t++)                               \
                        acc[c][t] += x[t] * u;                                 \
                }                                                              \
            }                                                                  \
            /* row j + s reaches coordinates j + s .. j + C - 1 only: the   \
             * zero triangle below the block's diagonal is skipped */       \
            _Pragma("GCC unroll 16")                                           \
            for (int s = 1; s < C; s++) {                                      \
                if (j + s >= D)                                                \
                    break;                                                     \
                V x[TV];                                                       \
                for (int t = 0; t < TV; t++) {                                 \
                    x[t] = *(const V *)(xi + t * L) - *mi;                     \
                    FE_IN_REGISTER(x[t]);                                      \
                }                                                              \
                for (int c = s; c < C; c++) {                                  \
                    V u = (V){0} + ui[c];                                      \
                    FE_PIN_BROADCAST(u);                                       \
                    for (int t = 0; t < TV; t++)                               \
                        acc[c][t] += x[t] * u;                                 \
                }                                                              \
                mi++, xi += ld, ui += ldu;                                     \
            }                                                                  \
            for (int c = 0; c < C; c++)                                        \
                for (int t = 0; t < TV; t++)                                   \
                    qt[t] += acc[c][t] * acc[c][t];                            \
        }                                                                      \
        for (int t = 0; t < TV; t++)                                           \
            *(V *)(q + n0 + t * L) = qt[t];                                    \
    }                                                                          \
}

FE_DEFINE_TRI(fe_tri_sqnorm_d, double, fe_vd, FE_TRI_TILE_D, FE_TRI_COORDS_D)
FE_DEFINE_TRI(fe_tri_sqnorm_f, float, fe_vf, FE_TRI_TILE_F, FE_TRI_COORDS_F)
/* one or two features: a block of 4 (8) coordinates would be mostly the
 * zero padding of U */
FE_DEFINE_TRI(fe_tri_sqnorm2_d, double, fe_vd, FE_TRI_TILE_D, 2)
FE_DEFINE_TRI(fe_tri_sqnorm2_f, float, fe_vf, FE_TRI_TILE_F, 2)

/* Squared scaled distances of a chunk to C components at once:
 *   q_k[n] = sum_i (x_i[n] p_ki - c_ki p_ki)^2     (p != NULL: diag)
 *   q_k[n] = sum_i (x_i[n] - c_ki)^2               (p == NULL: spherical)
 * for k = k0 .. k0 + C - 1, q_k at q + k * ld; c and p are (K, D)
 * row-major. Each tile vector of x is loaded once per feature and used for
 * all C components. The diag form is one multiply-add for the scaled
 * difference and one for its square; x p - c p carries the rounding of x
 * and c scaled by p, the order of their own representation error. */
#define FE_DEFINE_DIAG(NAME, T, V, TILE, C)                                    \
static inline void NAME(const T *xt, ptrdiff_t P, ptrdiff_t ld, ptrdiff_t D,   \
                        const T *c, const T *p, ptrdiff_t k0, T *q)            \
{                                                                              \
    enum { L = (int)(sizeof(V) / sizeof(T)), TV = TILE / L };                  \
    for (ptrdiff_t n0 = 0; n0 < P; n0 += TILE) {                               \
        V acc[C][TV];                                                          \
        for (int k = 0; k < C; k++)                                            \
            for (int t = 0; t < TV; t++)                                       \
                acc[k][t] = (V){0};                                            \
        for (ptrdiff_t i = 0; i < D; i++) {                                    \
            const T *xi = xt + i * ld + n0;                                    \
            V x[TV];                                                           \
            for (int t = 0; t < TV; t++) {                                     \
                x[t] = *(const V *)(xi + t * L);                               \
                FE_IN_REGISTER(x[t]);                                          \
            }                                                                  \
            for (int k = 0; k < C; k++) {                                      \
                T ck = c[(k0 + k) * D + i];                                    \
                if (p != NULL) {                                               \
                    T pk = p[(k0 + k) * D + i], cp = ck * pk;                  \
                    for (int t = 0; t < TV; t++) {                             \
                        V u = x[t] * pk - cp;                                  \
                        acc[k][t] += u * u;                                    \
                    }                                                          \
                } else {                                                       \
                    for (int t = 0; t < TV; t++) {                             \
                        V u = x[t] - ck;                                       \
                        acc[k][t] += u * u;                                    \
                    }                                                          \
                }                                                              \
            }                                                                  \
        }                                                                      \
        for (int k = 0; k < C; k++)                                            \
            for (int t = 0; t < TV; t++)                                       \
                *(V *)(q + (k0 + k) * ld + n0 + t * L) = acc[k][t];            \
    }                                                                          \
}

/* rows per tile: four vectors, at most 32 (so that P, a multiple of 32, is
 * whole tiles) */
#if FE_VBYTES == 64
#define FE_DIAG_COMPS 4    /* 4 components x 4 vectors = 16 accumulators */
#else
#define FE_DIAG_COMPS 2    /* 2 x 4 = 8 of the 16 registers */
#endif
#define FE_DIAG_TILE_D (4 * FE_VBYTES / 8 < 32 ? 4 * FE_VBYTES / 8 : 32)
#define FE_DIAG_TILE_F (4 * FE_VBYTES / 4 < 32 ? 4 * FE_VBYTES / 4 : 32)
FE_DEFINE_DIAG(fe_diag_block_d, double, fe_vd, FE_DIAG_TILE_D, FE_DIAG_COMPS)
FE_DEFINE_DIAG(fe_diag_block_f, float, fe_vf, FE_DIAG_TILE_F, FE_DIAG_COMPS)
FE_DEFINE_DIAG(fe_diag_one_d, double, fe_vd, FE_DIAG_TILE_D, 1)
FE_DEFINE_DIAG(fe_diag_one_f, float, fe_vf, FE_DIAG_TILE_F, 1)

/* all K components: blocks of FE_DIAG_COMPS, then the rest one at a time */
#define FE_DEFINE_DIAG_ALL(NAME, T, BLOCK, ONE)                                \
static inline void NAME(const T *xt, ptrdiff_t P, ptrdiff_t ld, ptrdiff_t D,   \
                        ptrdiff_t K, const T *c, const T *p, T *q)             \
{                                                                              \
    ptrdiff_t k = 0;                                                           \
    for (; k + FE_DIAG_COMPS <= K; k += FE_DIAG_COMPS)                         \
        BLOCK(xt, P, ld, D, c, p, k, q);                                       \
    for (; k < K; k++)                                                         \
        ONE(xt, P, ld, D, c, p, k, q);                                         \
}

FE_DEFINE_DIAG_ALL(fe_sqdist_d, double, fe_diag_block_d, fe_diag_one_d)
FE_DEFINE_DIAG_ALL(fe_sqdist_f, float, fe_diag_block_f, fe_diag_one_f)

/* Flush denormal results to zero and read denormal inputs as zero in this
 * thread (x86 MXCSR FTZ and DAZ), returning the previous state. */
#if defined(__SSE__)
#include <xmmintrin.h>
static inline unsigned int fe_flush_denormals(void)
{
    unsigned int old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);
    return old;
}
static inline void fe_restore_fp_state(unsigned int old) { _mm_setcsr(old); }
#else
static inline unsigned int fe_flush_denormals(void) { return 0; }
static inline void fe_restore_fp_state(unsigned int old) { (void)old; }
#endif

#endif
