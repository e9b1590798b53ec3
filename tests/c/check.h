/* check.h — the few helpers the C test programs share: stop with a clear message when a call
 * does not return what the test expects, and set up a loopback server on a free port. */
#ifndef MIDISOCK_TEST_CHECK_H
#define MIDISOCK_TEST_CHECK_H

/* nanosleep() under -std=c11; include this header before any other. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <midisock.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Prints the result code, its text and this thread's last error detail, then exits. */
static inline void check_failed(const char *file, int line, const char *call, midisock_result got,
                                midisock_result want) {
    char detail[512];
    size_t len = 0;
    if (midisock_last_error_message(detail, sizeof detail, &len) != MIDISOCK_RESULT_OK) {
        strcpy(detail, "(last error does not fit)");
    }
    fprintf(stderr, "%s:%d: %s returned %u (%s), expected %u (%s); last error: %s\n", file, line,
            call, (unsigned)got, midisock_result_str(got), (unsigned)want,
            midisock_result_str(want), detail);
    exit(1);
}

/* EXPECT(call, MIDISOCK_RESULT_x): the call must return exactly that code. */
#define EXPECT(call, want)                                                                        \
    do {                                                                                          \
        midisock_result got_ = (call);                                                            \
        if (got_ != (want)) check_failed(__FILE__, __LINE__, #call, got_, (want));                \
    } while (0)

/* OK(call): the call must succeed. */
#define OK(call) EXPECT(call, MIDISOCK_RESULT_OK)

/* CHECK(condition): a plain assertion that also works in release builds. */
#define CHECK(cond)                                                                               \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);              \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

/* Binds a server on 127.0.0.1 with a free port and writes "127.0.0.1:PORT" to address. */
static inline midisock_server *serve_loopback(char *address, size_t len) {
    midisock_server *server = NULL;
    uint16_t port = 0;
    OK(midisock_server_bind("127.0.0.1:0", &server));
    OK(midisock_server_local_port(server, &port));
    snprintf(address, len, "127.0.0.1:%u", (unsigned)port);
    return server;
}

/* The same with a jitter buffer (`mode`, and `delay_us` microseconds when fixed). */
static inline midisock_server *serve_loopback_with_jitter_buffer(uint32_t mode, uint64_t delay_us, char *address,
                                                                 size_t len) {
    midisock_server_config *config = NULL;
    midisock_server *server = NULL;
    uint16_t port = 0;
    OK(midisock_server_config_new(&config));
    OK(midisock_server_config_set_jitter_buffer(config, mode, delay_us));
    OK(midisock_server_bind_with("127.0.0.1:0", config, &server));
    OK(midisock_server_config_free(config));
    OK(midisock_server_local_port(server, &port));
    snprintf(address, len, "127.0.0.1:%u", (unsigned)port);
    return server;
}

/* A fixed jitter buffer of `delay_us` microseconds. */
static inline midisock_server *serve_loopback_with_delay(uint64_t delay_us, char *address, size_t len) {
    return serve_loopback_with_jitter_buffer(MIDISOCK_JITTER_MODE_FIXED, delay_us, address, len);
}

/* A client port of `address` with a jitter buffer (`mode`, `delay_us` when fixed). */
static inline midisock_port *connect_with_jitter_buffer(const char *address, uint32_t mode, uint64_t delay_us) {
    midisock_connect_options *options = NULL;
    midisock_port *port = NULL;
    OK(midisock_connect_options_new(&options));
    OK(midisock_connect_options_set_jitter_buffer(options, mode, delay_us));
    OK(midisock_port_connect_with(address, options, &port));
    OK(midisock_connect_options_free(options));
    return port;
}

/* Sleeps a millisecond. */
static inline void sleep_ms(void) {
    struct timespec ms;
    ms.tv_sec = 0;
    ms.tv_nsec = 1000000;
    nanosleep(&ms, NULL);
}

/* Clients connect asynchronously: waits (at most 5 s) until the server serves `want` of them. */
static inline void wait_for_clients(const midisock_server *server, size_t want) {
    size_t count = 0;
    for (int i = 0; i < 5000; i++) {
        OK(midisock_server_client_count(server, &count));
        if (count == want) return;
        sleep_ms();
    }
    fprintf(stderr, "server has %zu clients after 5 s, expected %zu\n", count, want);
    exit(1);
}

#endif /* MIDISOCK_TEST_CHECK_H */
