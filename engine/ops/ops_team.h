/* ops_team.h - internal to engine/ops/: how many OpenMP threads a kernel starts.
 *
 * Waking a team and meeting at its barrier costs microseconds, and much more when the cores
 * are shared with other processes, so small layers (M5 at batch 1) run on the calling thread
 * alone. Pure function; any thread may call it.
 */
#ifndef AC_OPS_TEAM_H
#define AC_OPS_TEAM_H

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

#endif
