/* cmd-init.c - `cairn init [--chunk-size SIZE] [--encrypt --key-file FILE]` */
#include "config.h"

#include <stdio.h>

#include "cli/cli.h"

int
cairn_cmd_init(CairnCli *cli, int argc, char **argv)
{
    g_autofree char *chunk = NULL, *key_file = NULL;
    gboolean encrypt = FALSE, json = FALSE;
    GOptionEntry entries[] = {
        { "chunk-size", 0, 0, G_OPTION_ARG_STRING, &chunk,
          "chunk size, a power of two from 64K to 16M (default 1M)", "SIZE" },
        { "encrypt", 0, 0, G_OPTION_ARG_NONE, &encrypt,
          "encrypt with AES-256-GCM under the key in --key-file", NULL },
        { "key-file", 0, 0, G_OPTION_ARG_FILENAME, &key_file,
          "file holding the secret (mode 0600)", "FILE" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print the result as JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- create a repository");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    if (argc > 1)
        return cairn_cli_usage(cli, "unexpected argument '%s' (the location is --repo PATH)",
                               argv[1]);
    const char *kf = key_file ? key_file : cli->key_file;
    if (encrypt && !kf)
        return cairn_cli_usage(cli, "--encrypt needs --key-file FILE (a file of mode 0600 "
                               "holding the secret, e.g. 'head -c 32 /dev/urandom | base64')");
    if (key_file && !encrypt)
        return cairn_cli_usage(cli, "--key-file given without --encrypt: add --encrypt to "
                               "create an encrypted repository");

    CairnRepoInitOptions opts = { .key_file = encrypt ? kf : NULL };
    g_autoptr(GError) gerr = NULL;
    if (chunk) {
        uint64_t cs;
        if (!cairn_parse_size(chunk, &cs, &gerr))
            return cairn_cli_fail(cli, gerr);
        if (cs > CAIRN_CHUNK_SIZE_MAX || cs < CAIRN_CHUNK_SIZE_MIN || (cs & (cs - 1)))
            return cairn_cli_usage(cli, "invalid --chunk-size '%s': must be a power of two "
                                   "from 64K to 16M", chunk);
        opts.chunk_size = (uint32_t) cs;
    }
    if (!cairn_repo_init(cli->repo_location, &opts, &gerr))
        return cairn_cli_fail(cli, gerr);
    g_autoptr(CairnRepo) repo = cairn_repo_open(cli->repo_location, opts.key_file, &gerr);
    if (!repo)
        return cairn_cli_fail(cli, gerr);
    if (json) {
        g_autoptr(CairnJson) o = json_pack("{s:s, s:s, s:I, s:b}", "location",
                                           cli->repo_location, "uuid", cairn_repo_uuid(repo),
                                           "chunk_size", (json_int_t) cairn_repo_chunk_size(repo),
                                           "encrypted", cairn_repo_is_encrypted(repo));
        cairn_cli_print_json(o);
    } else {
        g_autofree char *cs = cairn_format_size(cairn_repo_chunk_size(repo));
        printf("created repository %s at %s (chunk size %s, %s)\n", cairn_repo_uuid(repo),
               cli->repo_location, cs, cairn_repo_is_encrypted(repo) ? "encrypted" : "not encrypted");
    }
    return 0;
}
