/* test_uuid: gw_uuid4's format, uniqueness across many ids, threads, a
 * reseeding and a forked child. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/uuid.h"

enum { N_IDS = 200000, N_THREAD_IDS = 20000, N_THREADS = 4 };

static void assert_v4(const char *u)
{
    assert_int_equal(strlen(u), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(u[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", u[i]));
    }
    assert_int_equal(u[14], '4');
    assert_non_null(strchr("89ab", u[19]));
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 37);
}

/* Sorted, no two equal. */
static void assert_unique(char (*ids)[37], size_t n)
{
    qsort(ids, n, 37, cmp_id);
    for (size_t i = 1; i < n; i++)
        assert_true(memcmp(ids[i - 1], ids[i], 37) != 0);
}

/* More ids than one seed serves (65,536): the reseeding keeps them unique,
 * and the 122 random bits are used (each hex digit takes all 16 values). */
static void test_format_and_unique(void **state)
{
    (void)state;
    char(*ids)[37] = malloc((size_t)N_IDS * 37);
    assert_non_null(ids);
    unsigned seen[36] = {0};
    for (size_t i = 0; i < N_IDS; i++) {
        gw_uuid4(ids[i]);
        assert_v4(ids[i]);
        for (int k = 0; k < 36; k++)
            if (ids[i][k] != '-')
                seen[k] |= 1u << (strchr("0123456789abcdef", ids[i][k]) - "0123456789abcdef");
    }
    for (int k = 0; k < 36; k++)
        if (k != 8 && k != 13 && k != 14 && k != 18 && k != 19 && k != 23)
            assert_int_equal(seen[k], 0xffff);
    assert_unique(ids, N_IDS);
    free(ids);
}

static void *thread_ids(void *arg)
{
    char(*ids)[37] = arg;
    for (size_t i = 0; i < N_THREAD_IDS; i++)
        gw_uuid4(ids[i]);
    return NULL;
}

/* Each thread has its own generator, seeded apart: no id repeats. */
static void test_threads_unique(void **state)
{
    (void)state;
    char(*ids)[37] = malloc((size_t)N_THREADS * N_THREAD_IDS * 37);
    assert_non_null(ids);
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_ids, ids + (size_t)i * N_THREAD_IDS),
                         0);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(t[i], NULL);
    assert_unique(ids, (size_t)N_THREADS * N_THREAD_IDS);
    free(ids);
}

/* A forked child draws other ids than its parent does next. */
static void test_fork_differs(void **state)
{
    (void)state;
    char warm[37], parent[37], child[37] = "";
    gw_uuid4(warm); /* the parent's generator is seeded before the fork */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char u[37];
        gw_uuid4(u);
        ssize_t n = write(fds[1], u, sizeof u);
        _exit(n == (ssize_t)sizeof u ? 0 : 1);
    }
    gw_uuid4(parent);
    assert_int_equal(read(fds[0], child, sizeof child), (ssize_t)sizeof child);
    int st = 0;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(fds[0]);
    close(fds[1]);
    assert_v4(child);
    assert_string_not_equal(parent, child);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_unique),
        cmocka_unit_test(test_threads_unique),
        cmocka_unit_test(test_fork_differs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
