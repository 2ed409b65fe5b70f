/* ops_team.h - internal to engine/ops/: how many OpenMP threads a kernel starts.
 *
 * Waking a team and meeting at its barrier costs microseconds, and much more when the cores
 * are shared with other processes, so small layers (M5 at batch 1) run on the calling thread
 * alone, and loops without a worksharing construct outside OpenMP altogether
 * (AC_PARALLEL_FOR): libgomp builds a team even for a region whose if() clause is false
 * (1.2 us per region on an idle machine, 2-5 us on a busy one). A kernel whose region holds
 * an `omp for` must not simply drop the region for one thread: the loop would then be
 * orphaned, and an orphaned worksharing loop on a thread that had led teams before hung in
 * libgomp (a stream job on the scheduler's thread, under ASan). So conv2d puts its task in a
 * function that a plain loop calls for one thread and an `omp for` for more; the RNN, whose
 * region holds several loops with barriers between them, keeps its region.
 * Pure functions and macros; any thread may use them.
 */
#ifndef AC_OPS_TEAM_H
#define AC_OPS_TEAM_H

#include <omp.h>

#define AC_MIN_WORK_PER_THREAD 100000.0

/* Threads worth starting for `tasks` independent pieces of `work` (multiply-adds or element
 * visits) in all: at most `threads`, at most `tasks`, at least 1. */
static inline int ac_ops_team(int threads, long tasks, double work)
{
    long by_work = (long)(work / AC_MIN_WORK_PER_THREAD);
    long t = threads < tasks ? threads : tasks;
    if (by_work < t) t = by_work;
    return t < 1 ? 1 : (int)t;
}

/* The calling thread's part of a kernel's per-thread scratch, inside a loop that
 * AC_PARALLEL_FOR runs on nt threads: its thread number in the team, and 0 when nt is 1.
 * Then the loop runs outside any region of its own, and omp_get_thread_num() would be the
 * caller's number in an enclosing team (the scheduler's: a stream job on its thread 1),
 * beyond the one slice the caller gave. */
#define AC_OPS_THREAD(nt) ((nt) > 1 ? omp_get_thread_num() : 0)

/* The OpenMP directive written as macro tokens (a #pragma line cannot stand in a macro). */
#define AC_OMP(directive) _Pragma(#directive)

/* Runs the for statement given as the last argument on nt threads, as
 * `#pragma omp parallel for num_threads(nt) SCHED` would, but as plain code on the calling
 * thread when nt is 1. SCHED is the schedule clause, e.g. schedule(static). */
#define AC_PARALLEL_FOR(nt, SCHED, ...)                                                           \
    do {                                                                                           \
        if ((nt) > 1) {                                                                            \
            AC_OMP(omp parallel for num_threads(nt) SCHED)                                         \
            __VA_ARGS__                                                                            \
        } else {                                                                                   \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    } while (0)

#endif
