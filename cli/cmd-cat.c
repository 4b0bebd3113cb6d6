/* cmd-cat.c - `cairn cat OBJECT|config`: decoded content on stdout */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static gboolean
resolve_object(CairnRepo *repo, const char *spec, CairnId *ret, GError **error)
{
    if (cairn_id_from_hex(spec, ret))
        return TRUE;
    if (!cairn_is_hex(spec, 8, CAIRN_ID_HEX_LEN)) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_INVALID,
                    "invalid object '%s': give its id (8 to 64 lowercase hex digits) or 'config'",
                    spec);
        return FALSE;
    }
    g_autofree char *prefix = g_strdup_printf("objects/%.2s/%s", spec, spec);
    g_autoptr(GPtrArray) e = cairn_backend_list(cairn_repo_backend(repo), prefix, error);
    if (!e)
        return FALSE;
    if (e->len != 1) {
        g_set_error(error, CAIRN_REPO_ERROR,
                    e->len ? CAIRN_REPO_ERROR_AMBIGUOUS : CAIRN_REPO_ERROR_NOT_FOUND,
                    e->len ? "object id '%s' is ambiguous: give more digits"
                           : "no object with id '%s'", spec);
        return FALSE;
    }
    return cairn_id_from_hex(strrchr(((CairnBackendEntry *) e->pdata[0])->key, '/') + 1, ret);
}

int
cairn_cmd_cat(CairnCli *cli, int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new("OBJECT|config");
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    if (argc != 2)
        return cairn_cli_usage(cli, "give one object id, or 'config'");
    g_autoptr(GError) gerr = NULL;
    g_autoptr(CairnRepo) repo = cairn_cli_open_repo(cli, &gerr);
    if (!repo)
        return cairn_cli_fail(cli, gerr);
    g_autoptr(GBytes) b = NULL;
    if (!strcmp(argv[1], "config")) {
        b = cairn_backend_get(cairn_repo_backend(repo), "config", &gerr);
    } else {
        CairnId id;
        if (resolve_object(repo, argv[1], &id, &gerr))
            b = cairn_repo_get(repo, &id, NULL, &gerr);
    }
    if (!b)
        return cairn_cli_fail(cli, gerr);
    gsize len;
    const void *data = g_bytes_get_data(b, &len);
    if (!cairn_write_all(STDOUT_FILENO, data, len, "standard output", &gerr))
        return cairn_cli_fail(cli, gerr);
    return 0;
}
