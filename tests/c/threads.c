/* threads.c — one port and one server shared by several threads: concurrent sends never
 * interleave the bytes of two messages, and each thread's messages keep their order. */
#include "check.h"

#include <pthread.h>

#define THREADS 4
#define EACH 400

struct sender {
    const midisock_port *port;     /* send on this port ... */
    const midisock_server *server; /* ... or broadcast on this server */
    uint8_t id;
    midisock_result result;
};

/* Sends EACH messages: notes on channel `id` numbered 0, 1, 2 ... and every 10th a sysex
 * whose 8 data bytes are all `id` (a torn write would mix ids). */
static void *send_all(void *arg) {
    struct sender *s = (struct sender *)arg;
    s->result = MIDISOCK_RESULT_OK;
    for (int i = 0; i < EACH && s->result == MIDISOCK_RESULT_OK; i++) {
        const uint8_t note[3] = {(uint8_t)(0x90 | s->id), (uint8_t)(i % 128), 1};
        uint8_t sysex[10] = {0xF0, 0, 0, 0, 0, 0, 0, 0, 0, 0xF7};
        memset(sysex + 1, s->id, 8);
        const uint8_t *bytes = i % 10 == 0 ? sysex : note;
        size_t len = i % 10 == 0 ? sizeof sysex : sizeof note;
        s->result = s->port ? midisock_port_send(s->port, bytes, len)
                            : midisock_server_send(s->server, bytes, len);
    }
    return NULL;
}

/* Receives THREADS * EACH messages from `from` and checks each thread's sequence. */
static void receive_all(const midisock_port *from) {
    int next[THREADS] = {0};
    for (int n = 0; n < THREADS * EACH; n++) {
        uint8_t buf[16];
        size_t len = 0;
        uint64_t stamp = 0;
        OK(midisock_port_receive_timeout(from, 5000, buf, sizeof buf, &len, &stamp));
        int id;
        if (buf[0] == 0xF0) {
            CHECK(len == 10 && buf[9] == 0xF7);
            for (int k = 2; k < 9; k++) CHECK(buf[k] == buf[1]);
            id = buf[1];
            CHECK(id < THREADS && next[id] % 10 == 0);
        } else {
            CHECK(len == 3 && (buf[0] & 0xF0) == 0x90);
            id = buf[0] & 0x0F;
            CHECK(id < THREADS && buf[1] == next[id] % 128);
        }
        next[id]++;
    }
    for (int t = 0; t < THREADS; t++) CHECK(next[t] == EACH);
}

/* Starts THREADS senders, receives everything on `receiver` meanwhile (the traffic is bigger
 * than the socket buffers, so sending and receiving must overlap), then joins them. */
static void run_senders(struct sender *senders, const midisock_port *receiver) {
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        CHECK(pthread_create(&threads[t], NULL, send_all, &senders[t]) == 0);
    }
    receive_all(receiver);
    for (int t = 0; t < THREADS; t++) {
        CHECK(pthread_join(threads[t], NULL) == 0);
        OK(senders[t].result);
    }
}

int main(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *client = NULL, *peer = NULL;
    OK(midisock_port_connect(address, &client));
    OK(midisock_server_accept(server, &peer));

    /* THREADS threads sending on one port. */
    struct sender senders[THREADS];
    for (int t = 0; t < THREADS; t++) {
        senders[t].port = client;
        senders[t].server = NULL;
        senders[t].id = (uint8_t)t;
    }
    run_senders(senders, peer);

    /* THREADS threads broadcasting on one server (to a second client). */
    midisock_port *listener = NULL;
    OK(midisock_port_connect(address, &listener));
    wait_for_clients(server, 1);
    for (int t = 0; t < THREADS; t++) {
        senders[t].port = NULL;
        senders[t].server = server;
    }
    run_senders(senders, listener);

    OK(midisock_port_free(listener));
    OK(midisock_port_free(peer));
    OK(midisock_port_free(client));
    OK(midisock_server_free(server));
    printf("threads: ok (%d threads x %d messages, on a port and on a server)\n", THREADS, EACH);
    return 0;
}
