/* Hugging Face hub download into the HF cache (see hub.h for the layout).
 *
 * Per file, as huggingface_hub's hf_hub_download does:
 *   1. HEAD {endpoint}/{repo}/resolve/{rev}/{file}, following only relative redirects.
 *      The answer names the commit (X-Repo-Commit), the blob (X-Linked-Etag for LFS
 *      files, else ETag), the size (X-Linked-Size, else Content-Length) and, for LFS
 *      files, where the bytes are (an absolute Location, a CDN).
 *   2. snapshots/{commit}/{file} exists -> done; blobs/{etag} exists -> link it.
 *   3. else GET into blobs/{etag}.incomplete (Range: bytes=N- when part of it is
 *      there), check size and hash, rename to blobs/{etag}, link it.
 * The first file fixes the commit; the others are asked for at that commit so the
 * snapshot is consistent even when the branch moves meanwhile. */
#include "io/hub.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#define HUB_PATH_MAX 4096
#define HUB_MAX_SHARDS 4096
#define HUB_MAX_REDIRECTS 10

/* What dsocr needs from a DeepSeek-OCR repo, before the weights. */
static const char *const hub_base_files[] = {
    "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
};
#define HUB_INDEX_FILE "model.safetensors.index.json"
#define HUB_SINGLE_FILE "model.safetensors"

/* ---- small string and path helpers ----------------------------------------- */

static int env_is_true(const char *name) {
    const char *v = getenv(name);
    if (!v) return 0;
    return !strcasecmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcasecmp(v, "true");
}

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return (v && v[0]) ? v : NULL;
}

/* printf into a fixed buffer; fails (DSOCR_ERR_LIMIT) instead of truncating. */
static dsocr_status bufprintf(dsocr_error *err, char *out, size_t n, const char *fmt, ...) DS_PRINTF(4, 5);
static dsocr_status bufprintf(dsocr_error *err, char *out, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= n) {
        if (n) out[0] = 0;
        return ds_fail(err, DSOCR_ERR_LIMIT, "hub: path or URL longer than %zu bytes", n - 1);
    }
    return DSOCR_OK;
}

static int is_hex(const char *s, size_t n) {
    if (strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++) if (!isxdigit((unsigned char)s[i])) return 0;
    return 1;
}

/* A name that can be one path component: [A-Za-z0-9._-]+, not "." or "..". */
static int is_safe_component(const char *s) {
    if (!s[0] || !strcmp(s, ".") || !strcmp(s, "..")) return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-') return 0;
    return 1;
}

/* A relative path inside the repo ("a/b.json"): no empty, "." or ".." parts, no
 * backslash or control characters. Guards the cache against a hostile index file. */
static int is_safe_relpath(const char *s) {
    if (!s[0] || s[0] == '/' || strlen(s) > 512) return 0;
    const char *part = s;
    for (const char *p = s;; p++) {
        if (*p == '/' || *p == 0) {
            size_t n = (size_t)(p - part);
            if (n == 0 || (n == 1 && part[0] == '.') || (n == 2 && part[0] == '.' && part[1] == '.')) return 0;
            if (*p == 0) break;
            part = p + 1;
        } else if ((unsigned char)*p < 0x20 || *p == '\\' || *p == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static int repo_part_ok(const char *s, size_t n) {
    if (n == 0 || n > 96) return 0;
    if (s[0] == '.' || s[0] == '-' || s[n - 1] == '.' || s[n - 1] == '-') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!isalnum((unsigned char)c) && c != '.' && c != '_' && c != '-') return 0;
        if (i + 1 < n && ((c == '-' && s[i + 1] == '-') || (c == '.' && s[i + 1] == '.'))) return 0;
    }
    return 1;
}

int ds_hub_is_repo_id(const char *s) {
    if (!s) return 0;
    const char *slash = strchr(s, '/');
    if (!slash || strchr(slash + 1, '/')) return 0;
    return repo_part_ok(s, (size_t)(slash - s)) && repo_part_ok(slash + 1, strlen(slash + 1));
}

static dsocr_status home_dir(char *out, size_t n, dsocr_error *err) {
    const char *home = env_nonempty("HOME");
    if (!home) {
        struct passwd *pw = getpwuid(getuid());
        if (pw && pw->pw_dir && pw->pw_dir[0]) home = pw->pw_dir;
    }
    if (!home) return ds_fail(err, DSOCR_ERR_IO, "hub: no home directory (HOME unset): set HF_HUB_CACHE");
    return bufprintf(err, out, n, "%s", home);
}

/* "~/x" -> "$HOME/x", as huggingface_hub's expanduser on its path variables. */
static dsocr_status expand_user(const char *in, char *out, size_t n, dsocr_error *err) {
    if (in[0] == '~' && (in[1] == '/' || in[1] == 0)) {
        char home[HUB_PATH_MAX];
        DS_TRY(home_dir(home, sizeof home, err));
        return bufprintf(err, out, n, "%s%s", home, in + 1);
    }
    return bufprintf(err, out, n, "%s", in);
}

/* HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
static dsocr_status hf_home(char *out, size_t n, dsocr_error *err) {
    const char *v = env_nonempty("HF_HOME");
    if (v) return expand_user(v, out, n, err);
    char base[HUB_PATH_MAX];
    v = env_nonempty("XDG_CACHE_HOME");
    if (v) {
        DS_TRY(expand_user(v, base, sizeof base, err));
    } else {
        char home[HUB_PATH_MAX];
        DS_TRY(home_dir(home, sizeof home, err));
        DS_TRY(bufprintf(err, base, sizeof base, "%s/.cache", home));
    }
    return bufprintf(err, out, n, "%s/huggingface", base);
}

dsocr_status ds_hub_cache_dir(const ds_hub_options *opt, char *out, size_t out_len, dsocr_error *err) {
    const char *v = (opt && opt->cache_dir && opt->cache_dir[0]) ? opt->cache_dir : NULL;
    if (!v) v = env_nonempty("HF_HUB_CACHE");
    if (!v) v = env_nonempty("HUGGINGFACE_HUB_CACHE");   /* the older name, still honoured */
    if (v) return expand_user(v, out, out_len, err);
    char home[HUB_PATH_MAX];
    DS_TRY(hf_home(home, sizeof home, err));
    return bufprintf(err, out, out_len, "%s/hub", home);
}

/* mkdir -p; names the path and the reason on failure. */
static dsocr_status make_dirs(const char *path, dsocr_error *err) {
    char tmp[HUB_PATH_MAX];
    DS_TRY(bufprintf(err, tmp, sizeof tmp, "%s", path));
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
                return ds_fail(err, DSOCR_ERR_IO, "cannot create directory %s: %s", tmp, strerror(errno));
            struct stat st;
            if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode))
                return ds_fail(err, DSOCR_ERR_IO, "cannot create directory %s: a file is in the way", tmp);
            *p = c;
            if (c == 0) break;
        }
    }
    return DSOCR_OK;
}

/* mkdir -p of the folder holding path. */
static dsocr_status make_parent_dirs(const char *path, dsocr_error *err) {
    char dir[HUB_PATH_MAX];
    DS_TRY(bufprintf(err, dir, sizeof dir, "%s", path));
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return DSOCR_OK;
    *slash = 0;
    return make_dirs(dir, err);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);   /* follows symlinks: a dangling one is missing */
}

/* Whole small file (refs, index) into a malloc'd NUL-terminated buffer. */
static char *read_small_file(const char *path, size_t limit, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(limit + 1);
    size_t n = buf ? fread(buf, 1, limit + 1, f) : 0;
    fclose(f);
    if (!buf || n > limit) { free(buf); return NULL; }
    buf[n] = 0;
    if (size) *size = n;
    return buf;
}

/* Writes text to path via a temporary file and rename (readers never see half). */
static dsocr_status write_file_atomic(const char *path, const char *text, dsocr_error *err) {
    char tmp[HUB_PATH_MAX];
    DS_TRY(bufprintf(err, tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()));
    FILE *f = fopen(tmp, "wb");
    if (!f) return ds_fail(err, DSOCR_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ds_fail(err, DSOCR_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    return DSOCR_OK;
}

/* ---- the hub session ------------------------------------------------------- */

typedef struct hub {
    ds_hub_options opt;
    char repo[256];                 /* "org/name" */
    char revision[256];             /* as asked: branch, tag or commit */
    char url_revision[256];         /* what requests use: the revision, then the commit */
    char endpoint[1024];
    char cache[HUB_PATH_MAX];
    char repo_dir[HUB_PATH_MAX];    /* {cache}/models--org--name */
    char lock_dir[HUB_PATH_MAX];    /* {cache}/.locks/models--org--name */
    char commit[128];               /* set by the first answer */
    char token[2048];               /* "" = anonymous; never printed */
    int network_failed;             /* the last failure was the network, not an HTTP answer */
    CURL *curl;
} hub;

/* Token: option, else HF_TOKEN, else the token file huggingface-cli login writes. */
static dsocr_status load_token(hub *h, dsocr_error *err) {
    const char *t = h->opt.token;
    char *file_text = NULL;
    if (!t) t = env_nonempty("HF_TOKEN");
    if (!t) {
        char path[HUB_PATH_MAX];
        const char *v = env_nonempty("HF_TOKEN_PATH");
        if (v) {
            DS_TRY(expand_user(v, path, sizeof path, err));
        } else {
            char home[HUB_PATH_MAX];
            DS_TRY(hf_home(home, sizeof home, err));
            DS_TRY(bufprintf(err, path, sizeof path, "%s/token", home));
        }
        file_text = read_small_file(path, sizeof h->token - 1, NULL);
        t = file_text;
    }
    h->token[0] = 0;
    if (t) {
        while (isspace((unsigned char)*t)) t++;
        size_t n = strlen(t);
        while (n && isspace((unsigned char)t[n - 1])) n--;
        int bad = n >= sizeof h->token;
        for (size_t i = 0; i < n && !bad; i++) bad = (unsigned char)t[i] < 0x20 || t[i] == 0x7f;
        if (!bad) { memcpy(h->token, t, n); h->token[n] = 0; }
        free(file_text);
        if (bad) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "hub: the Hugging Face token is malformed (control characters or too long)");
    }
    return DSOCR_OK;
}

/* Percent-encodes s; keep_slash leaves '/' as is (file paths inside the repo). */
static dsocr_status url_encode(hub *h, const char *s, int keep_slash, char *out, size_t n, dsocr_error *err) {
    size_t used = 0;
    out[0] = 0;
    const char *part = s;
    for (;;) {
        const char *end = keep_slash ? strchr(part, '/') : NULL;
        size_t len = end ? (size_t)(end - part) : strlen(part);
        char *esc = curl_easy_escape(h->curl, part, (int)len);
        if (!esc) return ds_fail(err, DSOCR_ERR_NOMEM, "hub: out of memory encoding a URL");
        size_t k = strlen(esc);
        int fits = used + k + 2 <= n;
        if (fits) { memcpy(out + used, esc, k); used += k; }
        curl_free(esc);
        if (!fits) return ds_fail(err, DSOCR_ERR_LIMIT, "hub: URL longer than %zu bytes", n - 1);
        if (!end) break;
        out[used++] = '/';
        part = end + 1;
    }
    out[used] = 0;
    return DSOCR_OK;
}

static dsocr_status resolve_url(hub *h, const char *file, char *out, size_t n, dsocr_error *err) {
    char rev[512], path[1024];
    DS_TRY(url_encode(h, h->url_revision, 0, rev, sizeof rev, err));
    DS_TRY(url_encode(h, file, 1, path, sizeof path, err));
    return bufprintf(err, out, n, "%s/%s/resolve/%s/%s", h->endpoint, h->repo, rev, path);
}

/* ---- HTTP: headers of one answer --------------------------------------------- */

typedef struct http_answer {
    long status;
    char commit[128];             /* X-Repo-Commit */
    char etag[160];               /* ETag, quotes and W/ removed */
    char linked_etag[160];        /* X-Linked-Etag: the LFS sha256 */
    uint64_t content_length, linked_size;
    int has_content_length, has_linked_size;
    char location[HUB_PATH_MAX];
    char error_code[64];          /* X-Error-Code: RepoNotFound, EntryNotFound, ... */
    char error_message[256];      /* X-Error-Message */
    uint64_t range_start;         /* Content-Range: bytes START-END/TOTAL */
    int has_range;
} http_answer;

static void copy_header_value(char *dst, size_t n, const char *v, size_t len) {
    if (len >= n) len = n - 1;
    memcpy(dst, v, len);
    dst[len] = 0;
}

/* ETag values come as "abc", W/"abc" or abc. */
static void copy_etag(char *dst, size_t n, const char *v, size_t len) {
    if (len >= 2 && v[0] == 'W' && v[1] == '/') { v += 2; len -= 2; }
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') { v++; len -= 2; }
    copy_header_value(dst, n, v, len);
}

static int parse_u64(const char *v, size_t len, uint64_t *out) {
    uint64_t x = 0;
    if (!len) return 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)v[i]) || x > (UINT64_MAX - 9) / 10) return 0;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 1;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *user) {
    http_answer *a = user;
    size_t len = size * nitems;
    if (len >= 5 && !memcmp(data, "HTTP/", 5)) {
        memset(a, 0, sizeof *a);   /* a new answer (redirects give several) */
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon) return len;
    size_t name_len = (size_t)(colon - data);
    const char *v = colon + 1, *end = data + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
    size_t vlen = (size_t)(end - v);
#define IS(name) (name_len == sizeof(name) - 1 && !strncasecmp(data, name, name_len))
    if (IS("X-Repo-Commit")) copy_header_value(a->commit, sizeof a->commit, v, vlen);
    else if (IS("ETag")) copy_etag(a->etag, sizeof a->etag, v, vlen);
    else if (IS("X-Linked-Etag")) copy_etag(a->linked_etag, sizeof a->linked_etag, v, vlen);
    else if (IS("Content-Length")) a->has_content_length = parse_u64(v, vlen, &a->content_length);
    else if (IS("X-Linked-Size")) a->has_linked_size = parse_u64(v, vlen, &a->linked_size);
    else if (IS("Location")) copy_header_value(a->location, sizeof a->location, v, vlen);
    else if (IS("X-Error-Code")) copy_header_value(a->error_code, sizeof a->error_code, v, vlen);
    else if (IS("X-Error-Message")) copy_header_value(a->error_message, sizeof a->error_message, v, vlen);
    else if (IS("Content-Range") && vlen > 6 && !strncasecmp(v, "bytes ", 6)) {
        const char *dash = memchr(v + 6, '-', vlen - 6);
        if (dash) a->has_range = parse_u64(v + 6, (size_t)(dash - (v + 6)), &a->range_start);
    }
#undef IS
    return len;
}

/* Options every request shares. headers is owned by the caller. */
static dsocr_status setup_request(hub *h, const char *url, int with_token, struct curl_slist **headers,
                                  http_answer *ans, dsocr_error *err) {
    CURL *c = h->curl;
    curl_easy_reset(c);   /* keeps the connection cache */
    *headers = NULL;
    char auth[sizeof h->token + 32];
    struct curl_slist *l = curl_slist_append(NULL, "Accept-Encoding: identity");
    if (l && with_token && h->token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", h->token);
        struct curl_slist *l2 = curl_slist_append(l, auth);
        if (!l2) { curl_slist_free_all(l); l = NULL; } else l = l2;
        memset(auth, 0, sizeof auth);
    }
    if (!l) return ds_fail(err, DSOCR_ERR_NOMEM, "hub: out of memory building request headers");
    *headers = l;
    long timeout = h->opt.timeout_s > 0 ? h->opt.timeout_s : 10;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "dsocr/" DSOCR_VERSION);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);        /* a stalled transfer ... */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, timeout);    /* ... is dropped after timeout s */
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, ans);
    memset(ans, 0, sizeof *ans);
    return DSOCR_OK;
}

/* "scheme://host[:port]" part of url, for relative redirects. */
static size_t url_origin_len(const char *url) {
    const char *p = strstr(url, "://");
    if (!p) return 0;
    const char *slash = strchr(p + 3, '/');
    return slash ? (size_t)(slash - url) : strlen(url);
}

/* HEAD the resolve URL, following relative redirects only (renamed repos); an
 * absolute Location is the download URL and is returned in ans->location. */
static dsocr_status head_file(hub *h, const char *file, http_answer *ans, char *final_url, size_t n,
                              dsocr_error *err) {
    char url[HUB_PATH_MAX];
    DS_TRY(resolve_url(h, file, url, sizeof url, err));
    h->network_failed = 0;
    for (int hop = 0;; hop++) {
        struct curl_slist *headers;
        DS_TRY(setup_request(h, url, 1, &headers, ans, err));
        curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, (long)(h->opt.timeout_s > 0 ? h->opt.timeout_s : 10));
        CURLcode rc = curl_easy_perform(h->curl);
        curl_slist_free_all(headers);
        if (rc != CURLE_OK) {
            h->network_failed = 1;
            return ds_fail(err, DSOCR_ERR_IO, "network error for %s: %s", url, curl_easy_strerror(rc));
        }
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &ans->status);
        int relative = ans->status >= 300 && ans->status < 400 && ans->location[0] == '/' && ans->location[1] != '/';
        if (!relative) break;
        if (hop >= HUB_MAX_REDIRECTS) return ds_fail(err, DSOCR_ERR_IO, "too many redirects for %s", url);
        char next[HUB_PATH_MAX];
        DS_TRY(bufprintf(err, next, sizeof next, "%.*s%s", (int)url_origin_len(url), url, ans->location));
        memcpy(url, next, sizeof url);
    }
    return bufprintf(err, final_url, n, "%s", url);
}

/* One message per failing HTTP status, naming the URL and what to do. */
static dsocr_status http_error(hub *h, const char *file, const char *url, const http_answer *a, dsocr_error *err) {
    char detail[300] = "";
    if (a->error_message[0]) snprintf(detail, sizeof detail, " (%s)", a->error_message);
    if (a->status == 401 || a->status == 403) {
        const char *hint = h->token[0]
            ? "the Hugging Face token in use (HF_TOKEN or the token file) has no access to it; "
              "for a gated repo, accept its terms on the hub first"
            : "the repo may be private or gated, or may not exist: set HF_TOKEN to a token with access";
        return ds_fail(err, DSOCR_ERR_IO, "HTTP %ld for %s%s: %s", a->status, url, detail, hint);
    }
    if (a->status == 404) {
        if (!strcmp(a->error_code, "RepoNotFound"))
            return ds_fail(err, DSOCR_ERR_IO, "HTTP 404 for %s%s: repository %s not found", url, detail, h->repo);
        if (!strcmp(a->error_code, "RevisionNotFound"))
            return ds_fail(err, DSOCR_ERR_IO, "HTTP 404 for %s%s: revision '%s' not found in %s", url, detail,
                           h->revision, h->repo);
        return ds_fail(err, DSOCR_ERR_IO, "HTTP 404 for %s%s: file %s not found in %s at revision '%s'", url,
                       detail, file, h->repo, h->revision);
    }
    return ds_fail(err, DSOCR_ERR_IO, "HTTP %ld for %s%s", a->status, url, detail);
}

/* ---- download of one blob ----------------------------------------------------- */

typedef enum hash_kind { HASH_NONE, HASH_SHA256, HASH_GIT_SHA1 } hash_kind;

typedef struct download {
    hub *h;
    const char *file;         /* repo path, for the progress callback */
    FILE *out;                /* blobs/{etag}.incomplete, append mode */
    EVP_MD_CTX *md;           /* running hash of everything in out */
    hash_kind kind;
    uint64_t total;           /* expected size (0 = unknown) */
    uint64_t done;            /* bytes in out */
    uint64_t range_from;      /* what this attempt asked for */
    int body_started;         /* first body byte of this attempt seen */
    int write_errno;          /* set when writing the file failed */
    int bad_range;            /* the server answered a different range */
    int too_long;             /* the server sent more than it announced */
    int cancelled;
    http_answer *ans;
} download;

static int hash_reset(download *d) {
    if (d->kind == HASH_NONE) return 1;
    if (!EVP_DigestInit_ex(d->md, d->kind == HASH_SHA256 ? EVP_sha256() : EVP_sha1(), NULL)) return 0;
    if (d->kind == HASH_GIT_SHA1) {
        /* git hashes "blob <size>\0" followed by the content */
        char head[48];
        int n = snprintf(head, sizeof head, "blob %llu", (unsigned long long)d->total);
        if (!EVP_DigestUpdate(d->md, head, (size_t)n + 1)) return 0;
    }
    return 1;
}

static void hash_hex(download *d, char *out /* >= 65 */) {
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = 0;
    if (!EVP_DigestFinal_ex(d->md, dig, &n)) return;
    for (unsigned int i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", dig[i]);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user) {
    download *d = user;
    size_t len = size * nmemb;
    if (!d->body_started) {
        d->body_started = 1;
        long status = 0;
        curl_easy_getinfo(d->h->curl, CURLINFO_RESPONSE_CODE, &status);
        if (d->range_from > 0 && status == 200) {
            /* the server ignored Range: start over */
            if (fflush(d->out) != 0 || ftruncate(fileno(d->out), 0) != 0) { d->write_errno = errno; return 0; }
            d->done = 0;
            if (!hash_reset(d)) { d->write_errno = ENOMEM; return 0; }
        } else if (d->range_from > 0 && (status != 206 || !d->ans->has_range || d->ans->range_start != d->range_from)) {
            d->bad_range = 1;
            return 0;
        }
    }
    if (d->total && len > d->total - d->done) { d->too_long = 1; return 0; }
    if (fwrite(data, 1, len, d->out) != len) { d->write_errno = errno ? errno : EIO; return 0; }
    if (d->kind != HASH_NONE && !EVP_DigestUpdate(d->md, data, len)) { d->write_errno = ENOMEM; return 0; }
    d->done += len;
    if (d->h->opt.progress && d->h->opt.progress(d->h->opt.progress_user, d->file, d->done, d->total)) {
        d->cancelled = 1;
        return 0;
    }
    return len;
}

/* Feeds what an earlier call left in the .incomplete file into the hash. */
static int hash_existing(download *d) {
    char buf[1 << 16];
    if (fseeko(d->out, 0, SEEK_SET) != 0) return 0;
    size_t n;
    d->done = 0;
    while ((n = fread(buf, 1, sizeof buf, d->out)) > 0) {
        if (d->kind != HASH_NONE && !EVP_DigestUpdate(d->md, buf, n)) return 0;
        d->done += n;
    }
    return !ferror(d->out);
}

static int retryable(CURLcode rc) {
    return rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
           rc == CURLE_GOT_NOTHING || rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_COULDNT_CONNECT;
}

/* Opens blob.incomplete for appending and feeds what an earlier call left there
 * into the hash; drops it when it is longer than the file can be. */
static dsocr_status open_partial(download *d, const char *part, dsocr_error *err) {
    d->out = fopen(part, "a+b");
    if (!d->out) return ds_fail(err, DSOCR_ERR_IO, "cannot write %s: %s", part, strerror(errno));
    if (!hash_reset(d) || !hash_existing(d))
        return ds_fail(err, DSOCR_ERR_IO, "cannot read back %s: %s", part, strerror(errno));
    if (d->total && d->done > d->total) {
        if (ftruncate(fileno(d->out), 0) != 0 || !hash_reset(d))
            return ds_fail(err, DSOCR_ERR_IO, "cannot truncate %s: %s", part, strerror(errno));
        d->done = 0;
    }
    return DSOCR_OK;
}

/* Fails early when the folder of path has less room than the bytes still to come. */
static dsocr_status check_space(const char *path, const char *file, uint64_t needed, dsocr_error *err) {
    char dir[HUB_PATH_MAX];
    struct statvfs vfs;
    DS_TRY(bufprintf(err, dir, sizeof dir, "%s", path));
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    if (statvfs(dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < needed)
        return ds_fail(err, DSOCR_ERR_IO, "not enough disk space in %s for %s: %llu bytes needed, %llu free", dir,
                       file, (unsigned long long)needed, (unsigned long long)vfs.f_bavail * vfs.f_frsize);
    return DSOCR_OK;
}

/* GETs the rest of the file (Range: bytes=done-) into d->out, resuming after a
 * dropped connection up to max_retries times. */
static dsocr_status get_rest(hub *h, download *d, const char *url, const char *part, dsocr_error *err) {
    int max_retries = h->opt.max_retries > 0 ? h->opt.max_retries : 0;
    /* the token goes only to the hub itself, never to a CDN on another host */
    size_t origin = url_origin_len(h->endpoint);
    int same_host = origin && !strncmp(url, h->endpoint, origin) && (url[origin] == '/' || url[origin] == 0);
    for (int attempt = 0; !(d->total && d->done >= d->total); attempt++) {
        struct curl_slist *headers;
        DS_TRY(setup_request(h, url, same_host, &headers, d->ans, err));
        char range[64];
        d->range_from = d->done;
        d->body_started = 0;
        if (d->done > 0) {
            snprintf(range, sizeof range, "%llu-", (unsigned long long)d->done);
            curl_easy_setopt(h->curl, CURLOPT_RANGE, range);
        }
        curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h->curl, CURLOPT_MAXREDIRS, (long)HUB_MAX_REDIRECTS);
        curl_easy_setopt(h->curl, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, d);
        CURLcode rc = curl_easy_perform(h->curl);
        curl_slist_free_all(headers);
        if (fflush(d->out) != 0 && !d->write_errno) d->write_errno = errno;
        if (rc == CURLE_OK && !d->write_errno) {
            if (!d->total || d->done >= d->total) return DSOCR_OK;
            rc = CURLE_PARTIAL_FILE;   /* a short answer without error: resume */
        }
        if (d->cancelled)
            return ds_fail(err, DSOCR_ERR_CANCELLED, "download of %s cancelled at %llu bytes (kept in %s to resume)",
                           d->file, (unsigned long long)d->done, part);
        if (d->write_errno)
            return ds_fail(err, DSOCR_ERR_IO, "cannot write %s: %s (disk full or cache not writable?)", part,
                           strerror(d->write_errno));
        if (d->too_long)
            return ds_fail(err, DSOCR_ERR_IO, "%s from %s: the server sent more than the %llu bytes it announced",
                           d->file, url, (unsigned long long)d->total);
        if (d->bad_range)
            return ds_fail(err, DSOCR_ERR_IO, "resuming %s: asked %s for bytes %llu- and got another range",
                           d->file, url, (unsigned long long)d->range_from);
        if (rc == CURLE_HTTP_RETURNED_ERROR) {
            curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &d->ans->status);
            if (d->ans->status == 416 && !d->total && d->done > 0) return DSOCR_OK;   /* had all of it already */
            return http_error(h, d->file, url, d->ans, err);
        }
        if (!retryable(rc) || attempt >= max_retries)
            return ds_fail(err, DSOCR_ERR_IO,
                           "network error downloading %s from %s: %s after %d attempt%s (%llu of %llu bytes kept in "
                           "%s; run again to resume)", d->file, url, curl_easy_strerror(rc), attempt + 1,
                           attempt ? "s" : "", (unsigned long long)d->done, (unsigned long long)d->total, part);
    }
    return DSOCR_OK;
}

/* Checks size and hash of the finished .incomplete file and renames it to blob;
 * a bad download is deleted. */
static dsocr_status finish_blob(download *d, const char *url, const char *etag, const char *part, const char *blob,
                                dsocr_error *err) {
    int closed = fclose(d->out);
    d->out = NULL;
    if (closed != 0) return ds_fail(err, DSOCR_ERR_IO, "cannot write %s: %s (disk full?)", part, strerror(errno));
    if (d->total && d->done != d->total) {
        unlink(part);
        return ds_fail(err, DSOCR_ERR_IO, "size mismatch for %s from %s: expected %llu bytes, got %llu; the bad "
                       "download was deleted", d->file, url, (unsigned long long)d->total, (unsigned long long)d->done);
    }
    if (d->kind != HASH_NONE) {
        char got[2 * EVP_MAX_MD_SIZE + 1];
        hash_hex(d, got);
        if (strcasecmp(got, etag)) {
            unlink(part);
            return ds_fail(err, DSOCR_ERR_IO, "checksum mismatch for %s from %s: expected %s %s, got %s; the bad "
                           "download was deleted", d->file, url, d->kind == HASH_SHA256 ? "sha256" : "git sha1",
                           etag, got);
        }
    }
    if (rename(part, blob) != 0)
        return ds_fail(err, DSOCR_ERR_IO, "cannot rename %s to %s: %s", part, blob, strerror(errno));
    return DSOCR_OK;
}

/* GET url into blob.incomplete, resuming what is there, then check and rename to
 * blob. The etag says which hash to check: 64 hex = sha256 (LFS), 40 hex = git sha1. */
static dsocr_status download_blob(hub *h, const char *file, const char *url, const char *etag, uint64_t size,
                                  int has_size, const char *blob, dsocr_error *err) {
    char part[HUB_PATH_MAX];
    DS_TRY(bufprintf(err, part, sizeof part, "%s.incomplete", blob));
    http_answer ans;
    download d = {.h = h, .file = file, .total = has_size ? size : 0, .ans = &ans};
    d.kind = is_hex(etag, 64) ? HASH_SHA256 : (is_hex(etag, 40) && has_size) ? HASH_GIT_SHA1 : HASH_NONE;
    d.md = EVP_MD_CTX_new();
    if (!d.md) return ds_fail(err, DSOCR_ERR_NOMEM, "hub: out of memory for a hash context");
    dsocr_status st = open_partial(&d, part, err);
    if (st == DSOCR_OK && d.total > d.done) st = check_space(blob, file, d.total - d.done, err);
    if (st == DSOCR_OK) st = get_rest(h, &d, url, part, err);
    if (st == DSOCR_OK) st = finish_blob(&d, url, etag, part, blob, err);
    if (d.out) fclose(d.out);
    EVP_MD_CTX_free(d.md);
    return st;
}

/* snapshots/{commit}/{file} -> ../../blobs/{etag} (one more ../ per folder in file). */
static dsocr_status link_pointer(const char *pointer, const char *file, const char *etag, dsocr_error *err) {
    char target[HUB_PATH_MAX] = "";
    size_t used = 0;
    for (const char *p = file; *p; p++) if (*p == '/') used += (size_t)snprintf(target + used, sizeof target - used, "../");
    DS_TRY(bufprintf(err, target + used, sizeof target - used, "../../blobs/%s", etag));
    DS_TRY(make_parent_dirs(pointer, err));
    unlink(pointer);   /* a dangling link from an old, deleted blob */
    if (symlink(target, pointer) != 0 && !(errno == EEXIST && file_exists(pointer)))
        return ds_fail(err, DSOCR_ERR_IO, "cannot create link %s: %s", pointer, strerror(errno));
    return DSOCR_OK;
}

/* Exclusive lock on .locks/models--org--name/{etag}.lock so that two processes
 * never write one blob at once. Returns the fd, or -1 with err set. */
static int lock_blob(hub *h, const char *etag, dsocr_error *err) {
    char path[HUB_PATH_MAX];
    if (make_dirs(h->lock_dir, err) != DSOCR_OK) return -1;
    if (bufprintf(err, path, sizeof path, "%s/%s.lock", h->lock_dir, etag) != DSOCR_OK) return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) { ds_fail(err, DSOCR_ERR_IO, "cannot create lock %s: %s", path, strerror(errno)); return -1; }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        ds_fail(err, DSOCR_ERR_IO, "cannot lock %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void report_cached(hub *h, const char *file, const char *path) {
    struct stat st;
    if (h->opt.progress && stat(path, &st) == 0)
        h->opt.progress(h->opt.progress_user, file, (uint64_t)st.st_size, (uint64_t)st.st_size);
}

/* Makes snapshots/{commit}/{file} present. required = 0: a 404 (EntryNotFound) sets
 * *found = 0 and is not an error. */
static dsocr_status fetch_file(hub *h, const char *file, int required, int *found, dsocr_error *err) {
    http_answer a;
    char url[HUB_PATH_MAX];
    *found = 0;
    DS_TRY(head_file(h, file, &a, url, sizeof url, err));
    int entry_missing = a.status == 404 && (!a.error_code[0] || !strcmp(a.error_code, "EntryNotFound"));
    if (entry_missing && !required) {
        /* as huggingface_hub: remember the absence under .no_exist/{commit}/ */
        char marker[HUB_PATH_MAX];
        const char *commit = a.commit[0] ? a.commit : h->commit;
        if (is_safe_component(commit) &&
            bufprintf(NULL, marker, sizeof marker, "%s/.no_exist/%s/%s", h->repo_dir, commit, file) == DSOCR_OK &&
            make_parent_dirs(marker, NULL) == DSOCR_OK) {
            FILE *f = fopen(marker, "wb");
            if (f) fclose(f);
        }
        return DSOCR_OK;
    }
    if (a.status >= 400 || a.status < 200) return http_error(h, file, url, &a, err);

    const char *etag = a.linked_etag[0] ? a.linked_etag : a.etag;
    uint64_t size = a.has_linked_size ? a.linked_size : a.content_length;
    int has_size = a.has_linked_size || a.has_content_length;
    if (!a.commit[0] || !etag[0])
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s answered without %s: not a Hugging Face hub (check HF_ENDPOINT "
                       "and proxy settings)", url, !a.commit[0] ? "X-Repo-Commit" : "ETag");
    if (!is_safe_component(a.commit) || !is_safe_component(etag))
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: commit '%s' or ETag '%s' is not a plain name", url, a.commit, etag);
    if (!h->commit[0]) {
        snprintf(h->commit, sizeof h->commit, "%s", a.commit);
        snprintf(h->url_revision, sizeof h->url_revision, "%s", a.commit);
    } else if (strcmp(h->commit, a.commit)) {
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: the hub answered commit %s, but %s before", url, a.commit, h->commit);
    }

    char pointer[HUB_PATH_MAX], blob[HUB_PATH_MAX], blobs_dir[HUB_PATH_MAX];
    DS_TRY(bufprintf(err, pointer, sizeof pointer, "%s/snapshots/%s/%s", h->repo_dir, h->commit, file));
    DS_TRY(bufprintf(err, blobs_dir, sizeof blobs_dir, "%s/blobs", h->repo_dir));
    DS_TRY(bufprintf(err, blob, sizeof blob, "%s/%s", blobs_dir, etag));
    *found = 1;
    if (file_exists(pointer)) { report_cached(h, file, pointer); return DSOCR_OK; }
    if (!file_exists(blob)) {
        DS_TRY(make_dirs(blobs_dir, err));
        int lock = lock_blob(h, etag, err);
        if (lock < 0) return err ? err->code : DSOCR_ERR_IO;
        dsocr_status st = DSOCR_OK;
        if (!file_exists(blob)) {   /* another process may have finished it while we waited */
            const char *from = (a.location[0] && strstr(a.location, "://")) ? a.location : url;
            st = download_blob(h, file, from, etag, size, has_size, blob, err);
        }
        close(lock);
        DS_TRY(st);
    } else {
        report_cached(h, file, blob);
    }
    return link_pointer(pointer, file, etag, err);
}

/* ---- the file list --------------------------------------------------------------- */

typedef struct name_list {
    char **names;
    int n, cap;
} name_list;

static void names_free(name_list *l) {
    for (int i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    l->names = NULL;
    l->n = l->cap = 0;
}

static dsocr_status names_add_unique(name_list *l, const char *s, dsocr_error *err) {
    for (int i = 0; i < l->n; i++) if (!strcmp(l->names[i], s)) return DSOCR_OK;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        char **p = realloc(l->names, (size_t)cap * sizeof *p);
        if (!p) return ds_fail(err, DSOCR_ERR_NOMEM, "hub: out of memory listing shards");
        l->names = p;
        l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(s))) return ds_fail(err, DSOCR_ERR_NOMEM, "hub: out of memory listing shards");
    l->n++;
    return DSOCR_OK;
}

/* The shard files an index's weight_map names, in first-seen order. */
static dsocr_status index_shards(const char *index_path, name_list *out, dsocr_error *err) {
    size_t n;
    char *text = read_small_file(index_path, 64u << 20, &n);
    if (!text) return ds_fail(err, DSOCR_ERR_IO, "cannot read %s", index_path);
    cJSON *root = cJSON_ParseWithLength(text, n);
    free(text);
    cJSON *map = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    dsocr_status st = DSOCR_OK;
    if (!cJSON_IsObject(map)) {
        st = ds_fail(err, DSOCR_ERR_FORMAT, "%s: no \"weight_map\" object", index_path);
    } else {
        const cJSON *e;
        cJSON_ArrayForEach(e, map) {
            if (!cJSON_IsString(e) || !is_safe_relpath(e->valuestring)) {
                st = ds_fail(err, DSOCR_ERR_FORMAT, "%s: tensor %s maps to a bad file name", index_path,
                             e->string ? e->string : "?");
                break;
            }
            if ((st = names_add_unique(out, e->valuestring, err)) != DSOCR_OK) break;
            if (out->n > HUB_MAX_SHARDS) { st = ds_fail(err, DSOCR_ERR_LIMIT, "%s: more than %d shards", index_path, HUB_MAX_SHARDS); break; }
        }
        if (st == DSOCR_OK && out->n == 0) st = ds_fail(err, DSOCR_ERR_FORMAT, "%s: empty weight_map", index_path);
    }
    cJSON_Delete(root);
    return st;
}

static dsocr_status download_all(hub *h, dsocr_error *err) {
    int found;
    for (size_t i = 0; i < sizeof hub_base_files / sizeof hub_base_files[0]; i++)
        DS_TRY(fetch_file(h, hub_base_files[i], 1, &found, err));
    DS_TRY(fetch_file(h, HUB_INDEX_FILE, 0, &found, err));
    if (!found) return fetch_file(h, HUB_SINGLE_FILE, 1, &found, err);
    char index[HUB_PATH_MAX];
    DS_TRY(bufprintf(err, index, sizeof index, "%s/snapshots/%s/%s", h->repo_dir, h->commit, HUB_INDEX_FILE));
    name_list shards = {0};
    dsocr_status st = index_shards(index, &shards, err);
    for (int i = 0; st == DSOCR_OK && i < shards.n; i++) st = fetch_file(h, shards.names[i], 1, &found, err);
    names_free(&shards);
    return st;
}

/* ---- offline: the cache alone ----------------------------------------------------- */

/* refs/{revision} -> commit (a commit hash revision with a snapshot is used as is). */
static dsocr_status cached_commit(hub *h, dsocr_error *err) {
    char path[HUB_PATH_MAX];
    struct stat st;
    if (is_hex(h->revision, 40)) {
        DS_TRY(bufprintf(err, path, sizeof path, "%s/snapshots/%s", h->repo_dir, h->revision));
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            memcpy(h->commit, h->revision, 41);   /* 40 hex digits and the NUL */
            return DSOCR_OK;
        }
    }
    DS_TRY(bufprintf(err, path, sizeof path, "%s/refs/%s", h->repo_dir, h->revision));
    char *text = read_small_file(path, 256, NULL);
    if (!text) return ds_fail(err, DSOCR_ERR_IO, "%s (revision '%s') is not in the cache %s: no %s", h->repo,
                              h->revision, h->cache, path);
    size_t n = strlen(text);
    while (n && isspace((unsigned char)text[n - 1])) text[--n] = 0;
    int ok = is_safe_component(text) && n < sizeof h->commit;
    if (ok) snprintf(h->commit, sizeof h->commit, "%s", text);
    free(text);
    if (!ok) return ds_fail(err, DSOCR_ERR_FORMAT, "%s: not a commit hash", path);
    return DSOCR_OK;
}

static void append_missing(char *list, size_t n, const char *name) {
    size_t used = strlen(list);
    if (used + 1 >= n) return;
    snprintf(list + used, n - used, "%s%s", used ? ", " : "", name);
}

static dsocr_status resolve_from_cache(hub *h, dsocr_error *err) {
    DS_TRY(cached_commit(h, err));
    char snap[HUB_PATH_MAX], path[HUB_PATH_MAX], missing[700] = "";
    DS_TRY(bufprintf(err, snap, sizeof snap, "%s/snapshots/%s", h->repo_dir, h->commit));
    for (size_t i = 0; i < sizeof hub_base_files / sizeof hub_base_files[0]; i++) {
        DS_TRY(bufprintf(err, path, sizeof path, "%s/%s", snap, hub_base_files[i]));
        if (!file_exists(path)) append_missing(missing, sizeof missing, hub_base_files[i]);
        else report_cached(h, hub_base_files[i], path);
    }
    DS_TRY(bufprintf(err, path, sizeof path, "%s/%s", snap, HUB_INDEX_FILE));
    if (file_exists(path)) {
        name_list shards = {0};
        dsocr_status st = index_shards(path, &shards, err);
        for (int i = 0; st == DSOCR_OK && i < shards.n; i++) {
            st = bufprintf(err, path, sizeof path, "%s/%s", snap, shards.names[i]);
            if (st == DSOCR_OK && !file_exists(path)) append_missing(missing, sizeof missing, shards.names[i]);
            else if (st == DSOCR_OK) report_cached(h, shards.names[i], path);
        }
        names_free(&shards);
        DS_TRY(st);
    } else {
        DS_TRY(bufprintf(err, path, sizeof path, "%s/%s", snap, HUB_SINGLE_FILE));
        if (!file_exists(path)) append_missing(missing, sizeof missing, HUB_SINGLE_FILE " (or " HUB_INDEX_FILE ")");
        else report_cached(h, HUB_SINGLE_FILE, path);
    }
    if (missing[0])
        return ds_fail(err, DSOCR_ERR_IO, "%s (revision '%s', commit %s) is incomplete in the cache %s: missing %s",
                       h->repo, h->revision, h->commit, snap, missing);
    return DSOCR_OK;
}

/* ---- entry point --------------------------------------------------------------------- */

ds_hub_options ds_hub_default_options(void) {
    ds_hub_options o;
    memset(&o, 0, sizeof o);
    o.revision = "main";
    o.max_retries = 5;
    o.timeout_s = 10;
    return o;
}

static int is_safe_revision(const char *r) {
    return r[0] && strlen(r) < 200 && is_safe_relpath(r);
}

static dsocr_status hub_open(hub *h, const char *model, const ds_hub_options *opt, dsocr_error *err) {
    memset(h, 0, sizeof *h);
    h->opt = opt ? *opt : ds_hub_default_options();
    const char *rev = h->opt.revision && h->opt.revision[0] ? h->opt.revision : "main";
    if (!is_safe_revision(rev)) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "hub: bad revision '%s'", rev);
    snprintf(h->repo, sizeof h->repo, "%s", model);
    snprintf(h->revision, sizeof h->revision, "%s", rev);
    snprintf(h->url_revision, sizeof h->url_revision, "%s", rev);
    if (env_is_true("HF_HUB_OFFLINE")) h->opt.offline = 1;

    const char *ep = h->opt.endpoint && h->opt.endpoint[0] ? h->opt.endpoint : env_nonempty("HF_ENDPOINT");
    DS_TRY(bufprintf(err, h->endpoint, sizeof h->endpoint, "%s", ep ? ep : DS_HUB_DEFAULT_ENDPOINT));
    for (size_t n = strlen(h->endpoint); n && h->endpoint[n - 1] == '/'; n--) h->endpoint[n - 1] = 0;

    DS_TRY(ds_hub_cache_dir(opt, h->cache, sizeof h->cache, err));
    const char *slash = strchr(model, '/');
    char folder[300];
    DS_TRY(bufprintf(err, folder, sizeof folder, "models--%.*s--%s", (int)(slash - model), model, slash + 1));
    DS_TRY(bufprintf(err, h->repo_dir, sizeof h->repo_dir, "%s/%s", h->cache, folder));
    DS_TRY(bufprintf(err, h->lock_dir, sizeof h->lock_dir, "%s/.locks/%s", h->cache, folder));
    return DSOCR_OK;
}

static dsocr_status hub_online(hub *h, dsocr_error *err) {
    DS_TRY(load_token(h, err));
    dsocr_status st = make_dirs(h->repo_dir, err);
    if (st != DSOCR_OK) {
        if (err) ds_wrap(err, "hub cache %s is not writable (set HF_HUB_CACHE to a writable folder): ", h->cache);
        return st;
    }
    h->curl = curl_easy_init();
    if (!h->curl) return ds_fail(err, DSOCR_ERR_INTERNAL, "hub: libcurl failed to initialise");
    st = download_all(h, err);
    if (st == DSOCR_OK && strcmp(h->revision, h->commit)) {
        /* remember which commit the revision named, for offline use */
        char ref[HUB_PATH_MAX];
        st = bufprintf(err, ref, sizeof ref, "%s/refs/%s", h->repo_dir, h->revision);
        if (st == DSOCR_OK) st = make_parent_dirs(ref, err);
        if (st == DSOCR_OK) st = write_file_atomic(ref, h->commit, err);
    }
    curl_easy_cleanup(h->curl);
    h->curl = NULL;
    memset(h->token, 0, sizeof h->token);
    return st;
}

dsocr_status ds_hub_resolve(const char *model, const ds_hub_options *opt, char *out_dir, size_t out_len,
                            dsocr_error *err) {
    if (!model || !model[0] || !out_dir || !out_len)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "hub: model and out_dir are required");
    struct stat st;
    if (stat(model, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return ds_fail(err, DSOCR_ERR_INVALID_ARG, "model %s is a file: give its folder or a hub repo id", model);
        return bufprintf(err, out_dir, out_len, "%s", model);
    }
    if (!ds_hub_is_repo_id(model))
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "model %s: no such directory, and not a hub repo id (org/name)", model);

    hub *h = malloc(sizeof *h);
    if (!h) return ds_fail(err, DSOCR_ERR_NOMEM, "hub: out of memory");
    dsocr_status s = hub_open(h, model, opt, err);
    if (s == DSOCR_OK) {
        if (h->opt.offline) {
            s = resolve_from_cache(h, err);
            if (s != DSOCR_OK) ds_wrap(err, "offline mode (HF_HUB_OFFLINE or --offline): ");
        } else {
            s = hub_online(h, err);
            if (s != DSOCR_OK && h->network_failed) {
                /* hub unreachable: a complete cached snapshot still serves, as in huggingface_hub */
                dsocr_error net = {DSOCR_OK, ""};
                if (err) net = *err;
                h->commit[0] = 0;
                if (resolve_from_cache(h, NULL) == DSOCR_OK) {
                    s = DSOCR_OK;
                    ds_err_clear(err);
                } else if (err) {
                    *err = net;
                    ds_wrap(err, "cannot reach the hub and %s is not fully cached: ", model);
                }
            }
        }
    }
    if (s == DSOCR_OK)
        s = bufprintf(err, out_dir, out_len, "%s/snapshots/%s", h->repo_dir, h->commit);
    free(h);
    return s;
}
