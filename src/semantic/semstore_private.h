/* semstore_private: the backend vtable behind semstore.h. */
#ifndef GW_SEMANTIC_SEMSTORE_PRIVATE_H
#define GW_SEMANTIC_SEMSTORE_PRIVATE_H

#include "semantic/semstore.h"

typedef struct {
    void (*search)(gw_semstore *s, const char *ns, const uint64_t *band_keys, int bands,
                   gw_sem_search_cb cb, void *ud);
    void (*put)(gw_semstore *s, const char *ns, const char *id, const uint8_t *blob, size_t len,
                const uint64_t *band_keys, int bands, int32_t ttl_s, gw_sem_put_cb cb, void *ud);
    void (*destroy)(gw_semstore *s);
} gw_semstore_vt;

struct gw_semstore {
    const gw_semstore_vt *vt;
    gw_semstore_opts opts;
    char prefix[64];
};

void gw_semstore_init_base(gw_semstore *s, const gw_semstore_vt *vt, const gw_semstore_opts *o);

#endif
