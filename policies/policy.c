/* policy.c - backup policies: policies.d/NAME.conf read with GKeyFile and
 * validated into a CairnPolicy. GKeyFile knows no line numbers, so the text
 * is scanned first: the scan checks the syntax and the group and key names
 * and records the line of every group and key for the messages. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "policies/policy.h"

#define KEEP_KEYS "keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", \
                  "keep-yearly"

static const char *const policy_keys[] = {
    "domains", "tags", "disks", "exclude-disks", "schedule", "randomized-delay",
    "dirty-threshold", "dirty-check-interval", "quiesce", "window", "timeout", "max-jobs", NULL,
};
static const char *const retention_keys[] = { KEEP_KEYS, NULL };
static const char *const push_keys[] = { "targets", "bwlimit", KEEP_KEYS, NULL };
static const char *const verify_keys[] = { "schedule", "read-data", NULL };
static const char *const gc_keys[] = { "schedule", "grace", NULL };
static const char *const group_names[] = { "policy", "retention", "push", "verify", "gc", NULL };
static const char *const *const group_keys[] = { policy_keys, retention_keys, push_keys,
                                                 verify_keys, gc_keys };
static const char *const quiesce_values[] = { "auto", "always", "never", NULL };

/* the state of one load: where the keys are, and the problems so far */
typedef struct {
    const char *path;
    GHashTable *lines; /* "group" or "group/key" -> GINT_TO_POINTER(line) */
    GPtrArray *problems; /* Problem* */
} Loader;

typedef struct {
    int line;
    char *text; /* "PATH:LINE: message" */
} Problem;

static void
problem_free(gpointer data)
{
    Problem *pr = data;
    g_free(pr->text);
    g_free(pr);
}

static gint
problem_cmp(gconstpointer a, gconstpointer b)
{
    const Problem *x = *(Problem *const *) a, *y = *(Problem *const *) b;
    return (x->line > y->line) - (x->line < y->line);
}

static void problem(Loader *l, int line, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void
problem(Loader *l, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    Problem *pr = g_new(Problem, 1);
    pr->line = line;
    pr->text = g_strdup_printf("%s:%d: %s", l->path, line, msg);
    g_ptr_array_add(l->problems, pr);
}

static int
lines_lookup(GHashTable *lines, const char *group, const char *key)
{
    if (lines && key) {
        g_autofree char *k = g_strconcat(group, "/", key, NULL);
        int line = GPOINTER_TO_INT(g_hash_table_lookup(lines, k));
        if (line)
            return line;
    }
    int line = lines ? GPOINTER_TO_INT(g_hash_table_lookup(lines, group)) : 0;
    return line ? line : 1;
}

int
cairn_policy_line(const CairnPolicy *p, const char *group, const char *key)
{
    return lines_lookup(p->lines, group, key);
}

static int
line_of(Loader *l, const char *group, const char *key)
{
    return lines_lookup(l->lines, group, key);
}

static int
group_index(const char *group)
{
    for (int g = 0; group_names[g]; g++)
        if (!strcmp(group_names[g], group))
            return g;
    return -1;
}

/* " (did you mean 'x'?)" or "" */
static char *
suggest(const char *word, const char *const *candidates, const char *open, const char *close)
{
    const char *c = cairn_closest(word, candidates);
    return c ? g_strdup_printf(" (did you mean %s%s%s?)", open, c, close) : g_strdup("");
}

static void
unknown_key(Loader *l, int line, int g, const char *key)
{
    const char *group = group_names[g];
    /* a key of another group first: 'targets' in [policy] is [push]'s, not
     * a misspelled 'tags' */
    g_autoptr(GString) elsewhere = g_string_new(NULL);
    for (int o = 0; group_names[o]; o++)
        if (o != g && g_strv_contains(group_keys[o], key))
            g_string_append_printf(elsewhere, "%s[%s]", elsewhere->len ? " or " : "",
                                   group_names[o]);
    if (elsewhere->len) {
        problem(l, line, "key '%s' does not belong in [%s]: move it to %s", key, group,
                elsewhere->str);
        return;
    }
    g_autofree char *hint = suggest(key, group_keys[g], "'", "'");
    if (*hint) {
        problem(l, line, "unknown key '%s' in [%s]%s", key, group, hint);
        return;
    }
    g_autofree char *known = g_strjoinv(", ", (char **) group_keys[g]);
    problem(l, line, "unknown key '%s' in [%s] (its keys are: %s)", key, group, known);
}

/* Check the syntax line by line, the names of groups and keys, and that no
 * key is given twice; record where each group and key is. FALSE when the
 * text is not a key file at all. */
static gboolean
scan(Loader *l, const char *text)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_autofree char *group = NULL;
    int g = -1;
    gboolean syntax_ok = TRUE;
    for (int n = 0; lines[n]; n++) {
        int line = n + 1;
        char *s = g_strstrip(lines[n]);
        if (!*s || *s == '#')
            continue;
        if (*s == '[') {
            size_t len = strlen(s);
            if (s[len - 1] != ']' || len < 3 || strpbrk(s + 1, "[]") != s + len - 1) {
                problem(l, line, "malformed group header '%s': write [NAME] alone on its line",
                        s);
                syntax_ok = FALSE;
                g_free(group);
                group = g_strdup(""); /* its keys are not reported one by one */
                g = -1;
                continue;
            }
            g_free(group);
            group = g_strndup(s + 1, len - 2);
            g = group_index(group);
            if (g < 0) {
                g_autofree char *hint = suggest(group, group_names, "[", "]");
                problem(l, line, "unknown group [%s]%s; the groups are [policy], [retention], "
                        "[push], [verify] and [gc]", group, hint);
            } else if (!g_hash_table_contains(l->lines, group)) {
                g_hash_table_insert(l->lines, g_strdup(group), GINT_TO_POINTER(line));
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            problem(l, line, "'%s' is neither a [group], a KEY = VALUE line nor a # comment", s);
            syntax_ok = FALSE;
            continue;
        }
        g_autofree char *key = g_strndup(s, (gsize) (eq - s));
        g_strstrip(key);
        if (!group) {
            problem(l, line, "'%s' comes before the first group: start the file with [policy]",
                    key);
            syntax_ok = FALSE;
            continue;
        }
        if (!*key) {
            problem(l, line, "a value without a key");
            syntax_ok = FALSE;
            continue;
        }
        if (g < 0)
            continue; /* reported with its group */
        if (!g_strv_contains(group_keys[g], key)) {
            unknown_key(l, line, g, key);
            continue;
        }
        g_autofree char *k = g_strconcat(group, "/", key, NULL);
        int first = GPOINTER_TO_INT(g_hash_table_lookup(l->lines, k));
        if (first) {
            problem(l, line, "'%s' is set twice in [%s] (first on line %d): give it once; "
                    "lists are separated by ';'", key, group, first);
            continue;
        }
        g_hash_table_insert(l->lines, g_steal_pointer(&k), GINT_TO_POINTER(line));
    }
    return syntax_ok;
}

/* The value of group/key: unescaped, without a trailing "# comment" and
 * surrounding white space; NULL when absent or empty. */
static char *
value(Loader *l, GKeyFile *kf, const char *group, const char *key)
{
    if (!g_key_file_has_key(kf, group, key, NULL))
        return NULL;
    g_autoptr(GError) gerr = NULL;
    g_autofree char *v = g_key_file_get_string(kf, group, key, &gerr);
    if (!v) {
        problem(l, line_of(l, group, key), "%s: %s", key, gerr->message);
        return NULL;
    }
    for (char *p = v; *p; p++) {
        if (*p == '#' && (p == v || g_ascii_isspace(p[-1]))) {
            *p = '\0';
            break;
        }
    }
    g_strstrip(v);
    return *v ? g_steal_pointer(&v) : NULL;
}

/* a ';'-separated list, items trimmed, empty ones dropped; never NULL */
static char **
list(Loader *l, GKeyFile *kf, const char *group, const char *key)
{
    g_autofree char *v = value(l, kf, group, key);
    g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) parts = g_strsplit(v ? v : "", ";", -1);
    for (char **p = parts; *p; p++) {
        g_strstrip(*p);
        if (**p)
            g_ptr_array_add(items, g_strdup(*p));
    }
    g_ptr_array_add(items, NULL);
    return (char **) g_ptr_array_free(g_steal_pointer(&items), FALSE);
}

/* FALSE when a value was given and is wrong */
static gboolean
get_size(Loader *l, GKeyFile *kf, const char *group, const char *key, uint64_t *ret)
{
    g_autofree char *v = value(l, kf, group, key);
    g_autoptr(GError) gerr = NULL;
    if (v && !cairn_parse_size(v, ret, &gerr)) {
        problem(l, line_of(l, group, key), "%s: %s", key, gerr->message);
        return FALSE;
    }
    return TRUE;
}

static void
get_duration(Loader *l, GKeyFile *kf, const char *group, const char *key, int64_t min,
             int64_t *ret)
{
    g_autofree char *v = value(l, kf, group, key);
    g_autoptr(GError) gerr = NULL;
    int64_t d;
    if (!v)
        return;
    if (!cairn_parse_duration(v, &d, &gerr))
        problem(l, line_of(l, group, key), "%s: %s", key, gerr->message);
    else if (d < min)
        problem(l, line_of(l, group, key), "%s: %s is too short: at least %" G_GINT64_FORMAT
                "s", key, v, min);
    else
        *ret = d;
}

static void
get_count(Loader *l, GKeyFile *kf, const char *group, const char *key, int min, int max,
          int *ret)
{
    g_autofree char *v = value(l, kf, group, key);
    gint64 n;
    if (!v)
        return;
    if (!g_ascii_string_to_signed(v, 10, min, max, &n, NULL))
        problem(l, line_of(l, group, key), "%s: '%s' is not a whole number from %d to %d", key,
                v, min, max);
    else
        *ret = (int) n;
}

/* calendar expressions; the texts as written go to ret_texts if given */
static GPtrArray *
get_schedules(Loader *l, GKeyFile *kf, const char *group, char ***ret_texts)
{
    g_auto(GStrv) texts = list(l, kf, group, "schedule");
    GPtrArray *cals = g_ptr_array_new_with_free_func((GDestroyNotify) cairn_calendar_free);
    for (char **t = texts; *t; t++) {
        g_autoptr(GError) gerr = NULL;
        CairnCalendar *cal = cairn_calendar_parse(*t, &gerr);
        if (cal)
            g_ptr_array_add(cals, cal);
        else
            problem(l, line_of(l, group, "schedule"), "schedule: %s", gerr->message);
    }
    if (ret_texts)
        *ret_texts = g_steal_pointer(&texts);
    return cals;
}

/* "HH:MM" (0:00 to 23:59, or 24:00 when allow_24) -> minutes after midnight */
static gboolean
parse_hhmm(const char *s, gboolean allow_24, int *ret)
{
    size_t len = strlen(s);
    if ((len != 4 && len != 5) || s[len - 3] != ':')
        return FALSE;
    for (size_t i = 0; i < len; i++)
        if (i != len - 3 && !g_ascii_isdigit(s[i]))
            return FALSE;
    int h = atoi(s), m = atoi(s + len - 2);
    if (m > 59 || h > 24 || (h == 24 && (m || !allow_24)))
        return FALSE;
    *ret = h * 60 + m;
    return TRUE;
}

static void
get_window(Loader *l, GKeyFile *kf, CairnPolicy *p)
{
    g_autofree char *v = value(l, kf, "policy", "window");
    if (!v)
        return;
    g_auto(GStrv) parts = g_strsplit(v, "-", -1);
    int start, end;
    if (g_strv_length(parts) != 2 || !parse_hhmm(g_strstrip(parts[0]), FALSE, &start) ||
        !parse_hhmm(g_strstrip(parts[1]), TRUE, &end)) {
        problem(l, line_of(l, "policy", "window"), "window: '%s' is not HH:MM-HH:MM (e.g. "
                "22:00-06:00, local time; it may wrap midnight)", v);
        return;
    }
    if (start == end) {
        problem(l, line_of(l, "policy", "window"), "window: '%s' is empty: leave 'window' out "
                "to allow any time", v);
        return;
    }
    p->window_start = start;
    p->window_end = end;
}

static void
get_keep(Loader *l, GKeyFile *kf, const char *group, CairnKeepPolicy *keep)
{
    int *fields[] = { &keep->last, &keep->hourly, &keep->daily,
                      &keep->weekly, &keep->monthly, &keep->yearly };
    static const char *const keys[] = { KEEP_KEYS };
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
        get_count(l, kf, group, keys[i], 0, 1000000, fields[i]);
}

static gboolean
has_any_key(GKeyFile *kf, const char *group, const char *const *keys)
{
    for (size_t i = 0; keys[i]; i++)
        if (g_key_file_has_key(kf, group, keys[i], NULL))
            return TRUE;
    return FALSE;
}

static void
get_read_data(Loader *l, GKeyFile *kf, CairnPolicy *p)
{
    g_autofree char *v = value(l, kf, "verify", "read-data");
    double pct;
    if (!v)
        return;
    if (!strcmp(v, "all")) {
        p->verify_read_data = 100;
    } else if (!cairn_parse_percent(v, &pct, NULL) || pct != (double) (int) pct) {
        problem(l, line_of(l, "verify", "read-data"), "read-data: '%s' is neither a whole "
                "percentage from 0%% to 100%% (e.g. 10%%) nor 'all'", v);
    } else {
        p->verify_read_data = (int) pct;
    }
}

static void
check_targets(Loader *l, CairnPolicy *p)
{
    g_autoptr(GPtrArray) names = cairn_remote_list(NULL);
    g_ptr_array_add(names, NULL);
    int line = line_of(l, "push", "targets");
    for (char **t = p->targets; *t; t++) {
        if (!g_strv_contains((const char *const *) names->pdata, *t)) {
            g_autofree char *hint = suggest(*t, (const char *const *) names->pdata, "'", "'");
            g_autofree char *all = g_strjoinv(", ", (char **) names->pdata);
            problem(l, line, "targets: no remote '%s'%s in %s/remotes.d (known: %s); add it "
                    "with 'cairn remote add %s URL'", *t, hint, cairn_config_dir(),
                    *all ? all : "none", *t);
            continue;
        }
        g_autoptr(GError) gerr = NULL;
        g_autoptr(CairnRemote) r = cairn_remote_lookup(*t, &gerr);
        if (!r)
            problem(l, line, "targets: remote '%s' is invalid: %s", *t, gerr->message);
    }
}

static void
check_disks(Loader *l, CairnPolicy *p)
{
    char **lists[] = { p->disks, p->exclude_disks };
    const char *keys[] = { "disks", "exclude-disks" };
    for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
        for (char **d = lists[k]; *d; d++) {
            for (const char *c = *d; *c; c++) {
                if (!g_ascii_isalnum(*c)) {
                    problem(l, line_of(l, "policy", keys[k]), "%s: '%s' is not a disk target "
                            "name (like vda or sdb)", keys[k], *d);
                    break;
                }
            }
        }
    }
    for (char **d = p->exclude_disks; *d; d++)
        if (g_strv_contains((const char *const *) p->disks, *d))
            problem(l, line_of(l, "policy", "exclude-disks"), "exclude-disks: disk '%s' is "
                    "also in 'disks'", *d);
}

static gboolean
valid_name(const char *name)
{
    if (!*name || name[0] == '.' || strlen(name) > 64)
        return FALSE;
    for (const char *c = name; *c; c++)
        if (!g_ascii_isalnum(*c) && *c != '-' && *c != '_' && *c != '.')
            return FALSE;
    return TRUE;
}

/* everything after the scan: values, defaults, cross-checks */
static void
parse(Loader *l, GKeyFile *kf, CairnPolicy *p)
{
    int policy_line = line_of(l, "policy", NULL);
    if (!g_key_file_has_group(kf, "policy"))
        problem(l, 1, "no [policy] group: it names the domains and when they are backed up");
    p->domains = list(l, kf, "policy", "domains");
    p->tags = list(l, kf, "policy", "tags");
    p->disks = list(l, kf, "policy", "disks");
    p->exclude_disks = list(l, kf, "policy", "exclude-disks");
    p->schedules = get_schedules(l, kf, "policy", &p->schedule_text);
    get_duration(l, kf, "policy", "randomized-delay", 0, &p->randomized_delay);
    gboolean dirty_ok = get_size(l, kf, "policy", "dirty-threshold", &p->dirty_threshold);
    get_duration(l, kf, "policy", "dirty-check-interval", 1, &p->dirty_check_interval);
    g_autofree char *quiesce = value(l, kf, "policy", "quiesce");
    if (quiesce && !g_strv_contains(quiesce_values, quiesce)) {
        g_autofree char *hint = suggest(quiesce, quiesce_values, "'", "'");
        problem(l, line_of(l, "policy", "quiesce"), "quiesce: '%s' is not auto, always or "
                "never%s", quiesce, hint);
    } else if (quiesce) {
        g_free(p->quiesce);
        p->quiesce = g_steal_pointer(&quiesce);
    }
    get_window(l, kf, p);
    get_duration(l, kf, "policy", "timeout", 0, &p->timeout);
    int max_jobs = (int) p->max_jobs;
    get_count(l, kf, "policy", "max-jobs", 1, 64, &max_jobs);
    p->max_jobs = (guint) max_jobs;
    check_disks(l, p);

    get_keep(l, kf, "retention", &p->keep);
    p->targets = list(l, kf, "push", "targets");
    get_size(l, kf, "push", "bwlimit", &p->bwlimit);
    static const char *const keep_keys[] = { KEEP_KEYS, NULL };
    if (has_any_key(kf, "push", keep_keys))
        get_keep(l, kf, "push", &p->remote_keep);
    else
        p->remote_keep = p->keep;
    check_targets(l, p);

    p->verify_schedules = get_schedules(l, kf, "verify", NULL);
    get_read_data(l, kf, p);
    p->gc_schedules = get_schedules(l, kf, "gc", NULL);
    get_duration(l, kf, "gc", "grace", 0, &p->gc_grace);

    /* what the values mean together: judged on what was written, so that a
     * misspelt schedule is not also reported as "never runs" */
    g_autofree char *dom = value(l, kf, "policy", "domains");
    g_autofree char *tags = value(l, kf, "policy", "tags");
    g_autofree char *sched = value(l, kf, "policy", "schedule");
    g_autofree char *dirty = value(l, kf, "policy", "dirty-threshold");
    if (g_key_file_has_group(kf, "policy") && !dom && !tags)
        problem(l, policy_line, "[policy] names no domain: give 'domains' (names or globs) "
                "and/or 'tags'");
    if (g_key_file_has_group(kf, "policy") && !sched &&
        (!dirty || (dirty_ok && p->dirty_threshold == 0)))
        problem(l, policy_line, "the policy never runs: give a 'schedule' (e.g. daily) "
                "and/or a 'dirty-threshold'");
}

void
cairn_policy_free(CairnPolicy *p)
{
    if (!p)
        return;
    g_free(p->name);
    g_free(p->path);
    g_strfreev(p->domains);
    g_strfreev(p->tags);
    g_strfreev(p->disks);
    g_strfreev(p->exclude_disks);
    g_strfreev(p->schedule_text);
    g_strfreev(p->targets);
    g_free(p->quiesce);
    if (p->schedules)
        g_ptr_array_unref(p->schedules);
    if (p->verify_schedules)
        g_ptr_array_unref(p->verify_schedules);
    if (p->gc_schedules)
        g_ptr_array_unref(p->gc_schedules);
    if (p->lines)
        g_hash_table_unref(p->lines);
    g_free(p);
}

static CairnPolicy *
policy_new(const char *path)
{
    CairnPolicy *p = g_new0(CairnPolicy, 1);
    g_autofree char *base = g_path_get_basename(path);
    p->name = g_str_has_suffix(base, ".conf") ? g_strndup(base, strlen(base) - 5)
                                               : g_strdup(base);
    p->path = g_strdup(path);
    p->quiesce = g_strdup("auto");
    p->dirty_check_interval = 60;
    p->window_start = p->window_end = -1;
    p->max_jobs = 1;
    p->verify_read_data = -1;
    p->gc_grace = 3600;
    p->lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return p;
}

/* the line of byte 'offset' of text */
static int
line_at(const char *text, size_t offset)
{
    int line = 1;
    for (size_t i = 0; i < offset; i++)
        line += text[i] == '\n';
    return line;
}

CairnPolicy *
cairn_policy_load(const char *path, GError **error)
{
    g_autofree char *text = NULL;
    gsize len = 0;
    g_autoptr(GError) gerr = NULL;
    if (!g_file_get_contents(path, &text, &len, &gerr)) {
        g_set_error(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_NOT_FOUND,
                    "%s: cannot read the policy: %s", path, gerr->message);
        return NULL;
    }
    g_autoptr(CairnPolicy) p = policy_new(path);
    g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(problem_free);
    Loader l = { .path = path, .lines = p->lines, .problems = problems };
    const char *bad_utf8 = NULL;
    if (strlen(text) != len)
        problem(&l, line_at(text, strlen(text)), "the file holds a NUL byte: a policy is text");
    else if (!g_utf8_validate(text, (gssize) len, &bad_utf8))
        problem(&l, line_at(text, (size_t) (bad_utf8 - text)), "invalid UTF-8");
    else if (!valid_name(p->name))
        problem(&l, 1, "'%s' is no valid policy name: name the file with letters, digits, "
                "'-', '_' and '.' (NAME.conf)", p->name);
    /* a byte order mark (editors on other systems write one) is no text */
    const char *body = g_str_has_prefix(text, "\xEF\xBB\xBF") ? text + 3 : text;
    if (!problems->len && scan(&l, body)) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        if (g_key_file_load_from_data(kf, body, len - (gsize) (body - text), G_KEY_FILE_NONE,
                                      &gerr))
            parse(&l, kf, p);
        else
            problem(&l, 1, "%s", gerr->message);
    }
    if (problems->len) {
        g_ptr_array_sort(problems, problem_cmp); /* stable: same line, found first */
        g_autoptr(GString) msg = g_string_new(NULL);
        for (guint i = 0; i < problems->len; i++)
            g_string_append_printf(msg, "%s%s", i ? "\n" : "",
                                   ((Problem *) problems->pdata[i])->text);
        g_set_error_literal(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_INVALID, msg->str);
        return NULL;
    }
    return g_steal_pointer(&p);
}

char *
cairn_policy_dir(void)
{
    return g_build_filename(cairn_config_dir(), "policies.d", NULL);
}

static gint
compare_paths(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

GPtrArray *
cairn_policy_list_files(GError **error)
{
    g_autofree char *dir = cairn_policy_dir();
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GDir) d = g_dir_open(dir, 0, &gerr);
    if (!d) {
        if (g_error_matches(gerr, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return g_steal_pointer(&paths);
        g_set_error(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_NOT_FOUND,
                    "cannot read the policies in '%s': %s", dir, gerr->message);
        return NULL;
    }
    const char *e;
    while ((e = g_dir_read_name(d)))
        if (g_str_has_suffix(e, ".conf") && e[0] != '.')
            g_ptr_array_add(paths, g_build_filename(dir, e, NULL));
    g_ptr_array_sort(paths, compare_paths);
    return g_steal_pointer(&paths);
}

GPtrArray *
cairn_policy_load_all(GPtrArray **ret_errors)
{
    GPtrArray *policies = g_ptr_array_new_with_free_func((GDestroyNotify) cairn_policy_free);
    g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func((GDestroyNotify) g_error_free);
    GError *gerr = NULL;
    g_autoptr(GPtrArray) paths = cairn_policy_list_files(&gerr);
    if (!paths)
        g_ptr_array_add(errors, g_steal_pointer(&gerr));
    for (guint i = 0; paths && i < paths->len; i++) {
        CairnPolicy *p = cairn_policy_load(paths->pdata[i], &gerr);
        if (p)
            g_ptr_array_add(policies, p);
        else
            g_ptr_array_add(errors, g_steal_pointer(&gerr));
    }
    if (ret_errors)
        *ret_errors = g_steal_pointer(&errors);
    return policies;
}

CairnPolicy *
cairn_policy_lookup(const char *name, GError **error)
{
    g_autofree char *dir = cairn_policy_dir();
    g_autofree char *path = g_strdup_printf("%s/%s.conf", dir, name);
    if (valid_name(name) && g_file_test(path, G_FILE_TEST_EXISTS))
        return cairn_policy_load(path, error);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) paths = cairn_policy_list_files(NULL);
    for (guint i = 0; paths && i < paths->len; i++) {
        g_autofree char *base = g_path_get_basename(paths->pdata[i]);
        g_ptr_array_add(names, g_strndup(base, strlen(base) - 5));
    }
    g_ptr_array_add(names, NULL);
    g_autofree char *hint = suggest(name, (const char *const *) names->pdata, "'", "'");
    g_autofree char *all = g_strjoinv(", ", (char **) names->pdata);
    g_set_error(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_NOT_FOUND,
                "no policy '%s' (no %s)%s; policies: %s", name, path, hint,
                *all ? all : "none");
    return NULL;
}

gboolean
cairn_policy_matches(const CairnPolicy *p, const char *domain, const char *const *tags)
{
    for (char **d = p->domains; d && *d; d++)
        if (g_pattern_match_simple(*d, domain))
            return TRUE;
    for (char **t = p->tags; t && *t; t++)
        for (size_t i = 0; tags && tags[i]; i++)
            if (g_pattern_match_simple(*t, tags[i]))
                return TRUE;
    return FALSE;
}

gboolean
cairn_policy_in_window(const CairnPolicy *p, int64_t unix_time)
{
    if (p->window_start < 0 || p->window_end < 0 || p->window_start == p->window_end)
        return TRUE;
    time_t t = (time_t) unix_time;
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return TRUE;
    int m = tm.tm_hour * 60 + tm.tm_min;
    if (p->window_start < p->window_end)
        return m >= p->window_start && m < p->window_end;
    return m >= p->window_start || m < p->window_end; /* wraps midnight */
}

int64_t
cairn_policy_window_open(const CairnPolicy *p, int64_t unix_time)
{
    if (cairn_policy_in_window(p, unix_time))
        return unix_time;
    time_t t = (time_t) unix_time;
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return unix_time;
    /* today's start, else tomorrow's (mktime normalizes the day and a
     * start in a DST gap) */
    for (int day = 0; day < 2; day++) {
        struct tm s = tm;
        s.tm_mday += day;
        s.tm_hour = p->window_start / 60;
        s.tm_min = p->window_start % 60;
        s.tm_sec = 0;
        s.tm_isdst = -1;
        time_t open = mktime(&s);
        if (open != (time_t) -1 && open > t)
            return open;
    }
    return unix_time;
}
