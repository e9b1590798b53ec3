/*
 * midisock_link.c — one client connection or server over libmidisock, polled by the host (see
 * midisock_glue.h). Plain C11 + POSIX threads, no patcher API.
 */
#include "midisock_glue.h"

#include <midisock.h>

#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void say(char error[MSG_ERROR_LEN], const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(error, MSG_ERROR_LEN, format, args);
    va_end(args);
}

/* How long one connection attempt may take per address before it is reported as failed. */
#define CONNECT_TIMEOUT_MS 5000
/* The parameters of libmidisock's reconnect policy for a client whose connection drops: the
 * first attempt after 100 ms, then doubling up to 2 s between attempts, never giving up. The
 * policy itself (backoff, jitter, note-offs for held notes) is libmidisock's. */
#define RECONNECT_INITIAL_MS 100
#define RECONNECT_MAX_MS 2000
#define RECONNECT_MAX_ATTEMPTS 0
/* How long closing a server may spend flushing what its clients have not yet been sent. */
#define SERVER_SHUTDOWN_FLUSH_MS 100
/* Status events waiting for the next poll; more between two polls are dropped. */
#define PENDING_MAX 16

/*
 * A connection attempt runs on its own short-lived thread, because libmidisock's connect waits
 * for the TCP handshake (and name resolution) and Pd's scheduler thread must never wait on the
 * network. The attempt is shared by the link and the thread (two references); whoever lets go
 * last frees it, so a link can be freed or reconnected while an attempt is still under way.
 */
typedef struct {
    pthread_mutex_t lock;
    int references;
    int done;
    uint32_t jitter_mode; /* the link's jitter buffer when the attempt started */
    uint64_t jitter_delay_us;
    int wake_fd; /* the link's wake-up eventfd (a duplicate, closed with the attempt), or -1 */
    midisock_port *port; /* the result, when done and connected */
    char error[MSG_ERROR_LEN];
    char address[];
} connect_attempt;

typedef struct {
    msg_status status;
    long number;
    char text[MSG_ERROR_LEN];
} pending_status;

struct msg_link {
    connect_attempt *attempt; /* client, connecting */
    midisock_port *port;      /* client, connected (libmidisock reconnects it after drops) */
    midisock_link_status link; /* client: the port's state at the last poll */
    int send_refusal_reported; /* client: a send refused while down was reported since the drop */
    char address[MSG_ERROR_LEN];
    midisock_server *server; /* server */
    size_t peers;            /* server: clients at the last poll */
    pending_status pending[PENDING_MAX];
    size_t pending_count;
    uint8_t *buffer; /* received bytes; grown for long sysex */
    size_t buffer_len;
    uint32_t jitter_mode; /* for the next connect or serve (msg_link_set_jitter_buffer) */
    uint64_t jitter_delay_us;
    /* msg_link_fd: an epoll set holding `wake_fd` and the open handle's own poll descriptor
     * (libmidisock's, readable for arrivals, due messages and state changes; it leaves the set
     * by itself when the handle is freed). -1 when they could not be made. */
    int epoll_fd;
    /* An eventfd for what libmidisock does not signal: a finished connection attempt, a status
     * queued here. Cleared at the start of each poll. */
    int wake_fd;
};

/* Makes the link's descriptor readable (see msg_link_fd). */
static void wake(int fd) {
    if (fd < 0) return;
    uint64_t one = 1;
    /* A full counter (EAGAIN) is still readable, which is all that is wanted. */
    if (write(fd, &one, sizeof one) < 0) return;
}

/* Adds the open handle's poll descriptor to the link's set. */
static void watch_handle(msg_link *link) {
    if (link->epoll_fd < 0) return;
    int fd = -1;
    midisock_result result = link->port != NULL   ? midisock_port_poll_fd(link->port, &fd)
                             : link->server != NULL ? midisock_server_poll_fd(link->server, &fd)
                                                    : MIDISOCK_RESULT_CLOSED;
    if (result != MIDISOCK_RESULT_OK) {
        /* Without it the host would not hear of arrivals: keep it polling on its clock. */
        close(link->epoll_fd);
        link->epoll_fd = -1;
        return;
    }
    struct epoll_event event = {.events = EPOLLIN, .data = {.fd = fd}};
    if (epoll_ctl(link->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0 && errno != EEXIST) {
        close(link->epoll_fd);
        link->epoll_fd = -1;
    }
}

static void queue_status(msg_link *link, msg_status status, long number, const char *text) {
    if (link->pending_count == PENDING_MAX) return;
    wake(link->wake_fd);
    pending_status *p = &link->pending[link->pending_count++];
    p->status = status;
    p->number = number;
    snprintf(p->text, sizeof p->text, "%s", text ? text : "");
}

/* The last libmidisock error of this thread, or the result's name when there is none. */
static void library_error(midisock_result result, const char *doing, char error[MSG_ERROR_LEN]) {
    char detail[MSG_ERROR_LEN];
    size_t len = 0;
    if (midisock_last_error_message(detail, sizeof detail, &len) != MIDISOCK_RESULT_OK || len == 0) {
        snprintf(detail, sizeof detail, "%s", midisock_result_str(result));
    }
    say(error, "%s: %s", doing, detail);
}

static void attempt_release(connect_attempt *attempt) {
    pthread_mutex_lock(&attempt->lock);
    int left = --attempt->references;
    pthread_mutex_unlock(&attempt->lock);
    if (left == 0) {
        midisock_port_free(attempt->port);
        if (attempt->wake_fd >= 0) close(attempt->wake_fd);
        pthread_mutex_destroy(&attempt->lock);
        free(attempt);
    }
}

static void *attempt_run(void *arg) {
    connect_attempt *attempt = arg;
    midisock_port *port = NULL;
    char error[MSG_ERROR_LEN] = "";
    midisock_connect_options *options = NULL;
    midisock_result result = midisock_connect_options_new(&options);
    if (result == MIDISOCK_RESULT_OK) result = midisock_connect_options_set_timeout_ms(options, CONNECT_TIMEOUT_MS);
    if (result == MIDISOCK_RESULT_OK) {
        result = midisock_connect_options_set_reconnect(options, RECONNECT_INITIAL_MS, RECONNECT_MAX_MS,
                                                        RECONNECT_MAX_ATTEMPTS);
    }
    if (result == MIDISOCK_RESULT_OK) {
        result = midisock_connect_options_set_jitter_buffer(options, attempt->jitter_mode, attempt->jitter_delay_us);
    }
    if (result == MIDISOCK_RESULT_OK) result = midisock_port_connect_with(attempt->address, options, &port);
    if (result != MIDISOCK_RESULT_OK) library_error(result, "cannot connect", error);
    midisock_connect_options_free(options);
    pthread_mutex_lock(&attempt->lock);
    attempt->port = port;
    snprintf(attempt->error, sizeof attempt->error, "%s", error);
    attempt->done = 1;
    wake(attempt->wake_fd); /* the host collects it at its next poll */
    pthread_mutex_unlock(&attempt->lock);
    attempt_release(attempt);
    return NULL;
}

msg_link *msg_link_new(void) {
    msg_link *link = calloc(1, sizeof *link);
    if (link == NULL) return NULL;
    link->buffer_len = 256;
    link->buffer = malloc(link->buffer_len);
    if (link->buffer == NULL) {
        free(link);
        return NULL;
    }
    link->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    link->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event event = {.events = EPOLLIN, .data = {.fd = link->wake_fd}};
    if (link->epoll_fd >= 0 && (link->wake_fd < 0 || epoll_ctl(link->epoll_fd, EPOLL_CTL_ADD, link->wake_fd, &event) != 0)) {
        close(link->epoll_fd); /* no descriptor: the host polls on its clock */
        link->epoll_fd = -1;
    }
    return link;
}

int msg_link_fd(const msg_link *link) { return link->epoll_fd; }

/* Closes everything without reporting; the caller queues what it wants said. Returns whether
 * anything was open. */
static int close_all(msg_link *link) {
    int was_open = link->attempt != NULL || link->port != NULL || link->server != NULL;
    if (link->attempt != NULL) {
        attempt_release(link->attempt); /* the thread frees it (and any port) when it ends */
        link->attempt = NULL;
    }
    midisock_port_free(link->port);
    link->port = NULL;
    midisock_server_free(link->server);
    link->server = NULL;
    link->peers = 0;
    return was_open;
}

void msg_link_free(msg_link *link) {
    if (link == NULL) return;
    close_all(link);
    if (link->epoll_fd >= 0) close(link->epoll_fd);
    if (link->wake_fd >= 0) close(link->wake_fd);
    free(link->buffer);
    free(link);
}

/* "host:port" or "[v6]:port" with a port 0..65535 and a host (empty for a server: any). */
static int check_address(const char *address, int client, char error[MSG_ERROR_LEN]) {
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon[1] == '\0') {
        say(error, "address '%s' has no port: write host:port, e.g. localhost:8080", address);
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || errno != 0 || port < 0 || port > 65535 || colon[1] == '-' || colon[1] == '+') {
        say(error, "address '%s': the port must be a number 0..65535", address);
        return -1;
    }
    if (client && (colon == address || port == 0)) {
        say(error, "address '%s': a client needs a host and a port 1..65535", address);
        return -1;
    }
    if (strlen(address) >= MSG_ERROR_LEN - 1) {
        say(error, "address is too long");
        return -1;
    }
    return 0;
}

int msg_link_connect(msg_link *link, const char *address, char error[MSG_ERROR_LEN]) {
    if (check_address(address, 1, error) != 0) return -1;
    size_t length = strlen(address);
    connect_attempt *attempt = calloc(1, sizeof *attempt + length + 1);
    if (attempt == NULL) {
        say(error, "out of memory");
        return -1;
    }
    memcpy(attempt->address, address, length + 1);
    attempt->jitter_mode = link->jitter_mode;
    attempt->jitter_delay_us = link->jitter_delay_us;
    attempt->references = 2; /* the link and the thread */
    attempt->wake_fd = link->wake_fd >= 0 ? dup(link->wake_fd) : -1;
    if (pthread_mutex_init(&attempt->lock, NULL) != 0) {
        if (attempt->wake_fd >= 0) close(attempt->wake_fd);
        free(attempt);
        say(error, "cannot create a lock");
        return -1;
    }
    pthread_attr_t attributes;
    pthread_t thread;
    int started = pthread_attr_init(&attributes) == 0;
    if (started) {
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&thread, &attributes, attempt_run, attempt) == 0;
        pthread_attr_destroy(&attributes);
    }
    if (!started) {
        if (attempt->wake_fd >= 0) close(attempt->wake_fd);
        pthread_mutex_destroy(&attempt->lock);
        free(attempt);
        say(error, "cannot start a thread to connect");
        return -1;
    }
    if (close_all(link)) queue_status(link, MSG_STATUS_DISCONNECTED, 0, "reconnecting elsewhere");
    link->attempt = attempt;
    snprintf(link->address, sizeof link->address, "%s", address);
    return 0;
}

int msg_link_serve(msg_link *link, const char *address, char error[MSG_ERROR_LEN]) {
    if (check_address(address, 0, error) != 0) return -1;
    midisock_server_config *config = NULL;
    midisock_server *server = NULL;
    midisock_result result = midisock_server_config_new(&config);
    if (result == MIDISOCK_RESULT_OK) result = midisock_server_config_set_shutdown_flush_ms(config, SERVER_SHUTDOWN_FLUSH_MS);
    if (result == MIDISOCK_RESULT_OK) {
        result = midisock_server_config_set_jitter_buffer(config, link->jitter_mode, link->jitter_delay_us);
    }
    if (result == MIDISOCK_RESULT_OK) result = midisock_server_bind_with(address, config, &server);
    if (result != MIDISOCK_RESULT_OK) library_error(result, "cannot serve", error);
    midisock_server_config_free(config);
    if (result != MIDISOCK_RESULT_OK) return -1;
    uint16_t port = 0;
    midisock_server_local_port(server, &port);
    if (close_all(link)) queue_status(link, MSG_STATUS_DISCONNECTED, 0, "serving instead");
    link->server = server;
    watch_handle(link);
    snprintf(link->address, sizeof link->address, "%s", address);
    queue_status(link, MSG_STATUS_LISTENING, port, address);
    queue_status(link, MSG_STATUS_PEERS, 0, NULL);
    return 0;
}

void msg_link_disconnect(msg_link *link) {
    if (close_all(link)) queue_status(link, MSG_STATUS_DISCONNECTED, 0, "on request");
}

/* After a failed client send or receive: close and tell why. */
static void lost_connection(msg_link *link, const char *why) {
    close_all(link);
    queue_status(link, MSG_STATUS_DISCONNECTED, 0, why);
}

/* The outcome of a send-like call on whichever end is open; a client whose connection is gone
 * closes it (the next poll reports it). */
static int link_send_with(msg_link *link, const char *doing, midisock_result port_result,
                          midisock_result server_result, int used_port, char error[MSG_ERROR_LEN]) {
    midisock_result result = used_port ? port_result : server_result;
    if (result == MIDISOCK_RESULT_OK) return 0;
    if (used_port && result == MIDISOCK_RESULT_DISCONNECTED) {
        /* Down and reconnecting: said once per drop, not once per note of a playing patch. */
        if (link->send_refusal_reported) {
            error[0] = '\0';
        } else {
            say(error, "%s: the connection is down, reconnecting to %s: nothing is sent until it is back", doing,
                link->address);
            link->send_refusal_reported = 1;
        }
        return -1;
    }
    library_error(result, doing, error);
    if (used_port && (result == MIDISOCK_RESULT_CLOSED || result == MIDISOCK_RESULT_REFUSED ||
                      result == MIDISOCK_RESULT_GAVE_UP || result == MIDISOCK_RESULT_IO)) {
        lost_connection(link, "the connection was lost while sending");
    }
    return -1;
}

static int not_open(const msg_link *link, char error[MSG_ERROR_LEN]) {
    if (link->attempt != NULL) {
        say(error, "still connecting to %s: nothing sent", link->address);
    } else {
        say(error, "not connected: send 'connect host:port' or 'serve host:port' first");
    }
    return -1;
}

int msg_link_send(msg_link *link, const uint8_t *bytes, size_t len, char error[MSG_ERROR_LEN]) {
    if (link->port != NULL) {
        return link_send_with(link, "cannot send", midisock_port_send(link->port, bytes, len), 0, 1, error);
    }
    if (link->server != NULL) {
        return link_send_with(link, "cannot send", 0, midisock_server_send(link->server, bytes, len), 0, error);
    }
    return not_open(link, error);
}

int msg_link_panic(msg_link *link, char error[MSG_ERROR_LEN]) {
    if (link->port != NULL) return link_send_with(link, "panic", midisock_port_panic(link->port), 0, 1, error);
    if (link->server != NULL) return link_send_with(link, "panic", 0, midisock_server_panic(link->server), 0, error);
    return not_open(link, error);
}

int msg_link_reset(msg_link *link, char error[MSG_ERROR_LEN]) {
    if (link->port != NULL) return link_send_with(link, "reset", midisock_port_reset(link->port), 0, 1, error);
    if (link->server != NULL) return link_send_with(link, "reset", 0, midisock_server_reset(link->server), 0, error);
    return not_open(link, error);
}

int msg_link_set_jitter_buffer(msg_link *link, const char *setting, char error[MSG_ERROR_LEN]) {
    if (strcasecmp(setting, "off") == 0) { /* any case, as libmidisock takes "auto" */
        link->jitter_mode = MIDISOCK_JITTER_MODE_OFF;
        link->jitter_delay_us = 0;
        return 0;
    }
    /* libmidisock reads the one text form every midisock front end takes. */
    uint32_t mode = 0;
    uint64_t delay_us = 0;
    midisock_result result = midisock_jitter_buffer_parse(setting, &mode, &delay_us);
    if (result != MIDISOCK_RESULT_OK) {
        char detail[MSG_ERROR_LEN];
        size_t len = 0;
        if (midisock_last_error_message(detail, sizeof detail, &len) != MIDISOCK_RESULT_OK) detail[0] = '\0';
        const char *colon = strstr(detail, ": "); /* after the function's name */
        say(error, "%s, or off", colon != NULL ? colon + 2 : midisock_result_str(result));
        return -1;
    }
    link->jitter_mode = mode;
    link->jitter_delay_us = delay_us;
    return 0;
}

/* The figures of one jitter buffer, in msg_link_stats's order. */
static void report_stats(const char *peer, const midisock_playout_stats *stats, msg_stat_callback each,
                         void *context) {
    if (stats->has_offset) each(context, peer, "offset_ms", (double)stats->offset_ns / 1e6);
    if (stats->has_jitter) {
        each(context, peer, "jitter_p50_ms", (double)stats->jitter_p50_ns / 1e6);
        each(context, peer, "jitter_p999_ms", (double)stats->jitter_p999_ns / 1e6);
    }
    each(context, peer, "delay_ms", (double)stats->delay_ns / 1e6);
    each(context, peer, "queued", (double)stats->queued);
    each(context, peer, "held_note_offs", (double)stats->held_note_offs);
    each(context, peer, "pushed", (double)stats->pushed);
    each(context, peer, "delivered", (double)stats->delivered);
    each(context, peer, "late", (double)stats->late);
    each(context, peer, "stale_notes_dropped", (double)stats->stale_notes_dropped);
    each(context, peer, "stale_note_offs_dropped", (double)stats->stale_note_offs_dropped);
    each(context, peer, "delivered_early_full", (double)stats->delivered_early_full);
    each(context, peer, "restarts", (double)stats->restarts);
}

/* A server's clients' buffers: asks how many, then reads them into an array that size (a few
 * more, as clients come and go meanwhile). */
static int server_stats(msg_link *link, msg_stat_callback each, void *context, char error[MSG_ERROR_LEN]) {
    size_t count = 0;
    midisock_result result = midisock_server_playout_stats(link->server, NULL, 0, &count);
    for (int tries = 0; result == MIDISOCK_RESULT_BUFFER_TOO_SMALL && tries < 3; tries++) {
        size_t capacity = count + 8;
        midisock_client_playout_stats *clients = malloc(capacity * sizeof *clients);
        if (clients == NULL) {
            say(error, "out of memory");
            return -1;
        }
        result = midisock_server_playout_stats(link->server, clients, capacity, &count);
        if (result == MIDISOCK_RESULT_OK) {
            for (size_t i = 0; i < count; i++) report_stats(clients[i].peer, &clients[i].stats, each, context);
        }
        free(clients);
    }
    if (result == MIDISOCK_RESULT_NOT_ENABLED) return 0;
    if (result != MIDISOCK_RESULT_OK) {
        library_error(result, "cannot read the server's stats", error);
        return -1;
    }
    return 1;
}

int msg_link_stats(msg_link *link, msg_stat_callback each, void *context, char error[MSG_ERROR_LEN]) {
    if (link->server != NULL) return server_stats(link, each, context, error);
    if (link->port == NULL) {
        if (link->attempt != NULL) {
            say(error, "still connecting to %s", link->address);
        } else {
            say(error, "not connected: send 'connect host:port' or 'serve host:port' first");
        }
        return -1;
    }
    midisock_playout_stats stats;
    midisock_result result = midisock_port_playout_stats(link->port, &stats);
    if (result == MIDISOCK_RESULT_NOT_ENABLED) return 0;
    if (result != MIDISOCK_RESULT_OK) {
        library_error(result, "cannot read the connection's stats", error);
        return -1;
    }
    report_stats(link->address, &stats, each, context);
    return 1;
}

/* A connection attempt that finished becomes the link's port (or an error). */
static void collect_attempt(msg_link *link) {
    connect_attempt *attempt = link->attempt;
    pthread_mutex_lock(&attempt->lock);
    int done = attempt->done;
    midisock_port *port = attempt->port;
    char error[MSG_ERROR_LEN];
    snprintf(error, sizeof error, "%s", attempt->error);
    if (done) attempt->port = NULL; /* ours now */
    pthread_mutex_unlock(&attempt->lock);
    if (!done) return;
    attempt_release(attempt);
    link->attempt = NULL;
    if (port != NULL) {
        link->port = port;
        watch_handle(link);
        link->link = (midisock_link_status){MIDISOCK_LINK_STATE_CONNECTED, 0, 0};
        link->send_refusal_reported = 0;
        queue_status(link, MSG_STATUS_CONNECTED, 0, link->address);
    } else {
        queue_status(link, MSG_STATUS_ERROR, 0, error);
        queue_status(link, MSG_STATUS_DISCONNECTED, 0, "not connected");
    }
}

static midisock_result try_receive(msg_link *link, size_t *len) {
    uint64_t timestamp = 0;
    for (;;) {
        midisock_result result =
            link->port != NULL
                ? midisock_port_try_receive(link->port, link->buffer, link->buffer_len, len, &timestamp)
                : midisock_server_try_receive(link->server, link->buffer, link->buffer_len, len, &timestamp);
        if (result != MIDISOCK_RESULT_BUFFER_TOO_SMALL) return result;
        /* A long sysex: the library keeps it until a buffer of *len bytes asks again. Its size is
         * bounded by the library's sysex limit (1 MiB by default). */
        uint8_t *bigger = realloc(link->buffer, *len);
        if (bigger == NULL) return MIDISOCK_RESULT_IO;
        link->buffer = bigger;
        link->buffer_len = *len;
    }
}

/* A client's connection state changed since the last poll (libmidisock reconnects it): say so.
 * States that came and went between two polls are not seen; the last one is. */
static void check_link_state(msg_link *link) {
    midisock_link_status now;
    if (midisock_port_link_status(link->port, &now) != MIDISOCK_RESULT_OK) return;
    if (now.state == link->link.state && now.attempt == link->link.attempt) return;
    char text[MSG_ERROR_LEN];
    size_t len = 0;
    if (midisock_port_link_text(link->port, text, sizeof text, &len) != MIDISOCK_RESULT_OK) text[0] = '\0';
    int was_connected = link->link.state == MIDISOCK_LINK_STATE_CONNECTED;
    link->link = now;
    if (now.state == MIDISOCK_LINK_STATE_CONNECTED) {
        link->send_refusal_reported = 0;
        queue_status(link, MSG_STATUS_CONNECTED, 0, link->address);
        return;
    }
    if (was_connected) {
        /* A drop, even when the port is already past DISCONNECTED (reconnecting) by now. */
        const char *prefix = "disconnected: "; /* the status says that much already */
        int has_reason = now.state == MIDISOCK_LINK_STATE_DISCONNECTED && strncmp(text, prefix, strlen(prefix)) == 0;
        queue_status(link, MSG_STATUS_DISCONNECTED, 0, has_reason ? text + strlen(prefix) : "the connection dropped");
    }
    if (now.state == MIDISOCK_LINK_STATE_RECONNECTING) {
        queue_status(link, MSG_STATUS_RECONNECTING, (long)now.attempt, text);
    }
    /* Gave up or closed: the next receive says so and the link closes. */
}

/* A server's number of clients changed since the last look: say so. */
static void check_peers(msg_link *link) {
    size_t peers = 0;
    if (midisock_server_client_count(link->server, &peers) == MIDISOCK_RESULT_OK && peers != link->peers) {
        link->peers = peers;
        queue_status(link, MSG_STATUS_PEERS, (long)peers, NULL);
    }
}

int msg_link_poll(msg_link *link, const msg_link_events *events, void *context, size_t max_messages) {
    if (link->wake_fd >= 0) {
        /* Cleared first: whatever is queued from here on signals again. */
        uint64_t count;
        if (read(link->wake_fd, &count, sizeof count) < 0) count = 0;
    }
    if (link->attempt != NULL) collect_attempt(link);
    if (link->port != NULL) check_link_state(link);
    if (link->server != NULL) check_peers(link);
    /* Statuses first: a CONNECTED comes before the messages of that connection. The list is
     * copied out because a callback may call back into the link (a patch reacting to a status). */
    pending_status pending[PENDING_MAX];
    size_t pending_count = link->pending_count;
    memcpy(pending, link->pending, pending_count * sizeof pending[0]);
    link->pending_count = 0;
    for (size_t i = 0; i < pending_count; i++) {
        events->status(context, pending[i].status, pending[i].number, pending[i].text);
    }
    int more = 0;
    for (size_t i = 0; link->port != NULL || link->server != NULL; i++) {
        if (i == max_messages) {
            more = 1; /* perhaps: libmidisock's descriptor does not count what it already read */
            break;
        }
        size_t len = 0;
        midisock_result result = try_receive(link, &len);
        if (result == MIDISOCK_RESULT_WOULD_BLOCK) {
            /* The receive that found nothing cleared libmidisock's signal: a change since the
             * look above would be lost, so look again (a change is queued, and wakes the host). */
            if (link->port != NULL) check_link_state(link);
            if (link->server != NULL) check_peers(link);
            break;
        }
        if (result == MIDISOCK_RESULT_OK) {
            /* The callback may send, connect or disconnect (the loop re-checks what is open);
             * only the receive above touches the buffer. */
            events->message(context, link->buffer, len);
            continue;
        }
        if (link->port != NULL && result == MIDISOCK_RESULT_CLOSED) {
            lost_connection(link, "the server closed the connection");
        } else {
            /* A refusal (the server's words), an I/O error, or a server that stopped. */
            char error[MSG_ERROR_LEN];
            library_error(result, link->port != NULL ? "connection lost" : "the server stopped", error);
            queue_status(link, MSG_STATUS_ERROR, 0, error);
            lost_connection(link, error);
        }
        break;
    }
    int open = link->attempt != NULL || link->port != NULL || link->server != NULL || link->pending_count > 0;
    return open ? 1 + more : 0;
}
