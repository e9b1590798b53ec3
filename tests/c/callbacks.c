/* callbacks.c — receive callbacks: the accepted port echoes every message from its callback,
 * which runs on the port's own thread ("midisock-cb") with the user_data given. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_getname_np */
#endif
#include "check.h"

#include <pthread.h>

#define MESSAGES 100

struct echo_state {
    const midisock_port *port; /* the port the callback answers on */
    pthread_t main_thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int calls;
    int wrong_thread;
    int send_failures;
    uint64_t last_stamp;
};

/* Runs on the callback thread: echo the message and count it. Never blocks for long. */
static void echo(void *user_data, const uint8_t *bytes, size_t len, uint64_t timestamp_ns) {
    struct echo_state *state = (struct echo_state *)user_data;
    char name[16] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    int wrong = pthread_equal(pthread_self(), state->main_thread) ||
                strcmp(name, "midisock-cb") != 0; /* the whole name: it fits in 15 characters */
    midisock_result sent = midisock_port_send(state->port, bytes, len);
    pthread_mutex_lock(&state->lock);
    state->calls++;
    state->wrong_thread += wrong;
    state->send_failures += sent != MIDISOCK_RESULT_OK;
    state->last_stamp = timestamp_ns;
    pthread_cond_signal(&state->changed);
    pthread_mutex_unlock(&state->lock);
}

int main(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *client = NULL, *peer = NULL;
    OK(midisock_port_connect(address, &client));
    OK(midisock_server_accept(server, &peer));

    /* A message that arrives before the callback is installed is delivered to it too. */
    const uint8_t early[3] = {0xA0, 1, 2};
    OK(midisock_port_send(client, early, sizeof early));

    struct echo_state state;
    memset(&state, 0, sizeof state);
    state.port = peer;
    state.main_thread = pthread_self();
    pthread_mutex_init(&state.lock, NULL);
    pthread_cond_init(&state.changed, NULL);
    OK(midisock_port_set_callback(peer, echo, &state));

    /* With a callback installed the port cannot be read directly, nor take a second one. */
    uint8_t buf[16];
    size_t len = 0;
    uint64_t stamp = 0;
    EXPECT(midisock_port_try_receive(peer, buf, sizeof buf, &len, &stamp),
           MIDISOCK_RESULT_CALLBACK_INSTALLED);
    EXPECT(midisock_port_set_callback(peer, echo, &state), MIDISOCK_RESULT_CALLBACK_INSTALLED);

    OK(midisock_port_receive_timeout(client, 5000, buf, sizeof buf, &len, &stamp));
    CHECK(len == 3 && memcmp(buf, early, 3) == 0);
    for (int i = 0; i < MESSAGES; i++) {
        const uint8_t note[3] = {0x90, (uint8_t)(i % 128), 64};
        OK(midisock_port_send(client, note, sizeof note));
        OK(midisock_port_receive_timeout(client, 5000, buf, sizeof buf, &len, &stamp));
        CHECK(len == 3 && memcmp(buf, note, 3) == 0); /* echoed in order */
    }

    /* The last echo can arrive before its callback call has returned: wait (at most 5 s). */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    pthread_mutex_lock(&state.lock);
    while (state.calls < MESSAGES + 1) {
        if (pthread_cond_timedwait(&state.changed, &state.lock, &deadline) != 0) break;
    }
    CHECK(state.calls == MESSAGES + 1);
    CHECK(state.wrong_thread == 0);
    CHECK(state.send_failures == 0);
    CHECK(state.last_stamp > 0);
    pthread_mutex_unlock(&state.lock);

    /* After free returns the callback is never called again: state can go. */
    OK(midisock_port_free(peer));
    OK(midisock_port_free(client));
    OK(midisock_server_free(server));
    pthread_cond_destroy(&state.changed);
    pthread_mutex_destroy(&state.lock);
    printf("callbacks: ok (%d callback calls)\n", MESSAGES + 1);
    return 0;
}
