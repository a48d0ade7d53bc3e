/*
 * log: one JSON object per line on stderr.
 *
 *   gw_log(GW_LOG_INFO, "request_done", "request_id", id, "model", m, NULL);
 *
 * Fields after the event name are key/value string pairs ending with NULL.
 * Values are JSON-escaped. Prompt and completion text must never be passed
 * unless gw_log_debug_content() is true; secrets must never be passed at all
 * (gw_redact() in common/redact.h scrubs provider bodies first).
 * The level threshold and the content switch come from config; the logger is
 * a small process-wide sink, the one global modelgw allows, because stderr is.
 */
#ifndef GW_COMMON_LOG_H
#define GW_COMMON_LOG_H

#include <stdbool.h>

typedef enum { GW_LOG_DEBUG, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERROR, GW_LOG_OFF } gw_log_level;

void gw_log_set_level(gw_log_level level);
gw_log_level gw_log_get_level(void);
void gw_log_set_debug_content(bool on);
bool gw_log_debug_content(void);
/* "debug" | "info" | "warn" | "error" | "off"; -1 if unknown. */
int gw_log_level_parse(const char *s);

void gw_log(gw_log_level level, const char *event, ...) __attribute__((sentinel));

#define GW_DEBUG(...) gw_log(GW_LOG_DEBUG, __VA_ARGS__, (const char *)0)
#define GW_INFO(...)  gw_log(GW_LOG_INFO, __VA_ARGS__, (const char *)0)
#define GW_WARN(...)  gw_log(GW_LOG_WARN, __VA_ARGS__, (const char *)0)
#define GW_ERROR(...) gw_log(GW_LOG_ERROR, __VA_ARGS__, (const char *)0)

#endif
