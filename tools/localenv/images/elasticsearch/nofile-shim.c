/*
 * TEST IMAGE ONLY. Loaded with LD_PRELOAD by the test image's entrypoint when the
 * machine's hard limit of open files is below what Elasticsearch's bootstrap check
 * demands (65535). It makes getrlimit(RLIMIT_NOFILE) report at least that much; the
 * real limit is unchanged, so a node that really opens more files than the real
 * limit still fails. Never use it outside tests (docs/images.md).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <sys/resource.h>

#define REPORTED_NOFILE 65535

typedef int (*getrlimit_fn)(__rlimit_resource_t, struct rlimit *);
typedef int (*getrlimit64_fn)(__rlimit_resource_t, struct rlimit64 *);

static rlim_t at_least(rlim_t value)
{
    return (value == RLIM_INFINITY || value >= REPORTED_NOFILE) ? value : REPORTED_NOFILE;
}

int getrlimit(__rlimit_resource_t resource, struct rlimit *limit)
{
    static getrlimit_fn next;
    if (next == NULL)
        next = (getrlimit_fn)dlsym(RTLD_NEXT, "getrlimit");
    int rc = next(resource, limit);
    if (rc == 0 && resource == RLIMIT_NOFILE) {
        limit->rlim_cur = at_least(limit->rlim_cur);
        limit->rlim_max = at_least(limit->rlim_max);
    }
    return rc;
}

int getrlimit64(__rlimit_resource_t resource, struct rlimit64 *limit)
{
    static getrlimit64_fn next;
    if (next == NULL)
        next = (getrlimit64_fn)dlsym(RTLD_NEXT, "getrlimit64");
    int rc = next(resource, limit);
    if (rc == 0 && resource == RLIMIT_NOFILE) {
        limit->rlim_cur = at_least(limit->rlim_cur);
        limit->rlim_max = at_least(limit->rlim_max);
    }
    return rc;
}
