/* A loopback HTTP server that speaks the part of the Hugging Face hub protocol
 * dsocr's downloader uses, serving repos from local folders:
 *
 *   HEAD/GET /{org}/{name}/resolve/{rev}/{file}
 *       small files: 200, ETag = git blob sha1, X-Repo-Commit, Content-Length
 *       LFS files (*.safetensors, or > 1 MB): 302 to /cdn/{org}/{name}/{file} with
 *       X-Linked-Etag = sha256, X-Linked-Size, X-Repo-Commit (as the hub does)
 *       errors: 404 + X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound,
 *       401 for a repo with a token when the Bearer token is absent or wrong
 *   GET /cdn/{org}/{name}/{file}   the bytes; honours "Range: bytes=N-" (206)
 *
 * One request per connection (Connection: close), served by one thread bound to
 * 127.0.0.1 on an ephemeral port. It stops when asked or after a fixed deadline.
 * Test switches: drop a transfer after N bytes, corrupt a file's bytes. */
#ifndef TEST_HUB_SERVER_H
#define TEST_HUB_SERVER_H

#include <pthread.h>
#include <stdint.h>

#define HS_MAX_REPOS 8
#define HS_MAX_LOG 512

typedef struct hs_request {
    char method[8];
    char path[600];
    char range[64];     /* Range header value, "" if none */
    int has_auth;       /* an Authorization header came */
    int status;         /* what the server answered */
} hs_request;

typedef struct hub_server {
    int port;
    char endpoint[64];                /* "http://127.0.0.1:PORT" */
    /* --- set before hs_start, or between calls under hs_lock --- */
    struct { char repo[128]; char dir[1024]; char token[128]; } repos[HS_MAX_REPOS];
    int n_repos;
    char commit[41];                  /* X-Repo-Commit for every repo */
    char drop_file[256];              /* drop GETs of this file after drop_after body bytes ... */
    uint64_t drop_after;
    int drop_count;                   /* ... this many times */
    char corrupt_file[256];           /* serve this file with one byte flipped */
    int ignore_range;                 /* answer Range requests with the whole file (200) */
    char renamed_from[128];           /* a repo renamed to renamed_to: 307 to the new name, */
    char renamed_to[128];             /* a relative redirect as the hub sends */
    /* --- written by the server --- */
    hs_request log[HS_MAX_LOG];
    int n_log;
    /* --- private --- */
    int listen_fd;
    int stop;
    pthread_t thread;
    pthread_mutex_t mu;
} hub_server;

/* Binds, starts the thread; 0 on success. */
int hs_start(hub_server *s);
void hs_stop(hub_server *s);
void hs_lock(hub_server *s);
void hs_unlock(hub_server *s);
void hs_add_repo(hub_server *s, const char *repo, const char *dir, const char *token);
void hs_clear_log(hub_server *s);
/* Number of logged requests with this method whose path ends with suffix. */
int hs_count(hub_server *s, const char *method, const char *path_suffix);
/* The Range header of the last such request ("" if none or no such request). */
void hs_last_range(hub_server *s, const char *method, const char *path_suffix, char *out, size_t n);

/* Lowercase hex sha256 / git blob sha1 of a file; 0 on success. */
int hs_sha256_file(const char *path, char out[65]);
int hs_git_sha1_file(const char *path, char out[41]);

#endif
