/*
 * thrd_shim: an LD_PRELOAD library for ThreadSanitizer runs
 * (-DMODELGW_TSAN=ON, docs/development.md). librdkafka makes its threads,
 * mutexes and condition variables with C11 <threads.h>, which glibc
 * implements on internal pthread entry points that the TSan runtime of
 * Debian's gcc 12 and clang 14 does not intercept: its threads then crash
 * in the TSan allocator, and its locking is invisible (every hand-over
 * looks like a race). These definitions take precedence over glibc's and
 * route each call through the intercepted pthread call (glibc gives the
 * C11 types the pthread layout). Test tooling only: never in a release.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

struct tramp {
    thrd_start_t fn;
    void *arg;
};

static void *run(void *p)
{
    struct tramp t = *(struct tramp *)p;
    free(p);
    return (void *)(intptr_t)t.fn(t.arg);
}

static int result(int r)
{
    return r == 0 ? thrd_success : r == ETIMEDOUT ? thrd_timedout : thrd_error;
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
    struct tramp *t = malloc(sizeof *t);
    if (t == NULL)
        return thrd_nomem;
    t->fn = func;
    t->arg = arg;
    int r = pthread_create((pthread_t *)thr, NULL, run, t);
    if (r != 0)
        free(t);
    return result(r);
}

int thrd_join(thrd_t thr, int *res)
{
    void *r = NULL;
    if (pthread_join((pthread_t)thr, &r) != 0)
        return thrd_error;
    if (res != NULL)
        *res = (int)(intptr_t)r;
    return thrd_success;
}

int thrd_detach(thrd_t thr)
{
    return result(pthread_detach((pthread_t)thr));
}

int mtx_init(mtx_t *m, int type)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (type & mtx_recursive)
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    int r = pthread_mutex_init((pthread_mutex_t *)m, &a);
    pthread_mutexattr_destroy(&a);
    return result(r);
}

int mtx_lock(mtx_t *m)
{
    return result(pthread_mutex_lock((pthread_mutex_t *)m));
}

int mtx_unlock(mtx_t *m)
{
    return result(pthread_mutex_unlock((pthread_mutex_t *)m));
}

int mtx_trylock(mtx_t *m)
{
    return pthread_mutex_trylock((pthread_mutex_t *)m) == 0 ? thrd_success : thrd_busy;
}

void mtx_destroy(mtx_t *m)
{
    pthread_mutex_destroy((pthread_mutex_t *)m);
}

int cnd_init(cnd_t *c)
{
    return result(pthread_cond_init((pthread_cond_t *)c, NULL));
}

int cnd_signal(cnd_t *c)
{
    return result(pthread_cond_signal((pthread_cond_t *)c));
}

int cnd_broadcast(cnd_t *c)
{
    return result(pthread_cond_broadcast((pthread_cond_t *)c));
}

int cnd_wait(cnd_t *c, mtx_t *m)
{
    return result(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int cnd_timedwait(cnd_t *c, mtx_t *m, const struct timespec *ts)
{
    return result(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts));
}

void cnd_destroy(cnd_t *c)
{
    pthread_cond_destroy((pthread_cond_t *)c);
}
