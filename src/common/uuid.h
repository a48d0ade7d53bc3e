/*
 * uuid: random (version 4) UUIDs for request and event ids.
 * A generator per thread (xoshiro256**) seeded from getrandom(2) and seeded
 * again every 65,536 ids and in a forked child: one system call per 65,536
 * ids, not one per id; safe from any thread. Unique, not secret: not for
 * tokens or keys.
 */
#ifndef GW_COMMON_UUID_H
#define GW_COMMON_UUID_H

/* Writes "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" and a NUL into out. */
void gw_uuid4(char out[37]);

#endif
