/*
 * glue_test.c — the Pd-free half of [midisock] on its own: every value of every channel message
 * built from patch numbers and described back gives the same numbers, the bytes are the MIDI
 * ones, and every out-of-range or malformed argument is refused with nothing written; and the
 * link's descriptor (msg_link_fd) wakes its host for each status and message, and is quiet once
 * polled. Built and run under ASan+UBSan by `cargo xtask pd-test`.
 */
#include "midisock_glue.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(condition, ...)                                                                                         \
    do {                                                                                                              \
        if (!(condition)) {                                                                                           \
            failures++;                                                                                               \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                                           \
            fprintf(stderr, __VA_ARGS__);                                                                             \
            fprintf(stderr, "\n");                                                                                    \
            if (failures > 20) exit(1);                                                                               \
        }                                                                                                             \
    } while (0)

/* Whether `fd` is readable within `timeout_ms`. */
static int readable(int fd, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    return poll(&p, 1, timeout_ms) > 0;
}

/* What a poll handed over. */
typedef struct {
    int messages, peers, listening;
    long port, last_peers;
} seen;

static void on_message(void *context, const uint8_t *bytes, size_t len) {
    seen *s = context;
    (void)bytes;
    if (len == 3) s->messages++;
}

static void on_status(void *context, msg_status status, long number, const char *text) {
    seen *s = context;
    (void)text;
    if (status == MSG_STATUS_LISTENING) {
        s->listening++;
        s->port = number;
    }
    if (status == MSG_STATUS_PEERS) {
        s->peers++;
        s->last_peers = number;
    }
}

/* The host's loop: waits on the descriptor (bounded), polls; until `done` or 10 s. */
static int wait_and_poll(msg_link *link, seen *s, int (*done)(const seen *)) {
    static const msg_link_events events = {on_message, on_status};
    for (int i = 0; i < 200 && !done(s); i++) {
        if (readable(msg_link_fd(link), 50)) msg_link_poll(link, &events, s, 4096);
    }
    return done(s);
}

static int is_listening(const seen *s) { return s->listening == 1; }
static int has_a_peer(const seen *s) { return s->last_peers == 1; }
static int has_three_messages(const seen *s) { return s->messages == 3; }
static int has_no_peer(const seen *s) { return s->peers == 3 && s->last_peers == 0; } /* 0, 1, 0 */

/* A server link driven only by its descriptor: every status and message wakes the host, and a
 * poll leaves it quiet. */
static void descriptor_wakes_the_host(void) {
    msg_link *link = msg_link_new();
    char error[MSG_ERROR_LEN] = "";
    CHECK(link != NULL && msg_link_fd(link) >= 0, "a link has a descriptor");
    CHECK(!readable(msg_link_fd(link), 0), "an idle link is quiet");
    CHECK(msg_link_serve(link, "127.0.0.1:0", error) == 0, "serve: %s", error);
    seen s = {0, 0, 0, 0, -1};
    CHECK(wait_and_poll(link, &s, is_listening), "the listening status wakes the host");
    CHECK(!readable(msg_link_fd(link), 0), "quiet once polled");

    int client = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(client >= 0 && connect(client, (struct sockaddr *)&address, sizeof address) == 0, "connect");
    CHECK(wait_and_poll(link, &s, has_a_peer), "a client joining wakes the host");
    const uint8_t notes[9] = {0x90, 60, 100, 0x90, 61, 100, 0x80, 60, 0};
    CHECK(write(client, notes, sizeof notes) == (ssize_t)sizeof notes, "write");
    CHECK(wait_and_poll(link, &s, has_three_messages), "messages wake the host");
    CHECK(!readable(msg_link_fd(link), 0), "quiet once polled");
    close(client);
    /* It left with note 61 held: the server releases it, and the client count changes. */
    CHECK(wait_and_poll(link, &s, has_no_peer), "a client leaving wakes the host");
    msg_link_free(link);
}

/* Builds `selector values...`, describes the bytes, and checks the description gives back the
 * selector and values (`expect` is the typed selector when it differs, e.g. noteoff → note). */
static void round_trip(const char *selector, const char *expect, const double *values, size_t count,
                       const int *typed, size_t typed_count) {
    uint8_t bytes[8];
    size_t len = 0;
    char error[MSG_ERROR_LEN] = "";
    CHECK(msg_build(selector, values, count, bytes, sizeof bytes, &len, error) == 0, "%s: %s", selector, error);
    msg_typed message;
    CHECK(msg_describe(bytes, len, &message) == 0, "%s: cannot describe its bytes", selector);
    CHECK(strcmp(message.selector, expect) == 0, "%s: described as %s", selector, message.selector);
    CHECK(message.value_count == typed_count, "%s: %zu values", selector, message.value_count);
    for (size_t i = 0; i < typed_count && i < message.value_count; i++) {
        CHECK(message.values[i] == typed[i], "%s: value %zu is %d, not %d", selector, i, message.values[i], typed[i]);
    }
}

static void refused(const char *selector, const double *values, size_t count, const char *error_start) {
    uint8_t bytes[8] = {0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA};
    size_t len = 12345;
    char error[MSG_ERROR_LEN] = "";
    CHECK(msg_build(selector, values, count, bytes, sizeof bytes, &len, error) == -1, "%s: accepted", selector);
    CHECK(strncmp(error, error_start, strlen(error_start)) == 0, "%s: error %s", selector, error);
    CHECK(len == 12345 && bytes[0] == 0xAA, "%s: wrote something on failure", selector);
}

int main(void) {
    for (int ch = 1; ch <= 16; ch++) {
        for (int a = 0; a < 128; a++) {
            for (int b = 0; b < 128; b++) {
                double v[3] = {a, b, ch};
                round_trip("note", "note", v, 3, (int[]){a, b, ch}, 3);
                round_trip("cc", "cc", v, 3, (int[]){a, b, ch}, 3);
                round_trip("polytouch", "polytouch", v, 3, (int[]){a, b, ch}, 3);
                round_trip("noteoff", "note", v, 3, (int[]){a, 0, ch}, 3);
            }
            double v[2] = {a, ch};
            round_trip("touch", "touch", v, 2, (int[]){a, ch}, 2);
            double p[2] = {a + 1, ch};
            round_trip("program", "program", p, 2, (int[]){a + 1, ch}, 2);
        }
        for (int bend = -8192; bend <= 8191; bend++) {
            double v[2] = {bend, ch};
            round_trip("bend", "bend", v, 2, (int[]){bend, ch}, 2);
        }
    }

    /* The wire bytes, and the defaults of optional arguments. */
    uint8_t bytes[8];
    size_t len = 0;
    char error[MSG_ERROR_LEN];
    CHECK(msg_build("cc", (double[]){100, 7}, 2, bytes, sizeof bytes, &len, error) == 0 && len == 3 &&
              bytes[0] == 0xB0 && bytes[1] == 7 && bytes[2] == 100,
          "cc 100 7 → B0 07 64");
    CHECK(msg_build("noteoff", (double[]){60}, 1, bytes, sizeof bytes, &len, error) == 0 && len == 3 &&
              bytes[0] == 0x80 && bytes[1] == 60 && bytes[2] == 0,
          "noteoff 60 → 80 3C 00");
    CHECK(msg_build("bend", (double[]){0, 16}, 2, bytes, sizeof bytes, &len, error) == 0 && len == 3 &&
              bytes[0] == 0xEF && bytes[1] == 0 && bytes[2] == 64,
          "bend 0 16 → EF 00 40");
    CHECK(msg_build("program", (double[]){1}, 1, bytes, sizeof bytes, &len, error) == 0 && len == 2 &&
              bytes[0] == 0xC0 && bytes[1] == 0,
          "program 1 → C0 00");
    CHECK(msg_build("sysex", (double[]){1, 127}, 2, bytes, sizeof bytes, &len, error) == 0 && len == 4 &&
              bytes[0] == 0xF0 && bytes[3] == 0xF7,
          "sysex framed");
    CHECK(msg_build("sysex", NULL, 0, bytes, sizeof bytes, &len, error) == 0 && len == 2, "empty sysex");
    msg_typed message;
    CHECK(msg_describe(bytes, len, &message) == 0 && strcmp(message.selector, "sysex") == 0 && message.data_len == 0,
          "empty sysex described");

    /* Refusals. */
    refused("note", (double[]){128, 1, 1}, 3, "note: note 128 is out of range");
    refused("note", (double[]){60, 1, 17}, 3, "note: channel 17 is out of range");
    refused("note", (double[]){60.5, 1, 1}, 3, "note: note must be a whole number");
    refused("note", (double[]){INFINITY, 1, 1}, 3, "note: note must be a whole number");
    refused("note", (double[]){60}, 1, "note takes <note> <velocity> [channel]");
    refused("note", (double[]){1, 2, 3, 4}, 4, "note takes");
    refused("bend", (double[]){8192}, 1, "bend: value 8192 is out of range -8192..8191");
    refused("program", (double[]){0}, 1, "program: program 0 is out of range 1..128");
    refused("sysex", (double[]){1, 128}, 2, "sysex: byte 2 128 is out of range 0..127");
    refused("send", (double[]){256}, 1, "send: byte 1 256 is out of range 0..255");
    refused("send", NULL, 0, "send takes the bytes");
    refused("frobnicate", NULL, 0, "unknown message 'frobnicate'");
    double many[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    refused("send", many, 9, "send: 9 bytes is more than the 8 this object sends at once");

    /* Bytes that are not exactly one message are not described. */
    CHECK(msg_describe((const uint8_t[]){0x90, 60}, 2, &message) == -1, "cut-off note");
    CHECK(msg_describe((const uint8_t[]){60}, 1, &message) == -1, "data byte");
    CHECK(msg_describe((const uint8_t[]){0xF4}, 1, &message) == -1, "undefined status");
    CHECK(msg_describe((const uint8_t[]){0xF0, 1}, 2, &message) == -1, "unterminated sysex");

    /* The link refuses impossible addresses at once and changes nothing. */
    msg_link *link = msg_link_new();
    CHECK(link != NULL, "msg_link_new");
    CHECK(msg_link_connect(link, "nowhere", error) == -1 && strstr(error, "has no port") != NULL, "%s", error);
    CHECK(msg_link_connect(link, "host:0", error) == -1, "client port 0");
    CHECK(msg_link_connect(link, ":8080", error) == -1, "client without host");
    CHECK(msg_link_serve(link, "localhost:70000", error) == -1, "port 70000");
    CHECK(msg_link_serve(link, "localhost:-1", error) == -1, "port -1");
    CHECK(msg_link_send(link, (const uint8_t[]){0xF8}, 1, error) == -1 && strstr(error, "not connected") != NULL,
          "send while idle");

    /* The jitter buffer setting: the text form, or off; anything else refused with the forms. */
    const char *good[] = {"off", "Off", "auto", "AUTO", "0", "12.5", "10000"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK(msg_link_set_jitter_buffer(link, good[i], error) == 0, "jitter_buffer %s: %s", good[i], error);
    }
    const char *bad[] = {"", "-1", "10000.5", "soon", "of", "1e3", "nan"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        error[0] = '\0';
        CHECK(msg_link_set_jitter_buffer(link, bad[i], error) == -1 && strstr(error, "\"auto\", or off") != NULL,
              "jitter_buffer %s: %s", bad[i], error);
    }
    CHECK(msg_link_stats(link, NULL, NULL, error) == -1 && strstr(error, "not connected") != NULL, "stats while idle");
    msg_link_free(link);
    msg_link_free(NULL);
    descriptor_wakes_the_host();

    if (failures) {
        fprintf(stderr, "glue_test: %d failure(s)\n", failures);
        return 1;
    }
    printf("glue_test: ok\n");
    return 0;
}
