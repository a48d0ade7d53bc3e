/*
 * kq: joins a librdkafka queue to a libuv loop.
 *
 * librdkafka writes one byte to the write end of a non-blocking pipe when an
 * op lands on the (empty) queue (rd_kafka_queue_io_event_enable); uv_poll
 * watches the read end. On readable, kq reads the pipe dry and calls serve(),
 * which drains the queue without blocking (timeout 0) up to its own budget
 * and returns true when it stopped early with work left. kq then keeps a
 * uv_idle running so the rest is served on the next loop iteration even if
 * librdkafka writes nothing more. Nothing here ever blocks.
 *
 * Lazy mode (gw_kq_init_lazy), for a queue whose ops nobody waits on at
 * once (delivery reports): no pipe, so librdkafka's threads wake nothing.
 * The queue is served after loop iterations (uv_check, at most once per ms
 * of loop time: the loop is awake anyway for intake, provider I/O and
 * timers) and, while pending() says ops are due, by a timer armed before
 * the loop sleeps (uv_prepare), so they wait delay_ms at most. At a
 * steady load this takes the pipe's write, wake-up and read off every
 * delivery report.
 *
 * Lifecycle: gw_kq_init() or gw_kq_init_lazy() after the queue exists; gw_kq_close() before the
 * queue is destroyed (it disables the io event and closes the handles; the
 * gw_kq memory must stay valid until its uv handles are closed, i.e. until
 * the loop ran once more).
 */
#ifndef GW_LOOP_KQ_H
#define GW_LOOP_KQ_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <uv.h>

#include "common/err.h"

/* Drain some of the queue; return true when work is left. */
typedef bool (*gw_kq_serve_fn)(void *ud);
/* Lazy mode: are ops due on the queue (e.g. messages awaiting reports)? */
typedef bool (*gw_kq_pending_fn)(void *ud);

typedef struct {
    rd_kafka_queue_t *rkq; /* not owned */
    int fds[2];            /* pipe: [0] read (uv_poll), [1] write (librdkafka) */
    uv_poll_t poll;
    uv_idle_t idle;
    bool idle_active;
    bool open;
    gw_kq_serve_fn serve;
    void *ud;
    /* lazy mode only */
    bool lazy;
    uv_check_t check;
    uv_prepare_t prepare; /* bounds the loop's sleep while ops are due */
    uv_timer_t timer;
    gw_kq_pending_fn pending;
    uint64_t delay_ms;
    uint64_t last_serve_ms; /* loop time of the last serve from the check */
} gw_kq;

gw_err gw_kq_init(gw_kq *q, uv_loop_t *loop, rd_kafka_queue_t *rkq, gw_kq_serve_fn serve, void *ud);
gw_err gw_kq_init_lazy(gw_kq *q, uv_loop_t *loop, rd_kafka_queue_t *rkq, gw_kq_serve_fn serve,
                       gw_kq_pending_fn pending, uint64_t delay_ms, void *ud);
/* Serve now (from the loop, never from inside serve). */
void gw_kq_kick(gw_kq *q);
void gw_kq_close(gw_kq *q);

#endif
