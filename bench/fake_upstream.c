/* SPDX-License-Identifier: MIT */
/* fake_upstream.c -- the fastest honest OpenAI images upstream for gateway
 * benchmarks: answers POST /v1/images/generations with a fixed
 * ImagesResponse carrying a real PNG, after reading the whole request body.
 * It is the "direct" baseline and the upstream every gateway under test
 * routes to. Usage: fake_upstream PORT [PNG_FILE]. With
 * FAKE_UPSTREAM_DELAY_MS set it is a slow vendor instead: a thread per
 * connection, each answer held back that long. */
#include <microhttpd.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *answer;
static size_t answer_len;
static long delay_ms;

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *data, size_t *size, void **state)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)data;
    if (!*state) {
        *state = c;
        return MHD_YES;
    }
    if (*size) {
        *size = 0;
        return MHD_YES;
    }
    if (delay_ms > 0) {
        struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(answer_len, answer, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fake_upstream PORT [PNG_FILE]\n");
        return 2;
    }
    /* A 1x1 PNG unless a file is given. */
    static const unsigned char tiny[] = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90,
        0x77, 0x53, 0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x08, 0xd7, 0x63, 0xf8,
        0xcf, 0xc0, 0x00, 0x00, 0x03, 0x01, 0x01, 0x00, 0x18, 0xdd, 0x8d, 0xb0, 0x00, 0x00, 0x00,
        0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
    unsigned char *png = (unsigned char *)tiny;
    size_t png_len = sizeof tiny;
    if (argc > 2) {
        FILE *f = fopen(argv[2], "rb");
        if (!f) {
            perror(argv[2]);
            return 2;
        }
        fseek(f, 0, SEEK_END);
        png_len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        png = malloc(png_len);
        if (!png || fread(png, 1, png_len, f) != png_len)
            return 2;
        fclose(f);
    }
    char *b64 = malloc(4 * ((png_len + 2) / 3) + 1);
    if (!b64)
        return 2;
    EVP_EncodeBlock((unsigned char *)b64, png, (int)png_len);
    answer_len = strlen(b64) + 200;
    answer = malloc(answer_len);
    if (!answer)
        return 2;
    answer_len = (size_t)snprintf(answer, answer_len,
                                  "{\"created\":1713833628,\"data\":[{\"b64_json\":\"%s\"}],"
                                  "\"usage\":{\"input_tokens\":50,\"output_tokens\":272,"
                                  "\"total_tokens\":322}}", b64);
    const char *delay = getenv("FAKE_UPSTREAM_DELAY_MS");
    delay_ms = delay ? atol(delay) : 0;
    struct MHD_Daemon *d =
        delay_ms > 0
            ? MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                               (uint16_t)atoi(argv[1]), NULL, NULL, handle, NULL,
                               MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_CONNECTION_TIMEOUT,
                               600u, MHD_OPTION_END)
            : MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
                               (uint16_t)atoi(argv[1]), NULL, NULL, handle, NULL,
                               MHD_OPTION_THREAD_POOL_SIZE, 1u, MHD_OPTION_CONNECTION_LIMIT,
                               4096u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "fake_upstream: cannot listen on %s\n", argv[1]);
        return 1;
    }
    printf("fake_upstream: listening on 127.0.0.1:%s\n", argv[1]);
    fflush(stdout);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
