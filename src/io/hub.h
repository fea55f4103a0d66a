/* Model download from the Hugging Face hub into the standard HF cache, the layout
 * huggingface_hub uses, so a model fetched by either tool is found by the other:
 *
 *   {cache}/models--{org}--{name}/blobs/{etag}                 file contents (by hash)
 *   {cache}/models--{org}--{name}/blobs/{etag}.incomplete      partial download (resumed)
 *   {cache}/models--{org}--{name}/snapshots/{commit}/{file} -> ../../blobs/{etag}
 *   {cache}/models--{org}--{name}/refs/{revision}              commit hash of the revision
 *
 * cache = HF_HUB_CACHE, else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
 * else ~/.cache/huggingface/hub. Files come from {endpoint}/{repo}/resolve/{revision}/{file}
 * (endpoint: option, else HF_ENDPOINT, else https://huggingface.co). The hub's ETag
 * names the blob: sha256 of the content for LFS files, git blob sha1 for small files;
 * both are checked after download. The library never prints: progress goes through
 * a callback (the CLI draws the bar). */
#ifndef DS_HUB_H
#define DS_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define DS_HUB_DEFAULT_MODEL "deepseek-ai/DeepSeek-OCR"
#define DS_HUB_DEFAULT_ENDPOINT "https://huggingface.co"

/* Called while a file downloads (and once with done == total for each file found in
 * the cache). total is 0 when unknown. Return non-zero to cancel: the partial file
 * is kept and the next call resumes it. */
typedef int (*ds_hub_progress_fn)(void *user, const char *file, uint64_t done, uint64_t total);

typedef struct ds_hub_options {
    const char *revision;        /* branch, tag or commit hash; NULL = "main" */
    int offline;                 /* 1 = no network (also HF_HUB_OFFLINE=1): cache only */
    const char *token;           /* NULL = HF_TOKEN, else the token file (HF_TOKEN_PATH, HF_HOME/token);
                                    "" = anonymous. Sent only to the endpoint's host, never printed */
    const char *endpoint;        /* NULL = HF_ENDPOINT, else DS_HUB_DEFAULT_ENDPOINT */
    const char *cache_dir;       /* NULL = HF_HUB_CACHE / HF_HOME/hub / ~/.cache/huggingface/hub */
    int max_retries;             /* resume attempts after a dropped transfer within one call (0 = none) */
    int timeout_s;               /* connect timeout, and abort when a transfer stalls this long */
    ds_hub_progress_fn progress; /* may be NULL */
    void *progress_user;
} ds_hub_options;

/* revision "main", online, 5 retries, 10 s timeout, everything else from the environment. */
ds_hub_options ds_hub_default_options(void);

/* 1 if s has the shape of a hub repo id "org/name" (letters, digits, '.', '_', '-';
 * no "--" or ".." and not starting or ending with '.' or '-' in either part). */
int ds_hub_is_repo_id(const char *s);

/* The cache directory the options and environment select (not created). */
dsocr_status ds_hub_cache_dir(const ds_hub_options *opt, char *out, size_t out_len, dsocr_error *err);

/* model: an existing local directory (copied to out_dir unchanged) or a hub repo id.
 * Online, an unreachable hub falls back to a complete cached snapshot (as
 * huggingface_hub does); offline (option or HF_HUB_OFFLINE=1) only the cache is used,
 * refs/{revision} naming the snapshot, and the error lists what is missing.
 * A repo id is resolved to its snapshot directory in the cache, downloading what is
 * missing: config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json,
 * then model.safetensors.index.json and the shards it names (model.safetensors when
 * the repo has no index). opt may be NULL (defaults). */
dsocr_status ds_hub_resolve(const char *model, const ds_hub_options *opt,
                            char *out_dir, size_t out_len, dsocr_error *err);

#endif
