/* kq: librdkafka queue on a libuv loop through an io-event pipe; see kq.h. */
#include "loop/kq.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static void on_idle(uv_idle_t *h)
{
    gw_kq *q = h->data;
    bool more = q->serve(q->ud);
    if (q->open && !more) {
        uv_idle_stop(&q->idle);
        q->idle_active = false;
    }
}

static void arm(gw_kq *q, bool more)
{
    if (!q->open)
        return;
    if (more && !q->idle_active) {
        uv_idle_start(&q->idle, on_idle);
        q->idle_active = true;
    }
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    gw_kq *q = h->data;
    char drain[256];
    /* librdkafka writes one byte per wake-up until the queue is served, so
     * one read drains it (a second read would cost a syscall per wake-up to
     * learn EAGAIN); a full buffer means more: read on */
    while (read(q->fds[0], drain, sizeof drain) == (ssize_t)sizeof drain)
        ;
    arm(q, q->serve(q->ud));
}

gw_err gw_kq_init(gw_kq *q, uv_loop_t *loop, rd_kafka_queue_t *rkq, gw_kq_serve_fn serve, void *ud)
{
    q->rkq = rkq;
    q->serve = serve;
    q->ud = ud;
    q->idle_active = false;
    q->lazy = false;
    if (pipe2(q->fds, O_NONBLOCK | O_CLOEXEC) != 0)
        return GW_E_IO;
    if (uv_poll_init(loop, &q->poll, q->fds[0]) != 0)
        goto fail_pipe;
    uv_idle_init(loop, &q->idle);
    q->poll.data = q;
    q->idle.data = q;
    uv_poll_start(&q->poll, UV_READABLE, on_readable);
    q->open = true;
    rd_kafka_queue_io_event_enable(rkq, q->fds[1], "1", 1);
    /* Ops queued before the io event was enabled wrote nothing: serve once. */
    arm(q, true);
    return GW_OK;
fail_pipe:
    close(q->fds[0]);
    close(q->fds[1]);
    return GW_E_IO;
}

static void lazy_serve(gw_kq *q)
{
    if (q->open)
        arm(q, q->serve(q->ud));
}

static void on_lazy_timer(uv_timer_t *h)
{
    lazy_serve(h->data);
}

/* Before the loop may sleep: with ops due, it sleeps delay_ms at most. (The
 * check runs only after the sleep, so it cannot bound it.) */
static void on_lazy_prepare(uv_prepare_t *h)
{
    gw_kq *q = h->data;
    if (q->open && !uv_is_active((uv_handle_t *)&q->timer) && q->pending(q->ud))
        uv_timer_start(&q->timer, on_lazy_timer, q->delay_ms, 0);
}

static void on_lazy_check(uv_check_t *h)
{
    gw_kq *q = h->data;
    /* A busy loop turns many times a ms: serve at most once per ms of loop
     * time; the prepare's timer covers the rest. */
    uint64_t now_ms = uv_now(h->loop);
    if (now_ms == q->last_serve_ms)
        return;
    q->last_serve_ms = now_ms;
    lazy_serve(q);
}

gw_err gw_kq_init_lazy(gw_kq *q, uv_loop_t *loop, rd_kafka_queue_t *rkq, gw_kq_serve_fn serve,
                       gw_kq_pending_fn pending, uint64_t delay_ms, void *ud)
{
    q->rkq = rkq;
    q->serve = serve;
    q->pending = pending;
    q->delay_ms = delay_ms;
    q->ud = ud;
    q->idle_active = false;
    q->lazy = true;
    q->last_serve_ms = 0;
    q->fds[0] = q->fds[1] = -1;
    uv_idle_init(loop, &q->idle);
    uv_check_init(loop, &q->check);
    uv_prepare_init(loop, &q->prepare);
    uv_timer_init(loop, &q->timer);
    q->idle.data = q->check.data = q->prepare.data = q->timer.data = q;
    uv_check_start(&q->check, on_lazy_check);
    uv_prepare_start(&q->prepare, on_lazy_prepare);
    q->open = true;
    arm(q, true);
    return GW_OK;
}

void gw_kq_kick(gw_kq *q)
{
    arm(q, true);
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

void gw_kq_close(gw_kq *q)
{
    if (!q->open)
        return;
    q->open = false;
    uv_close((uv_handle_t *)&q->idle, on_closed);
    if (q->lazy) {
        uv_close((uv_handle_t *)&q->check, on_closed);
        uv_close((uv_handle_t *)&q->prepare, on_closed);
        uv_close((uv_handle_t *)&q->timer, on_closed);
        return;
    }
    rd_kafka_queue_io_event_enable(q->rkq, -1, NULL, 0);
    uv_close((uv_handle_t *)&q->poll, on_closed);
    close(q->fds[0]);
    close(q->fds[1]);
}
