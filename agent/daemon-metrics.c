/* daemon-metrics.c - a Prometheus textfile for node_exporter's textfile
 * collector, rewritten (temp + rename) after every job. */
#include "config.h"

#include <string.h>

#include "agent/daemon.h"
#include "common/cleanup.h"
#include "common/util.h"

/* label values: backslash, quote and newline escaped */
static char *
label(const char *v)
{
    GString *s = g_string_new(NULL);
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\' || *p == '"')
            g_string_append_c(s, '\\');
        if (*p == '\n')
            g_string_append(s, "\\n");
        else
            g_string_append_c(s, *p);
    }
    return g_string_free(s, FALSE);
}

static void
metric_help(GString *out, const char *name, const char *type, const char *help)
{
    g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
cairn_daemon_write_metrics(CairnDaemon *d)
{
    if (!d->cfg.metrics_path)
        return;
    static const struct {
        const char *key, *name, *type, *help;
    } per_entry[] = {
        { "last_success", "cairn_backup_last_success_timestamp_seconds", "gauge",
          "End of the last successful backup." },
        { "last_duration", "cairn_backup_last_duration_seconds", "gauge",
          "Duration of the last backup job." },
        { "bytes_read", "cairn_backup_last_bytes_read", "gauge",
          "Bytes read from the domain's disks by the last successful backup." },
        { "bytes_new", "cairn_backup_last_bytes_new", "gauge",
          "Bytes of new chunks the last successful backup stored." },
        { "last_push_bytes", "cairn_push_last_bytes_sent", "gauge",
          "Bytes the last successful push of the domain sent." },
        { "failures", "cairn_backup_consecutive_failures", "gauge",
          "Backups failed in a row (0 after a success)." },
        { "failures_total", "cairn_backup_failures_total", "counter",
          "Failed backups since the state was created." },
        { "push_failures", "cairn_push_consecutive_failures", "gauge",
          "Pushes failed in a row." },
    };
    g_autoptr(GString) out = g_string_new(NULL);
    json_t *entries = json_object_get(d->state, "entries");
    for (size_t m = 0; m < G_N_ELEMENTS(per_entry); m++) {
        metric_help(out, per_entry[m].name, per_entry[m].type, per_entry[m].help);
        const char *key;
        json_t *e;
        json_object_foreach(entries, key, e) {
            const char *dom = json_string_value(json_object_get(e, "domain"));
            json_t *v = json_object_get(e, per_entry[m].key);
            if (!dom || !json_is_integer(v))
                continue;
            g_autofree char *ld = label(dom);
            g_autofree char *lp = label(json_string_value(json_object_get(e, "policy")));
            g_string_append_printf(out, "%s{domain=\"%s\",policy=\"%s\"} %" JSON_INTEGER_FORMAT
                                   "\n", per_entry[m].name, ld, lp, json_integer_value(v));
        }
    }
    metric_help(out, "cairn_backup_last_status", "gauge",
                "1 when the last backup succeeded, 0 when it failed or was cancelled.");
    const char *key;
    json_t *e;
    json_object_foreach(entries, key, e) {
        const char *dom = json_string_value(json_object_get(e, "domain"));
        const char *res = json_string_value(json_object_get(e, "last_result"));
        if (!dom || !res)
            continue;
        g_autofree char *ld = label(dom);
        g_autofree char *lp = label(json_string_value(json_object_get(e, "policy")));
        g_string_append_printf(out, "cairn_backup_last_status{domain=\"%s\",policy=\"%s\"} %d\n",
                               ld, lp, !strcmp(res, "succeeded"));
    }
    metric_help(out, "cairn_jobs_running", "gauge", "Jobs cairnd runs now.");
    g_string_append_printf(out, "cairn_jobs_running %u\n", cairn_daemon_running(d));
    metric_help(out, "cairn_policy_errors", "gauge", "Policy files refused at the last load.");
    g_string_append_printf(out, "cairn_policy_errors %u\n",
                           d->policy_errors ? d->policy_errors->len : 0);
    metric_help(out, "cairn_repository_space_low", "gauge",
                "1 while the repository has less free space than min-free.");
    g_string_append_printf(out, "cairn_repository_space_low %d\n", d->space_problem != NULL);

    g_autoptr(GError) gerr = NULL;
    if (!cairn_write_file_durable(d->cfg.metrics_path, out->str, out->len, 0644, &gerr))
        cairn_daemon_log(G_LOG_LEVEL_WARNING, NULL, NULL, 0, "cannot write the metrics: %s",
                         gerr->message);
}
