/* SPDX-License-Identifier: MIT */
/* test_local_runplan.c -- the replayed-plan allocator under ISNet's
 * activations (backends/local/runplan.h), without ONNX Runtime: a scripted
 * "run" of allocations and frees is recorded, planned and replayed; a run
 * that strays from the record (another size, frees out of order, a block
 * kept past the run) falls back to malloc without handing out memory that
 * is still in use, and is recorded again. Every block is filled with its
 * own byte and checked before it is freed, so an overlap between two live
 * blocks fails the test. */
#include "testutil.h"
#include "backends/local/runplan.h"
#include "core/alloc.h"

#include <stdint.h>
#include <string.h>

#define MB ((size_t)1 << 20)

/* One step of a scripted run: allocate slot with size, or free slot. */
struct step {
    int slot;
    size_t size;   /* 0: free */
};

/* A small encoder/decoder: a 4 MB map kept to the end, a pyramid of
 * smaller maps each freed after its consumer, and a 2x concat at the end.
 * At most 4 + 2 + 2 + 4 + 8 = 20 MB is alive at once (step 10). */
static const struct step unet[] = {
    {0, 4 * MB},            /* stem, kept for the skip */
    {1, 2 * MB},            /* down 1 */
    {2, 1 * MB},            /* down 2 */
    {3, 512 * 1024},        /* bottom */
    {2, 0},
    {4, 1 * MB},            /* up 2 */
    {3, 0},
    {5, 2 * MB},            /* up 1 */
    {4, 0},
    {6, 4 * MB},            /* up 0 */
    {7, 8 * MB},            /* concat(stem, up 0) */
    {0, 0},
    {6, 0},
    {5, 0},
    {1, 0},
    {8, 1 * MB},            /* head */
    {7, 0},
    {8, 0},
};
#define UNET_PEAK (20 * MB)

struct slots {
    unsigned char *p[16];
    size_t size[16];
};

static void
fill(struct slots *s, int slot, size_t size, unsigned char *p)
{
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    memset(p, 0x10 + slot, size);
    s->p[slot] = p;
    s->size[slot] = size;
}

static void
check_and_free(struct runplan *rp, struct slots *s, int slot)
{
    unsigned char *p = s->p[slot];
    for (size_t i = 0; i < s->size[slot]; i += 4093)
        assert_int_equal(p[i], 0x10 + slot);
    assert_int_equal(p[s->size[slot] - 1], 0x10 + slot);
    runplan_free(rp, p);
    s->p[slot] = NULL;
}

/* Runs script; change_at >= 0 allocates that step's block 64 bytes larger. */
static void
run(struct runplan *rp, const struct step *script, size_t n, int change_at)
{
    struct slots s = {0};
    runplan_begin(rp);
    for (size_t i = 0; i < n; i++) {
        const struct step *st = &script[i];
        if (st->size) {
            size_t size = st->size + ((int)i == change_at ? 64 : 0);
            fill(&s, st->slot, size, runplan_alloc(rp, size));
        } else {
            check_and_free(rp, &s, st->slot);
        }
    }
    runplan_end(rp);
}

#define N_UNET (sizeof unet / sizeof unet[0])

static void
test_record_then_replay(void **state)
{
    (void)state;
    struct runplan *rp = runplan_new(256 * MB);
    assert_non_null(rp);
    struct runplan_stats st;
    run(rp, unet, N_UNET, -1);
    runplan_get_stats(rp, &st);
    assert_true(st.replaying);
    assert_int_equal(st.recorded, 9);
    /* Greedy by size lands on the peak of live bytes here. */
    assert_int_equal(st.plan_bytes, UNET_PEAK);
    assert_true(st.touched <= UNET_PEAK + 4096);
    assert_int_equal(st.outside, 0);
    for (int i = 0; i < 3; i++)
        run(rp, unet, N_UNET, -1);
    runplan_get_stats(rp, &st);
    assert_int_equal(st.replays, 3);
    assert_int_equal(st.divergences, 0);
    assert_int_equal(st.outside, 0);
    assert_true(st.touched <= UNET_PEAK + 4096);
    runplan_destroy(rp);
}

/* A run whose fifth allocation is another size: from there on its blocks
 * come from malloc (the ones before stay where the plan put them), and the
 * next run is recorded afresh and replayed after. */
static void
test_divergent_size(void **state)
{
    (void)state;
    struct runplan *rp = runplan_new(256 * MB);
    assert_non_null(rp);
    struct runplan_stats st;
    run(rp, unet, N_UNET, -1);
    run(rp, unet, N_UNET, 5);
    runplan_get_stats(rp, &st);
    assert_false(st.replaying);
    assert_int_equal(st.divergences, 1);
    assert_int_equal(st.outside, 5);   /* steps 5, 7, 9, 10, 15 */
    run(rp, unet, N_UNET, 5);          /* recorded: the new shape of the run */
    runplan_get_stats(rp, &st);
    assert_true(st.replaying);
    run(rp, unet, N_UNET, 5);
    runplan_get_stats(rp, &st);
    assert_int_equal(st.replays, 1);
    assert_int_equal(st.outside, 5);
    runplan_destroy(rp);
}

/* The same number of frees before the head, but of other blocks: the
 * concat is freed early and the stem late. The plan put the head where the
 * stem was (the stem was dead by then in the recorded run), so following it
 * would overwrite the live stem; the replay must stop at the first free
 * that is not the recorded one. */
static const struct step stem_late[] = {
    {0, 4 * MB}, {1, 2 * MB}, {2, 1 * MB}, {3, 512 * 1024}, {2, 0}, {4, 1 * MB}, {3, 0},
    {5, 2 * MB}, {4, 0}, {6, 4 * MB}, {7, 8 * MB},
    {7, 0},                 /* was {0, 0} */
    {6, 0}, {5, 0}, {1, 0},
    {8, 1 * MB},
    {0, 0},                 /* was {7, 0} */
    {8, 0},
};

static void
test_divergent_frees(void **state)
{
    (void)state;
    assert_int_equal(sizeof stem_late, sizeof unet);
    struct runplan *rp = runplan_new(256 * MB);
    assert_non_null(rp);
    struct runplan_stats st;
    run(rp, unet, N_UNET, -1);
    run(rp, stem_late, N_UNET, -1);   /* checks every block's bytes: no overlap */
    runplan_get_stats(rp, &st);
    assert_int_equal(st.divergences, 1);
    assert_int_equal(st.outside, 1);   /* the head did not come from the plan */
    assert_false(st.replaying);
    runplan_destroy(rp);
}

/* Blocks asked for between runs come from malloc; a block kept past its
 * run stops the next run from being recorded, and its bytes survive. */
static void
test_outside_runs(void **state)
{
    (void)state;
    struct runplan *rp = runplan_new(64 * MB);
    assert_non_null(rp);
    struct runplan_stats st;
    void *between = runplan_alloc(rp, 1000);
    assert_non_null(between);
    memset(between, 0xab, 1000);
    runplan_begin(rp);
    unsigned char *kept = runplan_alloc(rp, 3 * MB);
    memset(kept, 0xcd, 3 * MB);
    runplan_end(rp);
    runplan_get_stats(rp, &st);
    assert_false(st.replaying);
    run(rp, unet, N_UNET, -1);      /* starts with a block alive: not recorded */
    runplan_get_stats(rp, &st);
    assert_false(st.replaying);
    assert_int_equal(kept[0], 0xcd);
    assert_int_equal(kept[3 * MB - 1], 0xcd);
    runplan_free(rp, kept);
    runplan_free(rp, between);
    run(rp, unet, N_UNET, -1);
    runplan_get_stats(rp, &st);
    assert_true(st.replaying);
    runplan_destroy(rp);
}

/* A region too small for the run: the blocks that do not fit come from
 * malloc, and no plan is made from an incomplete record. */
static void
test_region_too_small(void **state)
{
    (void)state;
    struct runplan *rp = runplan_new(8 * MB);
    assert_non_null(rp);
    struct runplan_stats st;
    run(rp, unet, N_UNET, -1);
    runplan_get_stats(rp, &st);
    assert_false(st.replaying);
    assert_true(st.outside > 0);
    run(rp, unet, N_UNET, -1);
    runplan_destroy(rp);
}

/* runplan_forget: the next run is recorded, not replayed. */
static void
test_forget(void **state)
{
    (void)state;
    struct runplan *rp = runplan_new(256 * MB);
    assert_non_null(rp);
    struct runplan_stats st;
    run(rp, unet, N_UNET, -1);
    runplan_forget(rp);
    runplan_get_stats(rp, &st);
    assert_false(st.replaying);
    run(rp, unet, N_UNET, 3);
    runplan_get_stats(rp, &st);
    assert_true(st.replaying);
    assert_int_equal(st.divergences, 0);
    runplan_destroy(rp);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_then_replay),
        cmocka_unit_test(test_divergent_size),
        cmocka_unit_test(test_divergent_frees),
        cmocka_unit_test(test_outside_runs),
        cmocka_unit_test(test_region_too_small),
        cmocka_unit_test(test_forget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
