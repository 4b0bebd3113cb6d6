/* cmd-remote.c - `cairn remote add|list|show|test` */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "policies/remote.h"

static json_t *
remote_json(const CairnRemote *r)
{
    return json_pack("{s:s?, s:s?, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:b, s:i, s:I}",
                     "name", r->name, "file", r->path, "url", r->url, "endpoint", r->endpoint,
                     "region", r->region, "style", r->style, "credentials", r->credentials,
                     "ca_file", r->ca_file, "insecure", r->insecure, "parallel",
                     (int) r->parallel, "bwlimit", (json_int_t) r->bwlimit);
}

static int
remote_add(CairnCli *cli, int argc, char **argv)
{
    g_autofree char *endpoint = NULL, *region = NULL, *style = NULL, *creds = NULL, *ca = NULL;
    gboolean insecure = FALSE, force = FALSE;
    GOptionEntry entries[] = {
        { "endpoint", 0, 0, G_OPTION_ARG_STRING, &endpoint, "S3 endpoint URL", "URL" },
        { "region", 0, 0, G_OPTION_ARG_STRING, &region, "S3 region", "REGION" },
        { "style", 0, 0, G_OPTION_ARG_STRING, &style, "path or virtual addressing", "STYLE" },
        { "credentials", 0, 0, G_OPTION_ARG_FILENAME, &creds, "credentials file (mode 0600)",
          "FILE" },
        { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &ca, "CA certificates for TLS", "FILE" },
        { "insecure", 0, 0, G_OPTION_ARG_NONE, &insecure, "do not verify TLS certificates", NULL },
        { "force", 'f', 0, G_OPTION_ARG_NONE, &force, "replace an existing remote", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("NAME URL");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    if (argc != 3)
        return cairn_cli_usage(cli, "usage: cairn remote add NAME URL (s3://BUCKET/PREFIX or "
                               "file:///PATH) [--endpoint URL] [--region R] [--credentials F]");
    if (!g_str_has_prefix(argv[2], "s3://") && !g_str_has_prefix(argv[2], "file://"))
        return cairn_cli_usage(cli, "URL '%s' must start with s3:// or file://", argv[2]);
    if (style && strcmp(style, "path") && strcmp(style, "virtual"))
        return cairn_cli_usage(cli, "--style must be 'path' or 'virtual'");
    /* what can never work is refused now, not at the first push */
    const char *rest = strstr(argv[2], "://") + 3;
    if (g_str_has_prefix(argv[2], "s3://") && (!*rest || *rest == '/'))
        return cairn_cli_usage(cli, "URL '%s' names no bucket: s3://BUCKET[/PREFIX]", argv[2]);
    if (g_str_has_prefix(argv[2], "file://") && *rest != '/')
        return cairn_cli_usage(cli, "URL '%s' is relative: file:///ABSOLUTE/PATH (cairnd runs "
                               "in /)", argv[2]);
    if (endpoint && !g_str_has_prefix(endpoint, "http://") &&
        !g_str_has_prefix(endpoint, "https://"))
        return cairn_cli_usage(cli, "--endpoint '%s' is not a URL: http://HOST:PORT or "
                               "https://HOST", endpoint);
    g_autofree char *creds_abs = creds ? g_canonicalize_filename(creds, NULL) : NULL;
    g_autofree char *ca_abs = ca ? g_canonicalize_filename(ca, NULL) : NULL;
    if (creds_abs && !g_file_test(creds_abs, G_FILE_TEST_IS_REGULAR))
        return cairn_cli_failf(cli, "--credentials '%s': no such file (it holds "
                               "access_key_id = ... and secret_access_key = ..., mode 0600)",
                               creds_abs);
    if (ca_abs && !g_file_test(ca_abs, G_FILE_TEST_IS_REGULAR))
        return cairn_cli_failf(cli, "--ca-file '%s': no such file", ca_abs);
    CairnRemote r = { .name = argv[1], .url = argv[2], .endpoint = endpoint, .region = region,
                      .style = style, .credentials = creds_abs, .ca_file = ca_abs,
                      .insecure = insecure };
    g_autoptr(GError) gerr = NULL;
    if (!cairn_remote_save(&r, force, &gerr))
        return cairn_cli_fail(cli, gerr);
    printf("added remote %s (%s/remotes.d/%s.conf); check it with 'cairn remote test %s'\n",
           argv[1], cairn_config_dir(), argv[1], argv[1]);
    return 0;
}

static int
remote_list(CairnCli *cli, int argc, char **argv, gboolean json)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GPtrArray) names = cairn_remote_list(&gerr);
    g_autoptr(CairnJson) arr = json_array();
    int rc = 0;
    for (guint i = 0; i < names->len; i++) {
        g_autoptr(GError) e = NULL;
        g_autoptr(CairnRemote) r = cairn_remote_lookup(names->pdata[i], &e);
        if (!r) {
            fprintf(stderr, "cairn remote: %s\n", e->message);
            rc = 1;
            continue;
        }
        if (json)
            json_array_append_new(arr, remote_json(r));
        else
            printf("%-16s %s%s%s\n", r->name, r->url, r->endpoint ? " at " : "",
                   r->endpoint ? r->endpoint : "");
    }
    if (json)
        cairn_cli_print_json(arr);
    return rc;
}

static int
remote_show(CairnCli *cli, const char *name, gboolean json)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(CairnRemote) r = cairn_remote_lookup(name, &gerr);
    if (!r)
        return cairn_cli_fail(cli, gerr);
    g_autoptr(CairnJson) o = remote_json(r);
    if (json) {
        cairn_cli_print_json(o);
        return 0;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (json_is_string(v))
            printf("%-12s %s\n", k, json_string_value(v));
        else if (json_is_integer(v))
            printf("%-12s %" JSON_INTEGER_FORMAT "\n", k, json_integer_value(v));
        else if (json_is_boolean(v))
            printf("%-12s %s\n", k, json_is_true(v) ? "true" : "false");
    }
    return 0;
}

static int
remote_test(CairnCli *cli, const char *name, gboolean json)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(CairnRemote) r = cairn_remote_lookup(name, &gerr);
    if (!r)
        return cairn_cli_fail(cli, gerr);
    g_autoptr(CairnJson) steps = json_array();
    gboolean ok = TRUE;
#define STEP(label, expr)                                                                  \
    do {                                                                                   \
        g_autoptr(GError) se = NULL;                                                       \
        GError **error = &se;                                                              \
        gboolean good = ok && (expr);                                                      \
        if (ok) {                                                                          \
            json_array_append_new(steps, json_pack("{s:s, s:b, s:s?}", "step", label,      \
                                                   "ok", good, "error",                    \
                                                   se ? se->message : NULL));              \
            if (!json)                                                                     \
                printf("%-28s %s%s\n", label, good ? "ok" : "FAILED: ",                   \
                       se ? se->message : "");                                             \
        }                                                                                  \
        ok = good;                                                                         \
    } while (0)
    g_autoptr(CairnBackend) b = NULL;
    STEP("reach + credentials", (b = cairn_remote_open_backend(r, TRUE, error)) != NULL &&
                                    cairn_backend_list(b, "locks/", error) != NULL);
    g_autofree char *rnd = cairn_random_hex(8);
    g_autofree char *key = g_strconcat("probes/", rnd, NULL);
    const char probe[] = "cairn remote test probe\n";
    g_autoptr(GBytes) got = NULL;
    STEP("write a probe object", cairn_backend_put(b, key, probe, sizeof probe - 1,
                                                   CAIRN_PUT_IF_ABSENT, NULL, error) &&
                                 cairn_backend_flush(b, error));
    STEP("read it back", (got = cairn_backend_get(b, key, error)) != NULL &&
                         g_bytes_get_size(got) == sizeof probe - 1 &&
                         !memcmp(g_bytes_get_data(got, NULL), probe, sizeof probe - 1));
    STEP("delete it", cairn_backend_remove(b, key, error));
    gboolean exists = FALSE;
    STEP("repository", cairn_backend_exists(b, "config", &exists, error));
    if (ok && !json)
        printf("%-28s %s\n", "", exists ? "holds a cairn repository"
                                        : "empty: the first push creates the repository");
    if (json) {
        g_autoptr(CairnJson) o = json_pack("{s:s, s:b, s:b, s:O}", "remote", name, "ok", ok,
                                           "repository", exists, "steps", steps);
        cairn_cli_print_json(o);
    }
#undef STEP
    if (!ok) {
        fprintf(stderr, "cairn remote test: remote '%s' is not usable (see above)\n", name);
        return 1;
    }
    return 0;
}

int
cairn_cmd_remote(CairnCli *cli, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "list";
    gboolean json = FALSE;
    int words = 0; /* arguments besides the subcommand and --json */
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = TRUE;
        else
            words++;
    }
    if (strcmp(sub, "add") && strcmp(sub, "-h") && strcmp(sub, "--help") &&
        words > (!strcmp(sub, "show") || !strcmp(sub, "test") ? 1 : 0))
        return cairn_cli_usage(cli, "too many arguments: usage: cairn remote list [--json] | "
                               "show NAME [--json] | test NAME [--json]");
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
        printf("usage: cairn remote add NAME URL [--endpoint URL] [--region R] [--style "
               "path|virtual] [--credentials FILE] [--ca-file FILE] [--insecure] [--force]\n"
               "       cairn remote list [--json] | show NAME [--json] | test NAME [--json]\n");
        return 0;
    }
    if (!strcmp(sub, "add"))
        return remote_add(cli, argc - 1, argv + 1);
    if (!strcmp(sub, "list") || !strcmp(sub, "--json"))
        return remote_list(cli, argc, argv, json || !strcmp(sub, "--json"));
    if ((!strcmp(sub, "show") || !strcmp(sub, "test")) && argc >= 3 && argv[2][0] != '-')
        return !strcmp(sub, "show") ? remote_show(cli, argv[2], json)
                                    : remote_test(cli, argv[2], json);
    return cairn_cli_usage(cli, "usage: cairn remote add NAME URL [options] | list [--json] | "
                           "show NAME [--json] | test NAME [--json]");
}
