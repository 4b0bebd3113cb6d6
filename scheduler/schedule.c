/* schedule.c - due times of calendar schedules (see schedule.h). */
#include "config.h"

#include "scheduler/calendar.h"
#include "scheduler/schedule.h"

int64_t
cairn_schedule_next(GPtrArray *cals, int64_t after)
{
    int64_t best = -1;
    for (guint i = 0; cals && i < cals->len; i++) {
        int64_t t = cairn_calendar_next(cals->pdata[i], after);
        if (t >= 0 && (best < 0 || t < best))
            best = t;
    }
    return best;
}

int64_t
cairn_schedule_due(GPtrArray *cals, int64_t anchor, int64_t now, int64_t *ret_next)
{
    int64_t t = cairn_schedule_next(cals, anchor);
    if (ret_next)
        *ret_next = cairn_schedule_next(cals, now > anchor ? now : anchor);
    return t >= 0 && t <= now ? t : -1;
}
