/* SPDX-License-Identifier: MIT */
/* fma_peak.c -- this machine's fp32 FMA peak, measured, for the upscaler
 * benchmark to report GMAC/s against.
 *
 * The figure in issue #7 (216 GMAC/s) was read on one host; machines here
 * differ (a later one had one 512-bit FMA port per core and a busy
 * hypervisor), so a fraction of a quoted peak says little. This runs THREADS
 * threads at once, each a loop of 24 independent 16-lane FMA chains (enough
 * to cover the FMA latency on two ports), and prints the sum of their
 * rates: the ceiling any fp32 kernel on these cores can reach right now.
 * The AVX-512 loop is used where the CPU has it, else an AVX2 one.
 * Usage: fma_peak [THREADS] [SECONDS] */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 24

static double
now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct arg {
    double seconds;
    double gmacs;
    float sink;
    pthread_barrier_t *start;
};

__attribute__((target("avx512f,fma"))) static long
run512(long iters, float *sink)
{
    __m512 a[CHAINS];
    for (int i = 0; i < CHAINS; i++)
        a[i] = _mm512_set1_ps((float)i * 1e-3f);
    const __m512 w = _mm512_set1_ps(0.999f), v = _mm512_set1_ps(1e-4f);
    for (long k = 0; k < iters; k++) {
#pragma GCC unroll 24
        for (int i = 0; i < CHAINS; i++)
            a[i] = _mm512_fmadd_ps(a[i], w, v);
    }
    float s = 0;
    for (int i = 0; i < CHAINS; i++)
        s += _mm512_reduce_add_ps(a[i]);
    *sink = s;
    return iters * CHAINS * 16;
}

__attribute__((target("avx2,fma"))) static long
run256(long iters, float *sink)
{
    __m256 a[CHAINS / 2];
    for (int i = 0; i < CHAINS / 2; i++)
        a[i] = _mm256_set1_ps((float)i * 1e-3f);
    const __m256 w = _mm256_set1_ps(0.999f), v = _mm256_set1_ps(1e-4f);
    for (long k = 0; k < iters; k++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS / 2; i++)
            a[i] = _mm256_fmadd_ps(a[i], w, v);
    }
    float buf[8], s = 0;
    for (int i = 0; i < CHAINS / 2; i++) {
        _mm256_storeu_ps(buf, a[i]);
        for (int j = 0; j < 8; j++)
            s += buf[j];
    }
    *sink = s;
    return iters * (CHAINS / 2) * 8;
}

static void *
thread_main(void *p)
{
    struct arg *a = p;
    int wide = __builtin_cpu_supports("avx512f");
    pthread_barrier_wait(a->start);
    /* Batches of 1M iterations until the time is up: the clock is read
     * rarely enough not to count. */
    long macs = 0;
    double t0 = now_s(), t;
    do {
        macs += wide ? run512(1000000, &a->sink) : run256(1000000, &a->sink);
        t = now_s();
    } while (t - t0 < a->seconds);
    a->gmacs = (double)macs / (t - t0) / 1e9;
    return NULL;
}

int
main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    double seconds = argc > 2 ? atof(argv[2]) : 1.0;
    if (threads < 1 || threads > 64 || seconds <= 0) {
        fprintf(stderr, "usage: fma_peak [THREADS 1-64] [SECONDS > 0]\n");
        return 2;
    }
    if (!__builtin_cpu_supports("fma") || !__builtin_cpu_supports("avx2")) {
        fprintf(stderr, "fma_peak: this CPU has no AVX2 FMA\n");
        return 1;
    }
    pthread_t tid[64];
    struct arg args[64];
    pthread_barrier_t start;
    if (pthread_barrier_init(&start, NULL, (unsigned)threads) != 0) {
        fprintf(stderr, "fma_peak: cannot make a barrier\n");
        return 1;
    }
    for (int i = 0; i < threads; i++) {
        args[i] = (struct arg){.seconds = seconds, .start = &start};
        if (pthread_create(&tid[i], NULL, thread_main, &args[i]) != 0) {
            fprintf(stderr, "fma_peak: cannot start thread %d\n", i);
            return 1;
        }
    }
    double total = 0;
    for (int i = 0; i < threads; i++) {
        if (pthread_join(tid[i], NULL) != 0) {
            fprintf(stderr, "fma_peak: cannot join thread %d\n", i);
            return 1;
        }
        total += args[i].gmacs;
    }
    pthread_barrier_destroy(&start);
    printf("fma_peak threads=%d isa=%s gmacs=%.1f per_thread=%.1f\n", threads,
           __builtin_cpu_supports("avx512f") ? "avx512" : "avx2", total, total / threads);
    return 0;
}
