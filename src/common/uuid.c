/* uuid: see uuid.h. */
#include "common/uuid.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* getrandom blocks only before the kernel's pool is initialised at boot; should it
 * fail anyway, mix the clock and pid so ids stay unique in practice. */
static void fill_random(uint8_t b[16])
{
    size_t got = 0;
    while (got < 16) {
        ssize_t n = getrandom(b + got, 16 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got == 16)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 48);
    for (int i = 0; i < 16; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (uint8_t)x;
    }
}

void gw_uuid4(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    fill_random(b);
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
