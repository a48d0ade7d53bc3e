/*
 * uuid: random (version 4) UUIDs for request and event ids.
 * Bytes come from getrandom(2); no state, safe from any thread.
 */
#ifndef GW_COMMON_UUID_H
#define GW_COMMON_UUID_H

/* Writes "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" and a NUL into out. */
void gw_uuid4(char out[37]);

#endif
