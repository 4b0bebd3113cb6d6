/* calendar.c - calendar expressions in the systemd.time(7) style: parsing,
 * the normalized form, and the next trigger time.
 *
 * An expression is a weekday mask plus one chain of components per field
 * (year, month, day, hour, minute, second); a component is a value, a range
 * "a..b" or a repetition "a/step" / "a..b/step"; a NULL chain is "*".
 * next() searches wall-clock fields from the coarsest to the finest (a field
 * that cannot match carries into the next larger one), then maps the wall
 * time to an instant with the time zone's offsets. */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "scheduler/calendar.h"

enum { F_YEAR, F_MONTH, F_DAY, F_HOUR, F_MINUTE, F_SECOND, F_COUNT };

#define YEAR_MIN 1970
#define YEAR_MAX 2199 /* as systemd */
#define EOM_MAX 28    /* "~N": the N-th day from the end exists in every month */
#define ALL_WEEKDAYS 0x7f

typedef struct {
    int start;
    int stop;   /* -1: no range */
    int repeat; /* 0: no repetition */
} Component;

struct CairnCalendar {
    guint weekdays;         /* bit 0 = Monday .. bit 6 = Sunday */
    gboolean end_of_month;  /* day values count back from the last day ("~") */
    GArray *field[F_COUNT]; /* of Component, sorted, no duplicates; NULL = "*" */
    char *tz_name;          /* as printed; NULL = local time ($TZ) */
    GTimeZone *tz;          /* NULL = local time, looked up at each next() */
};

static const struct {
    const char *name;
    int min, max, width;
} fields[F_COUNT] = {
    [F_YEAR] = { "year", YEAR_MIN, YEAR_MAX, 4 },  [F_MONTH] = { "month", 1, 12, 2 },
    [F_DAY] = { "day", 1, 31, 2 },                 [F_HOUR] = { "hour", 0, 23, 2 },
    [F_MINUTE] = { "minute", 0, 59, 2 },           [F_SECOND] = { "second", 0, 59, 2 },
};

static const char *const weekday_abbr[7] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
static const char *const weekday_full[7] = { "monday", "tuesday", "wednesday", "thursday",
                                             "friday", "saturday", "sunday" };

static const struct {
    const char *word;
    const char *expansion;
} shorthands[] = {
    { "minutely", "*-*-* *:*:00" },
    { "hourly", "*-*-* *:00:00" },
    { "daily", "*-*-* 00:00:00" },
    { "weekly", "Mon *-*-* 00:00:00" },
    { "monthly", "*-*-01 00:00:00" },
    { "yearly", "*-01-01 00:00:00" },
    { "annually", "*-01-01 00:00:00" },
    { "quarterly", "*-01,04,07,10-01 00:00:00" },
    { "semiannually", "*-01,07-01 00:00:00" },
    { "semi-annually", "*-01,07-01 00:00:00" },
    { "biannually", "*-01,07-01 00:00:00" },
    { "bi-annually", "*-01,07-01 00:00:00" },
};

void
cairn_calendar_free(CairnCalendar *cal)
{
    if (!cal)
        return;
    for (int f = 0; f < F_COUNT; f++)
        g_clear_pointer(&cal->field[f], g_array_unref);
    g_clear_pointer(&cal->tz, g_time_zone_unref);
    g_free(cal->tz_name);
    g_free(cal);
}

/* ---- parsing */

typedef struct {
    const char *text; /* the whole expression, for messages */
    GError **error;
} Ctx;

static gboolean G_GNUC_PRINTF(2, 3)
bad(Ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *detail = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(c->error, CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_PARSE,
                "invalid calendar expression \"%s\": %s", c->text, detail);
    return FALSE;
}

/* Decimal digits only (no sign, no "0x"); more than 9 digits is out of
 * range of every field, so it is clamped rather than refused here. */
static gboolean
parse_number(const char *s, int *ret)
{
    size_t n = strlen(s);
    if (n == 0)
        return FALSE;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isdigit(s[i]))
            return FALSE;
    *ret = n > 9 ? G_MAXINT : atoi(s);
    return TRUE;
}

static int
year_from_two_digits(int y)
{
    /* as systemd: 0..69 are 2000..2069, 70..99 are 1970..1999 */
    return y < 70 ? y + 2000 : y < 100 ? y + 1900 : y;
}

/* One list item of field f: VALUE, A..B or "*", each with an optional /STEP. */
static gboolean
parse_component(Ctx *c, int f, gboolean eom, const char *item, Component *ret)
{
    const char *name = f == F_DAY && eom ? "day from the end of the month" : fields[f].name;
    int lo = fields[f].min, hi = f == F_DAY && eom ? EOM_MAX : fields[f].max;
    const char *slash = strchr(item, '/');
    g_autofree char *range = slash ? g_strndup(item, (gsize) (slash - item)) : g_strdup(item);
    Component k = { .stop = -1 };
    if (slash) {
        if (!parse_number(slash + 1, &k.repeat))
            return bad(c, "%s \"%s\": the step \"%s\" is not a number", name, item, slash + 1);
        if (k.repeat == 0)
            return bad(c, "%s \"%s\": the step must be at least 1", name, item);
    }
    char *dots = strstr(range, "..");
    if (dots)
        *dots = '\0';
    const char *first = range, *last = dots ? dots + 2 : NULL;
    if (strcmp(first, "*") == 0 && !last) {
        if (!slash)
            return bad(c, "%s \"%s\": \"*\" cannot be part of a list", name, item);
        k.start = lo; /* a step from "*" starts at the smallest value */
    } else if (!*first || (last && !*last)) {
        return bad(c, "%s range \"%s\" is missing an end", name, item);
    } else if (strcmp(first, "*") == 0 || (last && strcmp(last, "*") == 0)) {
        return bad(c, "%s range \"%s\": \"*\" cannot end a range", name, item);
    } else if (!parse_number(first, &k.start)) {
        return bad(c, "%s \"%s\": \"%s\" is not a number", name, item, first);
    } else if (last && !parse_number(last, &k.stop)) {
        return bad(c, "%s \"%s\": \"%s\" is not a number", name, item, last);
    }
    if (f == F_YEAR) {
        k.start = year_from_two_digits(k.start);
        if (k.stop >= 0)
            k.stop = year_from_two_digits(k.stop);
    }
    if (k.start < lo || k.start > hi || (k.stop >= 0 && (k.stop < lo || k.stop > hi)))
        return bad(c, "%s \"%s\" is out of range (%d..%d)", name, item, lo, hi);
    if (k.stop >= 0 && k.stop < k.start)
        return bad(c, "%s range \"%s\" goes backwards", name, item);
    /* as systemd: a repetition that cannot fire twice is a mistake. From the
     * end of the month an open repetition counts down ("~7/2": 7, 5, 3, 1). */
    if (k.repeat > 0 && k.stop < 0 && f == F_DAY && eom && k.start - k.repeat < lo)
        return bad(c, "%s \"%s\" repeats below %d, so it fires only at %d: write \"%d\" or a "
                   "smaller step", name, item, lo, k.start, k.start);
    if (k.repeat > 0 && k.stop < 0 && !(f == F_DAY && eom) && (int64_t) k.start + k.repeat > hi)
        return bad(c, "%s \"%s\" repeats past %d, so it fires only at %d: write \"%d\" or a "
                   "smaller step", name, item, hi, k.start, k.start);
    /* normal form: a range ends on its last value, a range of one value is
     * that value, a range stepping by 1 is a plain range */
    if (k.stop >= 0 && k.repeat > 0)
        k.stop = k.start + (k.stop - k.start) / k.repeat * k.repeat;
    if (k.stop == k.start) {
        k.stop = -1;
        k.repeat = 0;
    } else if (k.stop >= 0 && k.repeat == 1) {
        k.repeat = 0;
    }
    *ret = k;
    return TRUE;
}

static gint
component_cmp(gconstpointer a, gconstpointer b)
{
    const Component *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->stop != y->stop)
        return x->stop < y->stop ? -1 : 1;
    return (x->repeat > y->repeat) - (x->repeat < y->repeat);
}

/* A comma list of components, or "*" (NULL); part is the date or time
 * that holds it, for messages. */
static gboolean
parse_chain(Ctx *c, int f, gboolean eom, const char *text, const char *part, GArray **ret)
{
    *ret = NULL;
    if (strcmp(text, "*") == 0)
        return TRUE;
    if (!*text)
        return bad(c, "the %s is missing in \"%s\"", fields[f].name, part);
    g_auto(GStrv) items = g_strsplit(text, ",", -1);
    g_autoptr(GArray) chain = g_array_new(FALSE, FALSE, sizeof(Component));
    for (guint i = 0; items[i]; i++) {
        Component k;
        if (!*items[i])
            return bad(c, "%s \"%s\" has an empty list item", fields[f].name, text);
        if (!parse_component(c, f, eom, items[i], &k))
            return FALSE;
        g_array_append_val(chain, k);
    }
    g_array_sort(chain, component_cmp);
    for (guint i = 1; i < chain->len;) {
        if (component_cmp(&g_array_index(chain, Component, i - 1),
                          &g_array_index(chain, Component, i)) == 0)
            g_array_remove_index(chain, i);
        else
            i++;
    }
    /* every second: printed as "*", as systemd does */
    if (f == F_SECOND)
        for (guint i = 0; i < chain->len; i++) {
            Component *k = &g_array_index(chain, Component, i);
            if (k->start == 0 && k->stop < 0 && k->repeat == 1)
                return TRUE;
        }
    *ret = g_steal_pointer(&chain);
    return TRUE;
}

static int
weekday_index(const char *s)
{
    for (int i = 0; i < 7; i++)
        if (g_ascii_strcasecmp(s, weekday_abbr[i]) == 0 ||
            g_ascii_strcasecmp(s, weekday_full[i]) == 0)
            return i;
    return -1;
}

/* "Mon,Thu..Sun": runs of three or more days as ranges, as systemd prints them */
static void
append_weekdays(GString *s, guint mask)
{
    gboolean first = TRUE;
    for (int d = 0; d < 7;) {
        if (!(mask & (1u << d))) {
            d++;
            continue;
        }
        int e = d;
        while (e + 1 < 7 && (mask & (1u << (e + 1))))
            e++;
        if (!first)
            g_string_append_c(s, ',');
        first = FALSE;
        if (e - d >= 2)
            g_string_append_printf(s, "%s..%s", weekday_abbr[d], weekday_abbr[e]);
        else if (e == d)
            g_string_append(s, weekday_abbr[d]);
        else
            g_string_append_printf(s, "%s,%s", weekday_abbr[d], weekday_abbr[e]);
        d = e + 1;
    }
}

/* "unknown weekday", with a did-you-mean among the weekdays and the
 * shorthands ("dayly" is a misspelled "daily", not a weekday) */
static gboolean
unknown_weekday(Ctx *c, const char *word)
{
    const char *names[7 + G_N_ELEMENTS(shorthands) + 1];
    guint n = 0;
    for (guint i = 0; i < 7; i++)
        names[n++] = weekday_full[i];
    for (size_t i = 0; i < G_N_ELEMENTS(shorthands); i++)
        names[n++] = shorthands[i].word;
    names[n] = NULL;
    const char *close = cairn_closest(word, names);
    if (close)
        return bad(c, "unknown weekday \"%s\" (did you mean \"%s\"?)", word, close);
    return bad(c, "unknown weekday \"%s\"", word);
}

/* "Mon", "Mon..Fri", "Sat,Sun", "Mon,Wed..Fri" (monday .. sunday, any case) */
static gboolean
parse_weekdays(Ctx *c, const char *text, guint *ret)
{
    g_auto(GStrv) items = g_strsplit(text, ",", -1);
    guint mask = 0;
    for (guint i = 0; items[i]; i++) {
        const char *item = items[i];
        if (!*item)
            return bad(c, "weekdays \"%s\" have an empty list item", text);
        if (strchr(item, '/'))
            return bad(c, "weekdays \"%s\" cannot have a step", item);
        g_auto(GStrv) ends = g_strsplit(item, "..", -1);
        if (g_strv_length(ends) > 2)
            return bad(c, "weekday range \"%s\" has more than two ends", item);
        if (ends[1] && (!*ends[0] || !*ends[1]))
            return bad(c, "weekday range \"%s\" is missing an end", item);
        int a = weekday_index(ends[0]);
        if (a < 0)
            return unknown_weekday(c, ends[0]);
        int b = a;
        if (ends[1] && (b = weekday_index(ends[1])) < 0)
            return unknown_weekday(c, ends[1]);
        if (b < a) {
            guint wrapped = (ALL_WEEKDAYS << a | ((1u << (b + 1)) - 1)) & ALL_WEEKDAYS;
            if (wrapped == ALL_WEEKDAYS)
                return bad(c, "weekday range \"%s\" goes backwards (weeks run Mon..Sun; for "
                           "every day leave the weekdays out)", item);
            g_autoptr(GString) hint = g_string_new(NULL);
            append_weekdays(hint, wrapped);
            return bad(c, "weekday range \"%s\" goes backwards (weeks run Mon..Sun: write "
                       "\"%s\")", item, hint->str);
        }
        for (int d = a; d <= b; d++)
            mask |= 1u << d;
    }
    *ret = mask;
    return TRUE;
}

/* [YEAR-]MONTH-DAY or [YEAR-]MONTH~DAYS_FROM_END */
static gboolean
parse_date(Ctx *c, CairnCalendar *cal, const char *text)
{
    const char *tilde = strchr(text, '~');
    g_autofree char *head = tilde ? g_strndup(text, (gsize) (tilde - text)) : g_strdup(text);
    g_auto(GStrv) parts = g_strsplit(head, "-", -1);
    guint n = g_strv_length(parts);
    if (tilde) {
        if (strchr(tilde + 1, '~') || strchr(tilde + 1, '-') || n < 1 || n > 2)
            return bad(c, "date \"%s\": expected YEAR-MONTH~DAY or MONTH~DAY", text);
    } else if (n != 2 && n != 3) {
        return bad(c, "date \"%s\": expected YEAR-MONTH-DAY or MONTH-DAY", text);
    }
    /* with '~' the day is after it and head holds [YEAR-]MONTH */
    guint with_year = tilde ? 2 : 3;
    const char *year = n == with_year ? parts[0] : NULL;
    const char *month = tilde ? parts[n - 1] : parts[n - 2];
    const char *day = tilde ? tilde + 1 : parts[n - 1];
    int v;
    if (!year && strlen(month) == 4 && parse_number(month, &v))
        return bad(c, "date \"%s\": expected YEAR-MONTH-DAY or MONTH-DAY (the day is missing)",
                   text);
    cal->end_of_month = tilde != NULL;
    if ((year && !parse_chain(c, F_YEAR, FALSE, year, text, &cal->field[F_YEAR])) ||
        !parse_chain(c, F_MONTH, FALSE, month, text, &cal->field[F_MONTH]) ||
        !parse_chain(c, F_DAY, cal->end_of_month, day, text, &cal->field[F_DAY]))
        return FALSE;
    if (!cal->field[F_DAY])
        cal->end_of_month = FALSE; /* "~*" is every day */
    return TRUE;
}

/* HOUR:MINUTE[:SECOND] */
static gboolean
parse_time(Ctx *c, CairnCalendar *cal, const char *text)
{
    g_auto(GStrv) parts = g_strsplit(text, ":", -1);
    guint n = g_strv_length(parts);
    if (n != 2 && n != 3)
        return bad(c, "time \"%s\": expected HOUR:MINUTE or HOUR:MINUTE:SECOND", text);
    if (n == 3) {
        for (const char *p = parts[2]; *p; p++)
            if (*p == '.' && p[1] != '.' && (p == parts[2] || p[-1] != '.'))
                return bad(c, "time \"%s\": fractional seconds are not supported", text);
    }
    return parse_chain(c, F_HOUR, FALSE, parts[0], text, &cal->field[F_HOUR]) &&
           parse_chain(c, F_MINUTE, FALSE, parts[1], text, &cal->field[F_MINUTE]) &&
           parse_chain(c, F_SECOND, FALSE, n == 3 ? parts[2] : "00", text,
                       &cal->field[F_SECOND]);
}

/* A zoneinfo name such as "Europe/Berlin" (a file under $TZDIR or
 * /usr/share/zoneinfo, as systemd checks it), or "UTC"; NULL if it is none.
 * GLib would also take POSIX TZ rules and paths: those are refused. */
static GTimeZone *
zone_lookup(const char *name)
{
    if (g_ascii_strcasecmp(name, "UTC") == 0)
        return g_time_zone_new_utc();
    if (!g_ascii_isalpha(name[0]) || g_str_has_suffix(name, "/"))
        return NULL;
    for (const char *p = name; *p; p++)
        if (!(g_ascii_isalnum(*p) || strchr("/_+-", *p)) || (p[0] == '/' && !g_ascii_isalpha(p[1])))
            return NULL;
    const char *dir = g_getenv("TZDIR");
    g_autofree char *path = g_build_filename(dir && *dir ? dir : "/usr/share/zoneinfo", name,
                                             NULL);
    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR))
        return NULL;
    return g_time_zone_new_identifier(name);
}

static gboolean
is_weekdays(const char *text)
{
    guint mask;
    Ctx quiet = { text, NULL };
    return parse_weekdays(&quiet, text, &mask);
}

static gboolean
is_shorthand(const char *text)
{
    for (size_t s = 0; s < G_N_ELEMENTS(shorthands); s++)
        if (g_ascii_strcasecmp(text, shorthands[s].word) == 0)
            return TRUE;
    return FALSE;
}

static gboolean
parse_zone(Ctx *c, CairnCalendar *cal, const char *text)
{
    cal->tz = zone_lookup(text);
    if (!cal->tz) {
        if (is_weekdays(text))
            return bad(c, "weekdays \"%s\" must come first", text);
        if (is_shorthand(text))
            return bad(c, "\"%s\" cannot be combined with other parts", text);
        return bad(c, "unknown time zone \"%s\" (a zoneinfo name such as \"UTC\" or "
                   "\"Europe/Berlin\")", text);
    }
    cal->tz_name = g_ascii_strcasecmp(text, "UTC") == 0 ? g_strdup("UTC") : g_strdup(text);
    return TRUE;
}

static gboolean
is_word(const char *s)
{
    return g_ascii_isalpha(s[0]);
}

/* [WEEKDAYS] [DATE] [TIME] [ZONE] */
static gboolean
parse_tokens(Ctx *c, CairnCalendar *cal, char **tok, guint n)
{
    guint i = 0;
    cal->weekdays = ALL_WEEKDAYS;
    if (n > 0 && is_word(tok[0])) {
        g_autoptr(GTimeZone) tz = is_weekdays(tok[0]) ? NULL : zone_lookup(tok[0]);
        if (tz && n == 1)
            return bad(c, "a time zone alone is no schedule: add a time, e.g. \"00:00 %s\"",
                       tok[0]);
        if (tz)
            return bad(c, "the time zone \"%s\" must come last", tok[0]);
        if (!parse_weekdays(c, tok[0], &cal->weekdays))
            return FALSE;
        i++;
    }
    const char *date = NULL, *time = NULL;
    for (; i < n; i++) {
        const char *t = tok[i];
        if (is_word(t)) {
            if (i + 1 < n) {
                if (is_weekdays(t))
                    return bad(c, "weekdays \"%s\" must come first", t);
                return bad(c, "unexpected \"%s\" (a time zone must come last)", t);
            }
            if (!parse_zone(c, cal, t))
                return FALSE;
        } else if (strchr(t, ':')) {
            if (strchr(t, '-') && strchr(t, 'T'))
                return bad(c, "\"%s\": separate the date and the time with a space", t);
            if (time)
                return bad(c, "two times \"%s\" and \"%s\"", time, t);
            time = t;
            if (!parse_time(c, cal, t))
                return FALSE;
        } else if (strchr(t, '-') || strchr(t, '~')) {
            if (date)
                return bad(c, "two dates \"%s\" and \"%s\"", date, t);
            if (time)
                return bad(c, "the date \"%s\" must come before the time", t);
            date = t;
            if (!parse_date(c, cal, t))
                return FALSE;
        } else {
            return bad(c, "\"%s\" is neither a date (YEAR-MONTH-DAY) nor a time "
                       "(HOUR:MINUTE[:SECOND])", t);
        }
    }
    if (!time) {
        /* the time defaults to midnight */
        for (int f = F_HOUR; f <= F_SECOND; f++) {
            Component midnight = { 0, -1, 0 };
            cal->field[f] = g_array_new(FALSE, FALSE, sizeof(Component));
            g_array_append_val(cal->field[f], midnight);
        }
    }
    return TRUE;
}

CairnCalendar *
cairn_calendar_parse(const char *text, GError **error)
{
    g_return_val_if_fail(text != NULL, NULL);
    Ctx c = { text, error };
    g_auto(GStrv) split = g_strsplit_set(text, " \t", -1);
    g_autoptr(GPtrArray) tok = g_ptr_array_new();
    for (guint i = 0; split[i]; i++)
        if (*split[i])
            g_ptr_array_add(tok, split[i]);
    if (tok->len == 0) {
        bad(&c, "it is empty (e.g. \"daily\" or \"Mon..Fri 22:00\")");
        return NULL;
    }
    g_autoptr(CairnCalendar) cal = g_new0(CairnCalendar, 1);
    /* a shorthand stands for a whole expression; only a zone may follow */
    g_auto(GStrv) expansion = NULL;
    for (size_t s = 0; s < G_N_ELEMENTS(shorthands); s++)
        if (g_ascii_strcasecmp(tok->pdata[0], shorthands[s].word) == 0)
            expansion = g_strsplit(shorthands[s].expansion, " ", -1);
    if (expansion) {
        if (tok->len > 2 || (tok->len == 2 && !is_word(tok->pdata[1]))) {
            bad(&c, "\"%s\" cannot be combined with \"%s\" (only a time zone may follow)",
                (char *) tok->pdata[0], (char *) tok->pdata[1]);
            return NULL;
        }
        const char *zone = tok->len == 2 ? tok->pdata[1] : NULL;
        g_ptr_array_set_size(tok, 0);
        for (guint i = 0; expansion[i]; i++)
            g_ptr_array_add(tok, expansion[i]);
        if (zone)
            g_ptr_array_add(tok, (char *) zone);
    }
    if (!parse_tokens(&c, cal, (char **) tok->pdata, tok->len))
        return NULL;
    return g_steal_pointer(&cal);
}

/* ---- the normalized form */

static void
append_chain(GString *s, const GArray *chain, int width)
{
    if (!chain) {
        g_string_append_c(s, '*');
        return;
    }
    for (guint i = 0; i < chain->len; i++) {
        const Component *k = &g_array_index(chain, Component, i);
        g_string_append_printf(s, "%s%0*d", i ? "," : "", width, k->start);
        if (k->stop >= 0)
            g_string_append_printf(s, "..%0*d", width, k->stop);
        if (k->repeat > 0)
            g_string_append_printf(s, "/%d", k->repeat);
    }
}

char *
cairn_calendar_to_string(const CairnCalendar *cal)
{
    GString *s = g_string_new(NULL);
    if (cal->weekdays != ALL_WEEKDAYS) {
        append_weekdays(s, cal->weekdays);
        g_string_append_c(s, ' ');
    }
    static const char sep[F_COUNT] = { '-', '-', ' ', ':', ':', '\0' };
    for (int f = 0; f < F_COUNT; f++) {
        append_chain(s, cal->field[f], fields[f].width);
        char c = f == F_MONTH && cal->end_of_month ? '~' : sep[f];
        if (c)
            g_string_append_c(s, c);
    }
    if (cal->tz_name)
        g_string_append_printf(s, " %s", cal->tz_name);
    return g_string_free(s, FALSE);
}

/* ---- the next trigger */

typedef struct {
    int year, month, day, hour, minute, second;
} Civil;

#define JULIAN_1970 719163 /* GDate's day number (0001-01-01 = 1) of 1970-01-01 */

static int
days_in_month(int y, int m)
{
    return g_date_get_days_in_month((GDateMonth) m, (GDateYear) y);
}

static void
gdate_set(GDate *date, int y, int m, int d)
{
    g_date_clear(date, 1);
    g_date_set_dmy(date, (GDateDay) d, (GDateMonth) m, (GDateYear) y);
}

/* days since 1970-01-01 */
static int64_t
days_from_civil(int y, int m, int d)
{
    GDate date;
    gdate_set(&date, y, m, d);
    return (int64_t) g_date_get_julian(&date) - JULIAN_1970;
}

static int64_t
civil_to_seconds(const Civil *c)
{
    return days_from_civil(c->year, c->month, c->day) * 86400 + c->hour * 3600 +
           c->minute * 60 + c->second;
}

static void
civil_from_seconds(int64_t s, Civil *c)
{
    int64_t days = (s >= 0 ? s : s - 86399) / 86400;
    int64_t rest = s - days * 86400;
    GDate date;
    g_date_clear(&date, 1);
    g_date_set_julian(&date, (guint32) (days + JULIAN_1970));
    c->year = g_date_get_year(&date);
    c->month = g_date_get_month(&date);
    c->day = g_date_get_day(&date);
    c->hour = (int) (rest / 3600);
    c->minute = (int) (rest / 60 % 60);
    c->second = (int) (rest % 60);
}

/* the smallest value >= v and <= max a component allows, or -1 */
static int64_t
component_next(const Component *k, int v, int max)
{
    int64_t last = k->stop >= 0 ? k->stop : k->repeat > 0 ? max : k->start;
    int64_t x = k->start;
    if (v > k->start)
        x = k->repeat == 0
                ? v
                : k->start + ((int64_t) v - k->start + k->repeat - 1) / k->repeat * k->repeat;
    return x <= last && x <= max ? x : -1;
}

/* the same for a chain (NULL = any value) */
static int
chain_next(const GArray *chain, int v, int max)
{
    if (!chain)
        return v <= max ? v : -1;
    int64_t best = -1;
    for (guint i = 0; i < chain->len; i++) {
        int64_t x = component_next(&g_array_index(chain, Component, i), v, max);
        if (x >= 0 && (best < 0 || x < best))
            best = x;
    }
    return (int) best;
}

/* Does a day chain allow v? From the end of the month, an open repetition
 * counts down ("~7/2" is 7, 5, 3, 1); everything else counts up. */
static gboolean
day_chain_has(const GArray *chain, gboolean eom, int v)
{
    if (!chain)
        return TRUE;
    for (guint i = 0; i < chain->len; i++) {
        const Component *k = &g_array_index(chain, Component, i);
        if (eom && k->stop < 0 && k->repeat > 0) {
            if (v <= k->start && (k->start - v) % k->repeat == 0)
                return TRUE;
        } else if (component_next(k, v, v) == v) {
            return TRUE;
        }
    }
    return FALSE;
}

static gboolean
day_matches(const CairnCalendar *cal, int y, int m, int d)
{
    int v = cal->end_of_month ? days_in_month(y, m) - d + 1 : d;
    if (!day_chain_has(cal->field[F_DAY], cal->end_of_month, v))
        return FALSE;
    GDate date;
    gdate_set(&date, y, m, d);
    return (cal->weekdays & (1u << (g_date_get_weekday(&date) - G_DATE_MONDAY))) != 0;
}

/* Zero the fields below f and add one to f, carrying into larger fields. */
static void
civil_bump(Civil *c, int f)
{
    switch (f) {
    case F_SECOND:
        if (++c->second < 60)
            return;
        G_GNUC_FALLTHROUGH;
    case F_MINUTE:
        c->second = 0;
        if (++c->minute < 60)
            return;
        G_GNUC_FALLTHROUGH;
    case F_HOUR:
        c->second = c->minute = 0;
        if (++c->hour < 24)
            return;
        G_GNUC_FALLTHROUGH;
    case F_DAY:
        c->second = c->minute = c->hour = 0;
        if (++c->day <= days_in_month(c->year, c->month))
            return;
        G_GNUC_FALLTHROUGH;
    case F_MONTH:
        c->second = c->minute = c->hour = 0;
        c->day = 1;
        if (++c->month <= 12)
            return;
        G_GNUC_FALLTHROUGH;
    default:
        *c = (Civil) { c->year + 1, 1, 1, 0, 0, 0 };
    }
}

/* Move *w to the first wall-clock time >= *w that the expression matches;
 * FALSE when there is none before YEAR_MAX ends. Each round either matches
 * or moves to the start of the next year, month, day, hour or minute, so the
 * rounds are bounded by the size of the chains, not by the seconds. */
static gboolean
match_from(const CairnCalendar *cal, Civil *w)
{
    if (w->year < YEAR_MIN)
        *w = (Civil) { YEAR_MIN, 1, 1, 0, 0, 0 };
    for (;;) {
        int v = chain_next(cal->field[F_YEAR], w->year, YEAR_MAX);
        if (v < 0)
            return FALSE;
        if (v != w->year)
            *w = (Civil) { v, 1, 1, 0, 0, 0 };

        if ((v = chain_next(cal->field[F_MONTH], w->month, 12)) < 0) {
            civil_bump(w, F_YEAR);
            continue;
        }
        if (v != w->month)
            *w = (Civil) { w->year, v, 1, 0, 0, 0 };

        int dim = days_in_month(w->year, w->month), d = w->day;
        while (d <= dim && !day_matches(cal, w->year, w->month, d))
            d++;
        if (d > dim) {
            civil_bump(w, F_MONTH);
            continue;
        }
        if (d != w->day)
            *w = (Civil) { w->year, w->month, d, 0, 0, 0 };

        if ((v = chain_next(cal->field[F_HOUR], w->hour, 23)) < 0) {
            civil_bump(w, F_DAY);
            continue;
        }
        if (v != w->hour) {
            w->hour = v;
            w->minute = w->second = 0;
        }

        if ((v = chain_next(cal->field[F_MINUTE], w->minute, 59)) < 0) {
            civil_bump(w, F_HOUR);
            continue;
        }
        if (v != w->minute) {
            w->minute = v;
            w->second = 0;
        }

        if ((v = chain_next(cal->field[F_SECOND], w->second, 59)) < 0) {
            civil_bump(w, F_MINUTE);
            continue;
        }
        w->second = v;
        return TRUE;
    }
}

static int
offset_at(GTimeZone *tz, int64_t t)
{
    return g_time_zone_get_offset(tz, g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, t));
}

/* The instant in (lo, hi] where the offset changes from offset_at(lo). */
static int64_t
transition_between(GTimeZone *tz, int64_t lo, int64_t hi)
{
    int before = offset_at(tz, lo);
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (offset_at(tz, mid) == before)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

typedef struct {
    gboolean exists; /* the wall time is shown at some instant */
    int64_t first;   /* exists: the first such instant */
    int64_t resume;  /* the wall time to search on from when this one is no trigger */
} Resolved;

/* Map a wall-clock time (seconds of the local calendar) to instants. UTC
 * offsets lie within +-16h; assuming a zone changes its offset at most once
 * in 32 hours, the offsets 16h before and after give every candidate. */
static Resolved
resolve(GTimeZone *tz, int64_t wall)
{
    const int64_t span = 16 * 3600;
    int early = offset_at(tz, wall - span), late = offset_at(tz, wall + span);
    int64_t c1 = wall - early, c2 = wall - late;
    gboolean v1 = offset_at(tz, c1) == early, v2 = offset_at(tz, c2) == late;
    Resolved r = { .resume = wall + 1 };
    if (early == late || (v1 != v2)) {
        r.exists = v1 || v2;
        r.first = v1 ? c1 : c2;
    } else if (v1 && v2) {
        /* shown twice (the clock went back: early > late): the first counts;
         * the wall times shown twice end where the first pass ended */
        int64_t t = transition_between(tz, c1, c2);
        r.exists = TRUE;
        r.first = c1;
        r.resume = MAX(wall + 1, t + early);
    } else {
        /* skipped (the clock went forward: late > early): resume after the gap */
        int64_t t = transition_between(tz, c2, c1);
        r.resume = MAX(wall + 1, t + late);
    }
    return r;
}

int64_t
cairn_calendar_next(const CairnCalendar *cal, int64_t after_unix)
{
    /* beyond YEAR_MAX in every zone: nothing; long before 1970: start there */
    const int64_t max_unix = days_from_civil(YEAR_MAX + 1, 1, 2) * 86400;
    const int64_t min_unix = days_from_civil(YEAR_MIN - 1, 1, 1) * 86400;
    if (after_unix >= max_unix)
        return -1;
    int64_t t0 = MAX(after_unix, min_unix) + 1;
    g_autoptr(GTimeZone) tz = cal->tz ? g_time_zone_ref(cal->tz) : g_time_zone_new_local();
    Civil w;
    civil_from_seconds(t0 + offset_at(tz, t0), &w);
    for (;;) {
        if (!match_from(cal, &w))
            return -1;
        int64_t wall = civil_to_seconds(&w);
        Resolved r = resolve(tz, wall);
        if (r.exists && r.first >= t0)
            return r.first;
        /* skipped by DST, or shown first before t0 (t0 is in its second pass) */
        civil_from_seconds(r.resume, &w);
    }
}
