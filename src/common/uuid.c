/* uuid: see uuid.h. */
#include "common/uuid.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Ids drawn from one seed before the generator is seeded again. */
enum { GW_UUID_RESEED_EVERY = 65536 };

/* xoshiro256** per thread, seeded from getrandom: 256 bits of state, so ids
 * of different workers (and threads) collide no more than getrandom's own;
 * one getrandom per GW_UUID_RESEED_EVERY ids instead of one per id. */
static _Thread_local struct {
    uint64_t s[4];
    uint32_t left; /* ids before the next seeding; 0 = seed first */
} rng;

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A forked child must not repeat its parent's ids: it seeds anew. */
static void on_fork_child(void)
{
    rng.left = 0;
}

static void install_atfork(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next64(void)
{
    uint64_t *s = rng.s;
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* getrandom blocks only before the kernel's pool is initialised at boot; should it
 * fail anyway, mix the clock, the pid and the old state so ids stay unique in
 * practice. */
static void seed(void)
{
    uint8_t *b = (uint8_t *)rng.s;
    size_t got = 0;
    pthread_once(&atfork_once, install_atfork);
    while (got < sizeof rng.s) {
        ssize_t n = getrandom(b + got, sizeof rng.s - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof rng.s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rng.s[0] ^= (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30);
        rng.s[1] ^= (uint64_t)getpid() << 16 ^ (uint64_t)(uintptr_t)&rng;
    }
    if ((rng.s[0] | rng.s[1] | rng.s[2] | rng.s[3]) == 0)
        rng.s[0] = 1; /* the one state xoshiro cannot leave */
    rng.left = GW_UUID_RESEED_EVERY;
}

void gw_uuid4(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    if (rng.left == 0)
        seed();
    rng.left--;
    uint64_t hi = next64(), lo = next64();
    uint8_t b[16];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(hi >> (56 - 8 * i));
        b[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}
