/* request_id.c - sanitised client request ids, or unique generated ones. */
#include "request_id.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static int acceptable(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n >= 1 && n <= REQUEST_ID_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == n;
}

/* splitmix64 is a bijection, so distinct counter values give distinct ids; the random
 * seed makes ids differ between processes (and replicas). */
static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void request_id_make(const char *given, char *out)
{
    if (acceptable(given)) {
        memcpy(out, given, strlen(given) + 1);
        return;
    }
    static atomic_uint_least64_t counter;
    static _Atomic uint64_t seed;
    uint64_t s = atomic_load(&seed);
    if (!s) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
            r = (uint64_t)time(NULL) * 0x2545F4914F6CDD1Dull;
        r |= 1;
        uint64_t expected = 0;
        atomic_compare_exchange_strong(&seed, &expected, r);
        s = atomic_load(&seed);
    }
    uint64_t n = atomic_fetch_add(&counter, 1);
    snprintf(out, REQUEST_ID_MAX + 1, "ac-%016llx", (unsigned long long)mix(s + n));
}
