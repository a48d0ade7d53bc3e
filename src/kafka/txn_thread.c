/* txn_thread: a transactional producer's blocking calls on a thread of
 * their own; see txn_thread.h. */
#include "kafka/txn_thread.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

enum { GW_TXN_WAIT_SLICE_MS = 5 }; /* the loop's wait serves reports this often */

struct gw_txn_thread {
    uv_loop_t *loop;
    gw_producer *prod;
    gw_txn_done_fn done_fn;
    void *ud;
    uv_async_t async;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* work for the thread; an outcome for a waiting loop */
    /* Under mu. has_work: submitted, not yet run; done: run, outcome not yet
     * taken by the loop; quit: the thread ends; closed: async closed. */
    bool has_work, done, quit, closed;
    /* The submission: the thread's from has_work to done, else the loop's. */
    bool commit;
    rd_kafka_topic_partition_list_t *offsets;
    rd_kafka_consumer_group_metadata_t *cgmd;
    _Atomic int64_t deadline_ns;
    gw_txn_result result;
    bool busy; /* loop only: submitted, outcome not yet applied */
};

static void *thread_main(void *arg)
{
    gw_txn_thread *t = arg;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (!t->has_work && !t->quit)
            pthread_cond_wait(&t->cv, &t->mu);
        if (!t->has_work)
            break;
        pthread_mutex_unlock(&t->mu);
        gw_txn_result r = gw_producer_txn_calls(t->prod, t->offsets, t->cgmd, t->commit,
                                                &t->deadline_ns, GW_PRODUCER_TXN_CALL_MS);
        pthread_mutex_lock(&t->mu);
        t->result = r;
        t->has_work = false;
        t->done = true;
        if (!t->closed)
            uv_async_send(&t->async);
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* Apply a finished end on the loop: the callback, then the submission freed. */
static bool take_outcome(gw_txn_thread *t)
{
    pthread_mutex_lock(&t->mu);
    bool done = t->done;
    t->done = false;
    pthread_mutex_unlock(&t->mu);
    if (!done)
        return false;
    t->busy = false;
    if (t->done_fn != NULL)
        t->done_fn(t->ud, t->result, t->offsets);
    if (t->offsets != NULL)
        rd_kafka_topic_partition_list_destroy(t->offsets);
    if (t->cgmd != NULL)
        rd_kafka_consumer_group_metadata_destroy(t->cgmd);
    t->offsets = NULL;
    t->cgmd = NULL;
    return true;
}

static void on_async(uv_async_t *a)
{
    (void)take_outcome(a->data);
}

/* The close callback of a thread that never started (gw_txn_thread_new failed). */
static void free_unstarted(uv_handle_t *h)
{
    gw_txn_thread *t = h->data;
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

gw_err gw_txn_thread_new(uv_loop_t *loop, gw_producer *prod, gw_txn_done_fn done, void *ud,
                         gw_txn_thread **out)
{
    gw_txn_thread *t = calloc(1, sizeof *t);
    if (t == NULL)
        return GW_E_NOMEM;
    t->loop = loop;
    t->prod = prod;
    t->done_fn = done;
    t->ud = ud;
    atomic_init(&t->deadline_ns, 0);
    gw_err err = GW_E_IO;
    if (pthread_mutex_init(&t->mu, NULL) != 0)
        goto fail_mu;
    if (pthread_cond_init(&t->cv, NULL) != 0)
        goto fail_cv;
    if (uv_async_init(loop, &t->async, on_async) != 0)
        goto fail_async;
    t->async.data = t;
    if (pthread_create(&t->th, NULL, thread_main, t) != 0)
        goto fail_thread;
    *out = t;
    return GW_OK;
fail_thread:
    /* the handle is the loop's now: t is freed once the loop has closed it */
    t->closed = true;
    uv_close((uv_handle_t *)&t->async, free_unstarted);
    return err;
fail_async:
    pthread_cond_destroy(&t->cv);
fail_cv:
    pthread_mutex_destroy(&t->mu);
fail_mu:
    free(t);
    return err;
}

bool gw_txn_thread_submit(gw_txn_thread *t, bool commit, rd_kafka_topic_partition_list_t *offsets,
                          rd_kafka_consumer_group_metadata_t *cgmd, int64_t deadline_ns)
{
    if (t->busy)
        return false;
    pthread_mutex_lock(&t->mu);
    t->commit = commit;
    t->offsets = offsets;
    t->cgmd = cgmd;
    atomic_store(&t->deadline_ns, deadline_ns);
    t->has_work = true;
    t->busy = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return true;
}

bool gw_txn_thread_busy(const gw_txn_thread *t)
{
    return t != NULL && t->busy;
}

void gw_txn_thread_hurry(gw_txn_thread *t, int64_t deadline_ns)
{
    int64_t cur = atomic_load(&t->deadline_ns);
    while (deadline_ns < cur && !atomic_compare_exchange_weak(&t->deadline_ns, &cur, deadline_ns))
        ;
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += (long)ms * 1000000L;
    ts->tv_sec += ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

bool gw_txn_thread_wait(gw_txn_thread *t, int timeout_ms)
{
    int64_t end_ns = gw_producer_mono_ns() + (int64_t)timeout_ms * 1000000;
    while (t->busy) {
        if (take_outcome(t))
            return true;
        if (gw_producer_mono_ns() >= end_ns)
            return false;
        pthread_mutex_lock(&t->mu);
        if (!t->done) {
            struct timespec ts;
            deadline_in(&ts, GW_TXN_WAIT_SLICE_MS);
            pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        }
        pthread_mutex_unlock(&t->mu);
        gw_producer_poll(t->prod); /* an abort waits for the purged messages' reports */
    }
    return true;
}

void gw_txn_thread_close(gw_txn_thread *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    bool was = t->closed;
    t->closed = true;
    pthread_mutex_unlock(&t->mu);
    if (!was)
        uv_close((uv_handle_t *)&t->async, NULL);
}

void gw_txn_thread_free(gw_txn_thread *t)
{
    if (t == NULL)
        return;
    gw_txn_thread_hurry(t, gw_producer_mono_ns());
    pthread_mutex_lock(&t->mu);
    t->quit = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->th, NULL);
    if (t->offsets != NULL)
        rd_kafka_topic_partition_list_destroy(t->offsets);
    if (t->cgmd != NULL)
        rd_kafka_consumer_group_metadata_destroy(t->cgmd);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
