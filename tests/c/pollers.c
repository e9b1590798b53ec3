/* pollers.c — what a host that polls from its own loop gets through the C ABI:
 * midisock_port_poll_fd / midisock_server_poll_fd (one descriptor, readable when a try-receive
 * may have something, quiet once drained), midisock_port_next_due_ns /
 * midisock_server_next_due_ns (when the next held message is due), and the receive callback
 * that carries the sender's time (midisock_port_set_message_callback). Bad arguments first. */
#include "check.h"

#include <poll.h>
#include <pthread.h>

/* Long enough that nothing is late however loaded the machine is. */
#define DELAY_US 300000
#define NOTES 3

static uint64_t now_ns(void) {
    uint64_t now = 0;
    OK(midisock_monotonic_ns(&now));
    return now;
}

/* Whether `fd` is readable within `timeout_ms` (0: now). */
static int readable(int fd, int timeout_ms) {
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    int n = poll(&p, 1, timeout_ms);
    CHECK(n >= 0);
    return n > 0;
}

static void on_timestamp(void *user_data, const uint8_t *bytes, size_t len, uint64_t timestamp_ns) {
    (void)user_data, (void)bytes, (void)len, (void)timestamp_ns;
}

static void on_message(void *user_data, const uint8_t *bytes, size_t len, const midisock_received_info *info);

static void bad_arguments(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *port = NULL;
    OK(midisock_port_connect(address, &port));
    uint64_t due = 77;
    int fd = -7;
    EXPECT(midisock_port_next_due_ns(NULL, &due), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_next_due_ns(port, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_next_due_ns(NULL, &due), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_next_due_ns(server, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_poll_fd(NULL, &fd), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_poll_fd(port, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_poll_fd(NULL, &fd), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_poll_fd(server, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_set_message_callback(NULL, on_message, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_set_message_callback(port, NULL, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    CHECK(due == 77 && fd == -7); /* nothing written */

    /* Without a buffer nothing is ever due; the descriptor is the same on every call. */
    OK(midisock_port_next_due_ns(port, &due));
    CHECK(due == MIDISOCK_NOTHING_DUE);
    OK(midisock_server_next_due_ns(server, &due));
    CHECK(due == MIDISOCK_NOTHING_DUE);
    int again = -1;
    OK(midisock_port_poll_fd(port, &fd));
    OK(midisock_port_poll_fd(port, &again));
    CHECK(fd >= 0 && fd == again);
    OK(midisock_server_poll_fd(server, &fd));
    OK(midisock_server_poll_fd(server, &again));
    CHECK(fd >= 0 && fd == again);

    /* One callback per port, whichever setter installs it. */
    OK(midisock_port_set_callback(port, on_timestamp, NULL));
    EXPECT(midisock_port_set_message_callback(port, on_message, NULL), MIDISOCK_RESULT_CALLBACK_INSTALLED);

    /* Closed: refused, nothing written. */
    OK(midisock_port_close(port));
    due = 77;
    EXPECT(midisock_port_next_due_ns(port, &due), MIDISOCK_RESULT_CLOSED);
    EXPECT(midisock_port_poll_fd(port, &fd), MIDISOCK_RESULT_CLOSED);
    OK(midisock_server_close(server));
    EXPECT(midisock_server_next_due_ns(server, &due), MIDISOCK_RESULT_CLOSED);
    EXPECT(midisock_server_poll_fd(server, &fd), MIDISOCK_RESULT_CLOSED);
    CHECK(due == 77);
    OK(midisock_port_free(port));
    OK(midisock_server_free(server));

    /* A reconnecting port takes neither callback. */
    server = serve_loopback(address, sizeof address);
    midisock_connect_options *options = NULL;
    OK(midisock_connect_options_new(&options));
    OK(midisock_connect_options_set_reconnect(options, 100, 1000, 0));
    OK(midisock_port_connect_with(address, options, &port));
    OK(midisock_connect_options_free(options));
    EXPECT(midisock_port_set_message_callback(port, on_message, NULL), MIDISOCK_RESULT_INVALID_ARGUMENT);
    OK(midisock_port_free(port));
    OK(midisock_server_free(server));
}

/* A client port with a fixed buffer, driven the way a host's loop drives it: wait on the poll
 * descriptor, receive until WOULD_BLOCK, look at next_due. */
static void a_polled_port_plays_out_at_the_due_time(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *client = connect_with_jitter_buffer(address, MIDISOCK_JITTER_MODE_FIXED, DELAY_US);
    wait_for_clients(server, 1);
    int fd = -1;
    OK(midisock_port_poll_fd(client, &fd));

    uint8_t buf[16];
    size_t len = 0;
    midisock_received_info info;
    uint64_t due = 0;
    /* Warm-up: the server stamps once it has seen the client's request. */
    const uint8_t warm_up[3] = {0xB0, 1, 2};
    int stamped = 0;
    for (int i = 0; i < 200 && !stamped; i++) {
        OK(midisock_server_send(server, warm_up, sizeof warm_up));
        if (!readable(fd, 50)) continue;
        midisock_result r;
        while ((r = midisock_port_receive_message(client, 0, buf, sizeof buf, &len, &info)) == MIDISOCK_RESULT_OK) {
            stamped |= info.has_sender_ns == 1;
        }
        EXPECT(r, MIDISOCK_RESULT_WOULD_BLOCK);
        OK(midisock_port_next_due_ns(client, &due));
        stamped |= due != MIDISOCK_NOTHING_DUE;
    }
    CHECK(stamped);
    /* Let the warm-up play out: the loop a host runs, without a timeout of its own. */
    for (;;) {
        OK(midisock_port_next_due_ns(client, &due));
        if (due == MIDISOCK_NOTHING_DUE && !readable(fd, 0)) break;
        CHECK(readable(fd, 10000));
        while (midisock_port_receive_message(client, 0, buf, sizeof buf, &len, &info) == MIDISOCK_RESULT_OK) {
        }
    }

    for (int i = 0; i < NOTES; i++) {
        const uint8_t note[3] = {0x90, (uint8_t)(60 + i), 100};
        OK(midisock_server_send(server, note, sizeof note));
    }
    int got = 0, wakes = 0;
    uint64_t previous = 0;
    while (got < NOTES) {
        CHECK(readable(fd, 10000));
        wakes++;
        OK(midisock_port_next_due_ns(client, &due));
        midisock_result r;
        while ((r = midisock_port_receive_message(client, 0, buf, sizeof buf, &len, &info)) == MIDISOCK_RESULT_OK) {
            CHECK(len == 3 && buf[0] == 0x90 && buf[1] == 60 + got); /* in order */
            CHECK(info.has_sender_ns == 1 && info.sender_ns > 0);
            CHECK(info.timestamp_ns >= previous && info.timestamp_ns <= now_ns());
            /* Woken at the time next_due_ns gave, with that played-out time. */
            CHECK(due != MIDISOCK_NOTHING_DUE && info.timestamp_ns >= due);
            previous = info.timestamp_ns;
            got++;
            OK(midisock_port_next_due_ns(client, &due));
        }
        EXPECT(r, MIDISOCK_RESULT_WOULD_BLOCK);
    }
    /* One wake per arrival and per due time, not one per millisecond: the three notes were
     * held 300 ms. A generous bound: TCP may split the three sends. */
    CHECK(wakes <= 4 * NOTES);
    OK(midisock_port_next_due_ns(client, &due));
    CHECK(due == MIDISOCK_NOTHING_DUE);
    CHECK(!readable(fd, 0)); /* drained: quiet */

    /* A message kept after BUFFER_TOO_SMALL is due at once. */
    const uint8_t sysex[6] = {0xF0, 1, 2, 3, 4, 0xF7};
    OK(midisock_server_send(server, sysex, sizeof sysex));
    midisock_result r = MIDISOCK_RESULT_WOULD_BLOCK;
    for (int i = 0; i < 400 && r == MIDISOCK_RESULT_WOULD_BLOCK; i++) {
        readable(fd, 50);
        r = midisock_port_receive_message(client, 0, buf, 2, &len, &info);
    }
    EXPECT(r, MIDISOCK_RESULT_BUFFER_TOO_SMALL);
    CHECK(len == sizeof sysex);
    OK(midisock_port_next_due_ns(client, &due));
    CHECK(due != MIDISOCK_NOTHING_DUE && due <= now_ns());
    OK(midisock_port_receive_message(client, 0, buf, sizeof buf, &len, &info));
    CHECK(len == sizeof sysex && info.timestamp_ns == due);

    /* The server closes the connection: the descriptor wakes the poller, which learns of it. */
    OK(midisock_server_close(server));
    CHECK(readable(fd, 10000));
    r = MIDISOCK_RESULT_WOULD_BLOCK;
    for (int i = 0; i < 400 && r == MIDISOCK_RESULT_WOULD_BLOCK; i++) {
        readable(fd, 50);
        r = midisock_port_receive_message(client, 0, buf, sizeof buf, &len, &info);
    }
    EXPECT(r, MIDISOCK_RESULT_CLOSED);
    OK(midisock_port_free(client));
    OK(midisock_server_free(server));
}

/* A server with a fixed buffer: its descriptor wakes when a client's message is played out. */
static void a_polled_server_plays_out_its_clients(void) {
    char address[64];
    midisock_server *server = serve_loopback_with_delay(DELAY_US, address, sizeof address);
    int fd = -1;
    OK(midisock_server_poll_fd(server, &fd));
    midisock_port *client = NULL;
    OK(midisock_port_connect(address, &client));

    uint8_t buf[16];
    size_t len = 0;
    midisock_received_info info;
    uint64_t due = 0;
    int stamped = 0, saw_due = 0;
    const uint8_t note[3] = {0x90, 64, 90};
    /* The client stamps once it has read the server's request (from inside its sends). */
    for (int i = 0; i < 400 && !stamped; i++) {
        OK(midisock_port_send(client, note, sizeof note));
        if (!readable(fd, 50)) continue;
        OK(midisock_server_next_due_ns(server, &due));
        saw_due |= due != MIDISOCK_NOTHING_DUE;
        midisock_result r;
        while ((r = midisock_server_receive_message(server, 0, buf, sizeof buf, &len, &info)) == MIDISOCK_RESULT_OK) {
            CHECK(len == 3 && memcmp(buf, note, 3) == 0);
            CHECK(info.timestamp_ns <= now_ns());
            if (info.has_sender_ns) {
                stamped = 1;
                CHECK(info.sender_ns <= info.timestamp_ns && info.timestamp_ns - info.sender_ns >= (uint64_t)DELAY_US * 1000);
            }
        }
        EXPECT(r, MIDISOCK_RESULT_WOULD_BLOCK);
    }
    CHECK(stamped && saw_due);
    /* Everything plays out, and the descriptor goes quiet. */
    for (;;) {
        OK(midisock_server_next_due_ns(server, &due));
        if (due == MIDISOCK_NOTHING_DUE && !readable(fd, 0)) break;
        if (!readable(fd, 10000)) break;
        while (midisock_server_receive_message(server, 0, buf, sizeof buf, &len, &info) == MIDISOCK_RESULT_OK) {
        }
    }
    OK(midisock_server_next_due_ns(server, &due));
    CHECK(due == MIDISOCK_NOTHING_DUE && !readable(fd, 0));
    OK(midisock_port_free(client));
    OK(midisock_server_free(server));
}

/* The callback with the sender's time. */
typedef struct {
    pthread_mutex_t lock;
    int calls, stamped, unstamped, bad;
    uint64_t last_timestamp;
} seen;

static void on_message(void *user_data, const uint8_t *bytes, size_t len, const midisock_received_info *info) {
    seen *s = (seen *)user_data;
    pthread_mutex_lock(&s->lock);
    s->calls++;
    if (len != 3 || bytes[0] != 0x90 || info == NULL || info->timestamp_ns < s->last_timestamp) s->bad++;
    if (info != NULL) {
        s->last_timestamp = info->timestamp_ns;
        if (info->has_sender_ns == 1 && info->sender_ns > 0) {
            s->stamped++;
        } else if (info->has_sender_ns == 0 && info->sender_ns == 0) {
            s->unstamped++;
        } else {
            s->bad++;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

static void the_message_callback_carries_the_sender_s_time(void) {
    /* A jitter server; the connection it hands over keeps its buffer, and the client stamps. */
    char address[64];
    midisock_server *server = serve_loopback_with_delay(2000, address, sizeof address);
    midisock_port *client = NULL, *accepted = NULL;
    OK(midisock_port_connect(address, &client));
    OK(midisock_server_accept(server, &accepted));

    seen s;
    memset(&s, 0, sizeof s);
    CHECK(pthread_mutex_init(&s.lock, NULL) == 0);
    OK(midisock_port_set_message_callback(accepted, on_message, &s));
    EXPECT(midisock_port_set_message_callback(accepted, on_message, &s), MIDISOCK_RESULT_CALLBACK_INSTALLED);
    EXPECT(midisock_port_set_callback(accepted, on_timestamp, NULL), MIDISOCK_RESULT_CALLBACK_INSTALLED);
    const uint8_t note[3] = {0x90, 60, 100};
    int stamped = 0;
    for (int i = 0; i < 5000 && stamped < 5; i++) {
        OK(midisock_port_send(client, note, sizeof note));
        sleep_ms();
        pthread_mutex_lock(&s.lock);
        stamped = s.stamped;
        pthread_mutex_unlock(&s.lock);
    }
    CHECK(stamped >= 5);
    OK(midisock_port_free(client));
    OK(midisock_port_free(accepted)); /* joins the callback thread: no call after this */
    CHECK(s.bad == 0 && s.calls == s.stamped + s.unstamped);
    pthread_mutex_destroy(&s.lock);
    OK(midisock_server_free(server));
}

int main(void) {
    bad_arguments();
    a_polled_port_plays_out_at_the_due_time();
    a_polled_server_plays_out_its_clients();
    the_message_callback_carries_the_sender_s_time();
    printf("pollers: ok\n");
    return 0;
}
