/*
 * lua_scripts: the Redis Lua scripts, compiled into the binary.
 *
 * Each script lives in a file of its own next to the module that runs it,
 * src/<module>/lua/<name>.lua; tools/cmake/embed_lua.cmake turns them all
 * into one generated C file at build time (generated/gw_lua.c in the build
 * directory), so nothing reads script files at run time. A script's name is
 * "<module>/<name>", e.g. "state/limit_check" or "route/breaker_allow".
 *
 * Callers look a script up once, when they register it with the Redis
 * connection (gw_redis_script_add), never per request.
 * tests/unit/test_lua_scripts.c loads and runs every script on a real Redis.
 */
#ifndef GW_COMMON_LUA_SCRIPTS_H
#define GW_COMMON_LUA_SCRIPTS_H

#include <stddef.h>

typedef struct {
    const char *name; /* "<module>/<file name without .lua>" */
    const char *text; /* the file's bytes, NUL-terminated */
} gw_lua_source;

/* Every embedded script, sorted by path. */
extern const gw_lua_source gw_lua_sources[];
extern const size_t gw_lua_source_count;

/* The text of the script called name, or NULL when there is none. */
const char *gw_lua_script(const char *name);

#endif
