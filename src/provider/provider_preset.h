/*
 * provider_preset: the OpenAI-compatible presets (vLLM, llama.cpp server, LM
 * Studio, Groq, Mistral, Together, OpenRouter, DeepSeek, OpenAI) and the
 * names of the quirk flags the OpenAI adapter honours. The rows are in
 * provider_preset.def; config reads them to default a deployment's provider,
 * base_url, api_key_env and quirks, provider_openai.c reads the bits
 * (gw_deployment.openai_quirks). Pure data: no I/O, no allocation.
 */
#ifndef GW_PROVIDER_PRESET_H
#define GW_PROVIDER_PRESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/deployment.h"

typedef struct {
    gw_preset id;
    const char *name;        /* the config value: preset = "groq" */
    gw_provider_kind kind;   /* the provider kind it fills in */
    const char *base_url;    /* NULL for "none" */
    const char *api_key_env; /* NULL: a local server, no key */
    uint32_t quirks;         /* GW_QUIRK_* bits */
} gw_preset_info;

/* The presets' config names ("none", "openai", "vllm", ...), NULL-terminated. */
extern const char *const gw_preset_names[GW_PRESET__COUNT + 1];
/* The quirks' config names ("no_stream_options", ...), by bit, NULL-terminated. */
extern const char *const gw_quirk_names[GW_QUIRK__COUNT + 1];

/* The row of preset p; NULL when p is not a preset. */
const gw_preset_info *gw_preset_get(gw_preset p);
/* One line on what quirk bit does (docs, errors); NULL when not a quirk bit. */
const char *gw_quirk_doc(int bit);
/* The GW_QUIRK_* bit named name (exact); 0 when unknown. */
uint32_t gw_quirk_parse(const char *name);
/* The names of the bits in quirks, comma-separated, into out (len bytes with
 * the NUL); false when they do not fit. "" for none. */
bool gw_quirks_format(uint32_t quirks, char *out, size_t len);

#endif
