/* cmd-policy.c - `cairn policy check [FILE...] | list | show NAME`: validate
 * and show the backup policies of $CAIRN_CONFIG_DIR/policies.d. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/virt.h"
#include "cli/cli.h"
#include "policies/policy.h"

#define NEXT_TRIGGERS 3

/* ---- presentation */

/* 600 -> "10min", 7200 -> "2h", 0 -> "0" */
static char *
format_duration(int64_t s)
{
    if (s == 0)
        return g_strdup("0");
    if (s % 86400 == 0)
        return g_strdup_printf("%" G_GINT64_FORMAT "d", s / 86400);
    if (s % 3600 == 0)
        return g_strdup_printf("%" G_GINT64_FORMAT "h", s / 3600);
    if (s % 60 == 0)
        return g_strdup_printf("%" G_GINT64_FORMAT "min", s / 60);
    return g_strdup_printf("%" G_GINT64_FORMAT "s", s);
}

/* local time, as systemd-analyze prints it: "Sun 2026-11-22 04:00:00 CET" */
static char *
format_local(int64_t t)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local(t);
    return dt ? g_date_time_format(dt, "%a %Y-%m-%d %H:%M:%S %Z") : g_strdup("?");
}

/* RFC 3339 in local time: "2026-11-22T04:00:00+01:00" */
static char *
format_local_iso(int64_t t)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local(t);
    return dt ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S%:z") : g_strdup("?");
}

static char *
format_window(const CairnPolicy *p)
{
    if (p->window_start < 0)
        return NULL;
    return g_strdup_printf("%02d:%02d-%02d:%02d", p->window_start / 60, p->window_start % 60,
                           p->window_end / 60, p->window_end % 60);
}

static json_t *
strv_json(char **v)
{
    json_t *a = json_array();
    for (; v && *v; v++)
        json_array_append_new(a, json_string(*v));
    return a;
}

static json_t *
calendars_json(GPtrArray *cals)
{
    json_t *a = json_array();
    for (guint i = 0; cals && i < cals->len; i++) {
        g_autofree char *s = cairn_calendar_to_string(cals->pdata[i]);
        json_array_append_new(a, json_string(s));
    }
    return a;
}

static json_t *
keep_json(const CairnKeepPolicy *k)
{
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "last", k->last, "hourly", k->hourly,
                     "daily", k->daily, "weekly", k->weekly, "monthly", k->monthly, "yearly",
                     k->yearly);
}

static json_t *
policy_json(const CairnPolicy *p)
{
    g_autofree char *window = format_window(p);
    json_t *sched = json_array();
    for (guint i = 0; i < p->schedules->len; i++) {
        g_autofree char *norm = cairn_calendar_to_string(p->schedules->pdata[i]);
        json_array_append_new(sched, json_pack("{s:s, s:s}", "text", p->schedule_text[i],
                                               "normalized", norm));
    }
    return json_pack(
        "{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:s, s:s?, s:I, s:i, s:o,"
        " s:{s:o, s:I, s:o}, s:{s:o, s:i}, s:{s:o, s:I}}",
        "name", p->name, "file", p->path, "domains", strv_json(p->domains), "tags",
        strv_json(p->tags), "disks", strv_json(p->disks), "exclude_disks",
        strv_json(p->exclude_disks), "schedule", sched, "randomized_delay",
        (json_int_t) p->randomized_delay, "dirty_threshold", (json_int_t) p->dirty_threshold,
        "dirty_check_interval", (json_int_t) p->dirty_check_interval, "quiesce", p->quiesce,
        "window", window, "timeout", (json_int_t) p->timeout, "max_jobs", (int) p->max_jobs,
        "keep", keep_json(&p->keep), "push", "targets", strv_json(p->targets), "bwlimit",
        (json_int_t) p->bwlimit, "keep", keep_json(&p->remote_keep), "verify", "schedule",
        calendars_json(p->verify_schedules), "read_data_percent", p->verify_read_data, "gc",
        "schedule", calendars_json(p->gc_schedules), "grace", (json_int_t) p->gc_grace);
}

static char *
keep_text(const CairnKeepPolicy *k)
{
    if (cairn_keep_policy_is_empty(k))
        return g_strdup("keep all");
    const struct { const char *name; int n; } rules[] = {
        { "last", k->last }, { "hourly", k->hourly }, { "daily", k->daily },
        { "weekly", k->weekly }, { "monthly", k->monthly }, { "yearly", k->yearly },
    };
    g_autoptr(GString) s = g_string_new(NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(rules); i++)
        if (rules[i].n)
            g_string_append_printf(s, "%skeep-%s %d", s->len ? ", " : "", rules[i].name,
                                   rules[i].n);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

static char *
calendars_text(GPtrArray *cals)
{
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = 0; i < cals->len; i++) {
        g_autofree char *c = cairn_calendar_to_string(cals->pdata[i]);
        g_string_append_printf(s, "%s%s", i ? "; " : "", c);
    }
    return g_string_free(g_steal_pointer(&s), FALSE);
}

static void
print_policy(const CairnPolicy *p)
{
    g_autofree char *domains = g_strjoinv("; ", p->domains);
    g_autofree char *tags = g_strjoinv("; ", p->tags);
    g_autofree char *disks = g_strjoinv("; ", p->disks);
    g_autofree char *excl = g_strjoinv("; ", p->exclude_disks);
    g_autoptr(GString) sched = g_string_new(NULL);
    for (guint i = 0; i < p->schedules->len; i++) {
        g_autofree char *norm = cairn_calendar_to_string(p->schedules->pdata[i]);
        g_string_append_printf(sched, "%s%s (%s)", i ? "; " : "", p->schedule_text[i], norm);
    }
    g_autofree char *delay = format_duration(p->randomized_delay);
    g_autofree char *dirty = p->dirty_threshold ? cairn_format_size(p->dirty_threshold) : NULL;
    g_autofree char *interval = format_duration(p->dirty_check_interval);
    g_autofree char *window = format_window(p);
    g_autofree char *timeout = format_duration(p->timeout);
    g_autofree char *keep = keep_text(&p->keep);
    g_autofree char *targets = g_strjoinv("; ", p->targets);
    g_autofree char *bw = p->bwlimit ? cairn_format_size(p->bwlimit) : NULL;
    g_autofree char *rkeep = keep_text(&p->remote_keep);
    g_autofree char *vsched = calendars_text(p->verify_schedules);
    g_autofree char *vread = p->verify_read_data < 0 ? g_strdup("structure only")
                             : g_strdup_printf("%d%% of the chunks", p->verify_read_data);
    g_autofree char *gsched = calendars_text(p->gc_schedules);
    g_autofree char *grace = format_duration(p->gc_grace);
    g_autofree char *max_jobs = g_strdup_printf("%u", p->max_jobs);
    const struct { const char *k, *v; } rows[] = {
        { "name", p->name }, { "file", p->path },
        { "domains", *domains ? domains : "-" }, { "tags", *tags ? tags : "-" },
        { "disks", *disks ? disks : "all" }, { "exclude-disks", *excl ? excl : "-" },
        { "schedule", sched->len ? sched->str : "-" },
        { "randomized-delay", delay },
        { "dirty-threshold", dirty ? dirty : "- (no change-driven backups)" },
        { "dirty-check-interval", interval }, { "quiesce", p->quiesce },
        { "window", window ? window : "- (any time)" },
        { "timeout", p->timeout ? timeout : "- (none)" }, { "max-jobs", max_jobs },
        { "retention", keep }, { "push targets", *targets ? targets : "-" },
        { "push bwlimit", bw ? bw : "unlimited" }, { "push retention", rkeep },
        { "verify schedule", *vsched ? vsched : "- (never)" }, { "verify read-data", vread },
        { "gc schedule", *gsched ? gsched : "- (never)" }, { "gc grace", grace },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++)
        printf("%-21s %s\n", rows[i].k, rows[i].v);
}

/* ---- check */

typedef struct {
    char *path;
    CairnPolicy *policy;  /* NULL: invalid */
    GPtrArray *errors;    /* char*, each "FILE:LINE: ..." */
    GPtrArray *warnings;
} Checked;

static void
checked_clear(gpointer data)
{
    Checked *c = data;
    g_free(c->path);
    cairn_policy_free(c->policy);
    g_ptr_array_unref(c->errors);
    g_ptr_array_unref(c->warnings);
}

static void warn(Checked *c, const char *group, const char *key, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
static void
warn(Checked *c, const char *group, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_ptr_array_add(c->warnings, g_strdup_printf("%s:%d: warning: %s", c->path,
                                                 cairn_policy_line(c->policy, group, key), msg));
}

/* names of every domain of the connection, NULL on error */
static GPtrArray *
domain_names(virConnectPtr conn, GError **error)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(conn, &doms, 0);
    if (n < 0) {
        cairn_virt_set_error(error, CAIRN_VIRT_ERROR_FAILED, "cannot list the domains");
        return NULL;
    }
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < n; i++) {
        const char *name = virDomainGetName(doms[i]);
        if (name)
            g_ptr_array_add(names, g_strdup(name));
        virDomainFree(doms[i]);
    }
    free(doms);
    return names;
}

static void
check_domains(Checked *c, GPtrArray *names, const char *uri)
{
    for (char **d = c->policy->domains; *d; d++) {
        gboolean found = FALSE;
        for (guint i = 0; i < names->len && !found; i++)
            found = g_pattern_match_simple(*d, names->pdata[i]);
        if (found)
            continue;
        g_ptr_array_add(names, NULL);
        const char *close = cairn_closest(*d, (const char *const *) names->pdata);
        g_ptr_array_remove_index(names, names->len - 1);
        warn(c, "policy", "domains", "domain '%s' matches no domain on %s%s%s%s", *d, uri,
             close ? " (did you mean '" : "", close ? close : "", close ? "'?)" : "");
    }
}

/* one schedule: normalized form and next triggers (text and JSON) */
static json_t *
describe_schedule(Checked *c, const char *group, const char *label, const char *text,
                  const CairnCalendar *cal, int64_t now, gboolean print)
{
    g_autofree char *norm = cairn_calendar_to_string(cal);
    json_t *next = json_array();
    if (print)
        printf("  %s%s%s%s\n    normalized: %s\n", label, text ? " '" : "", text ? text : "",
               text ? "'" : "", norm);
    int64_t t = now;
    for (int i = 0; i < NEXT_TRIGGERS; i++) {
        t = cairn_calendar_next(cal, t);
        if (t < 0)
            break;
        g_autofree char *local = format_local(t);
        g_autofree char *iso = format_local_iso(t);
        json_array_append_new(next, json_string(iso));
        if (print)
            printf("    %s %s\n", i ? "           " : "next:      ", local);
    }
    if (json_array_size(next) == 0) {
        if (print)
            printf("    next:       never\n");
        warn(c, group, "schedule", "schedule '%s' has no trigger after now: it never runs",
             text ? text : norm);
    }
    return json_pack("{s:s, s:s?, s:s, s:o}", "group", group, "text", text, "normalized", norm,
                     "next", next);
}

static json_t *
describe_schedules(Checked *c, int64_t now, gboolean print)
{
    json_t *all = json_array();
    const CairnPolicy *p = c->policy;
    for (guint i = 0; i < p->schedules->len; i++)
        json_array_append_new(all, describe_schedule(c, "policy", "schedule",
                                                     p->schedule_text[i], p->schedules->pdata[i],
                                                     now, print));
    for (guint i = 0; i < p->verify_schedules->len; i++)
        json_array_append_new(all, describe_schedule(c, "verify", "verify schedule", NULL,
                                                     p->verify_schedules->pdata[i], now, print));
    for (guint i = 0; i < p->gc_schedules->len; i++)
        json_array_append_new(all, describe_schedule(c, "gc", "gc schedule", NULL,
                                                     p->gc_schedules->pdata[i], now, print));
    return all;
}

/* Connect to libvirt when some policy names domains; NULL (and a note in
 * ret_note) when it cannot be reached. */
static GPtrArray *
libvirt_domains(GArray *files, const char *uri, char **ret_uri, char **ret_note)
{
    gboolean wanted = FALSE;
    for (guint i = 0; i < files->len; i++) {
        Checked *c = &g_array_index(files, Checked, i);
        wanted = wanted || (c->policy && c->policy->domains[0]);
    }
    if (!wanted)
        return NULL;
    g_autoptr(GError) gerr = NULL;
    g_autoptr(virConnect) conn = cairn_virt_connect(uri, &gerr);
    GPtrArray *names = conn ? domain_names(conn, &gerr) : NULL;
    if (conn) {
        char *u = virConnectGetURI(conn);
        *ret_uri = g_strdup(u ? u : uri);
        free(u);
    }
    if (!names)
        *ret_note = g_strdup_printf("domain names not checked: %s", gerr->message);
    return names;
}

static int
policy_check(CairnCli *cli, int argc, char **argv)
{
    gboolean json = FALSE;
    g_autofree char *uri = NULL;
    GOptionEntry entries[] = {
        { "connect", 'c', 0, G_OPTION_ARG_STRING, &uri,
          "libvirt URI for the domain check (default: $LIBVIRT_DEFAULT_URI, qemu:///system)",
          "URI" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print the result as JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("[FILE...]");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GPtrArray) paths = NULL;
    if (argc > 1) {
        paths = g_ptr_array_new_with_free_func(g_free);
        for (int i = 1; i < argc; i++)
            g_ptr_array_add(paths, g_strdup(argv[i]));
    } else if (!(paths = cairn_policy_list_files(&gerr))) {
        return cairn_cli_fail(cli, gerr);
    }
    g_autofree char *dir = cairn_policy_dir();
    if (paths->len == 0 && !json)
        fprintf(stderr, "cairn policy: no policy files in '%s' (NAME.conf; see "
                "cairn-policy(5))\n", dir);

    g_autoptr(GArray) files = g_array_sized_new(FALSE, TRUE, sizeof(Checked), paths->len);
    g_array_set_clear_func(files, checked_clear);
    for (guint i = 0; i < paths->len; i++) {
        Checked c = { .path = g_strdup(paths->pdata[i]),
                      .errors = g_ptr_array_new_with_free_func(g_free),
                      .warnings = g_ptr_array_new_with_free_func(g_free) };
        g_autoptr(GError) e = NULL;
        c.policy = cairn_policy_load(c.path, &e);
        if (!c.policy) {
            g_auto(GStrv) lines = g_strsplit(e->message, "\n", -1);
            for (char **l = lines; *l; l++)
                g_ptr_array_add(c.errors, g_strdup(*l));
        }
        g_array_append_val(files, c);
    }

    g_autofree char *conn_uri = NULL, *note = NULL;
    g_autoptr(GPtrArray) names = libvirt_domains(files, uri, &conn_uri, &note);
    if (note)
        fprintf(stderr, "cairn policy: note: %s\n", note);

    int64_t now = cairn_now();
    guint invalid = 0;
    g_autoptr(CairnJson) jfiles = json_array();
    for (guint i = 0; i < files->len; i++) {
        Checked *c = &g_array_index(files, Checked, i);
        json_t *sched = NULL;
        if (c->policy) {
            if (!json)
                printf("%s: ok (policy %s)\n", c->path, c->policy->name);
            if (names)
                check_domains(c, names, conn_uri);
            sched = describe_schedules(c, now, !json);
        } else {
            invalid++;
            if (!json)
                printf("%s: invalid (%u problem%s)\n", c->path, c->errors->len,
                       c->errors->len == 1 ? "" : "s");
        }
        fflush(stdout);
        for (guint e = 0; e < c->errors->len; e++)
            fprintf(stderr, "%s\n", (char *) c->errors->pdata[e]);
        for (guint w = 0; w < c->warnings->len; w++)
            fprintf(stderr, "%s\n", (char *) c->warnings->pdata[w]);
        fflush(stderr);
        g_ptr_array_add(c->errors, NULL);
        g_ptr_array_add(c->warnings, NULL);
        json_array_append_new(jfiles, json_pack("{s:s, s:s?, s:b, s:o, s:o, s:o}", "file",
                                                c->path, "policy",
                                                c->policy ? c->policy->name : NULL, "ok",
                                                c->policy != NULL, "errors",
                                                strv_json((char **) c->errors->pdata),
                                                "warnings",
                                                strv_json((char **) c->warnings->pdata),
                                                "schedules", sched ? sched : json_array()));
    }
    if (json) {
        g_autoptr(CairnJson) o = json_pack("{s:b, s:o, s:{s:s?, s:b, s:s?}}", "ok", invalid == 0,
                                           "files", json_incref(jfiles), "libvirt", "uri",
                                           conn_uri, "checked", names != NULL, "note", note);
        cairn_cli_print_json(o);
    } else if (files->len > 1) {
        printf("%u policy files: %u ok, %u invalid\n", files->len, files->len - invalid,
               invalid);
    }
    return invalid ? 1 : 0;
}

/* ---- list and show */

static int
policy_list(CairnCli *cli, int argc, char **argv)
{
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print the policies as JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    if (argc > 1)
        return cairn_cli_usage(cli, "usage: cairn policy list [--json]");
    g_autoptr(GPtrArray) errors = NULL;
    g_autoptr(GPtrArray) policies = cairn_policy_load_all(&errors);
    g_autoptr(CairnJson) arr = json_array();
    for (guint i = 0; i < policies->len; i++) {
        CairnPolicy *p = policies->pdata[i];
        if (json) {
            json_array_append_new(arr, policy_json(p));
            continue;
        }
        g_autofree char *domains = g_strjoinv(";", p->domains);
        g_autofree char *tags = g_strjoinv(";", p->tags);
        g_autofree char *who = g_strdup_printf("%s%s%s%s", domains, *domains && *tags ? " " : "",
                                               *tags ? "tags:" : "", tags);
        g_autofree char *when = g_strjoinv(";", p->schedule_text);
        g_autofree char *dirty = p->dirty_threshold ? cairn_format_size(p->dirty_threshold)
                                                    : NULL;
        g_autofree char *targets = g_strjoinv(";", p->targets);
        printf("%-16s %-24s %s%s%s%s%s%s\n", p->name, who, when, dirty && *when ? " " : "",
               dirty ? "dirty>" : "", dirty ? dirty : "", *targets ? " -> " : "", targets);
    }
    if (json)
        cairn_cli_print_json(arr);
    for (guint i = 0; i < errors->len; i++)
        fprintf(stderr, "%s\n", ((GError *) errors->pdata[i])->message);
    if (errors->len)
        fprintf(stderr, "cairn policy: %u invalid policy file%s left out; see 'cairn policy "
                "check'\n", errors->len, errors->len == 1 ? "" : "s");
    return errors->len ? 1 : 0;
}

static int
policy_show(CairnCli *cli, int argc, char **argv)
{
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print the policy as JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("NAME|FILE");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    if (argc != 2)
        return cairn_cli_usage(cli, "usage: cairn policy show NAME|FILE [--json]");
    g_autoptr(GError) gerr = NULL;
    g_autoptr(CairnPolicy) p = strchr(argv[1], '/') ? cairn_policy_load(argv[1], &gerr)
                                                    : cairn_policy_lookup(argv[1], &gerr);
    if (!p) {
        fprintf(stderr, "%s\n", gerr->message);
        return 1;
    }
    if (json) {
        g_autoptr(CairnJson) o = policy_json(p);
        cairn_cli_print_json(o);
    } else {
        print_policy(p);
    }
    return 0;
}

int
cairn_cmd_policy(CairnCli *cli, int argc, char **argv)
{
    static const char *const subs[] = { "check", "list", "show", NULL };
    const char *sub = argc > 1 ? argv[1] : "list";
    if (!strcmp(sub, "check"))
        return policy_check(cli, argc - 1, argv + 1);
    if (!strcmp(sub, "list"))
        return policy_list(cli, argc - 1, argv + 1);
    if (!strcmp(sub, "show"))
        return policy_show(cli, argc - 1, argv + 1);
    if (!strcmp(sub, "--json"))
        return policy_list(cli, argc, argv);
    const char *close = cairn_closest(sub, subs);
    cairn_cli_usage(cli, "unknown subcommand '%s'%s%s%s; usage: cairn policy check [FILE...] "
                    "[--connect URI] [--json] | list [--json] | show NAME|FILE [--json]", sub,
                    close ? " (did you mean '" : "", close ? close : "", close ? "'?)" : "");
    return 2;
}
