/* errors.c — every way a call can fail, and what the caller gets back: a distinct result code,
 * outputs left alone, a readable text for the code and a detailed last error for the thread. */
#include "check.h"

/* A callback that is never meant to run. */
static void unused_callback(void *user_data, const uint8_t *bytes, size_t len, uint64_t stamp) {
    (void)user_data;
    (void)bytes;
    (void)len;
    (void)stamp;
}

/* The calling thread's last error detail must mention `needle`. */
static void expect_detail(const char *needle) {
    char detail[512];
    size_t len = 0;
    OK(midisock_last_error_message(detail, sizeof detail, &len));
    if (strstr(detail, needle) == NULL) {
        fprintf(stderr, "last error \"%s\" does not mention \"%s\"\n", detail, needle);
        exit(1);
    }
}

static void null_arguments(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *port = NULL;
    OK(midisock_port_connect(address, &port));
    uint8_t buf[8];
    char text[64];
    size_t len = 0;
    uint64_t stamp = 0;
    uint16_t tcp_port = 0;
    bool closed = false;
    const uint8_t note[3] = {0x90, 60, 64};

    EXPECT(midisock_server_bind(NULL, &server), MIDISOCK_RESULT_NULL_ARGUMENT);
    expect_detail("`address` is NULL");
    EXPECT(midisock_server_bind("127.0.0.1:0", NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_connect(NULL, &port), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_connect(address, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_connect_timeout(NULL, 10, &port), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_send(NULL, note, 3), MIDISOCK_RESULT_NULL_ARGUMENT);
    expect_detail("midisock_port_send: argument `port` is NULL");
    EXPECT(midisock_port_send(port, NULL, 3), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_receive(NULL, buf, 8, &len, &stamp), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_receive(port, NULL, 8, &len, &stamp), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_receive(port, buf, 8, NULL, &stamp), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_receive(port, buf, 8, &len, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_try_receive(NULL, buf, 8, &len, &stamp), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_receive_timeout(port, 1, buf, 8, NULL, &stamp),
           MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_set_callback(NULL, NULL, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_set_callback(port, NULL, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    expect_detail("`callback` is NULL");
    EXPECT(midisock_port_close(NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_is_closed(NULL, &closed), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_is_closed(port, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_name(port, NULL, 8, &len), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_name(NULL, text, 8, &len), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_reset(NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_panic(NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_local_port(NULL, &tcp_port), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_local_port(server, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_name(server, text, 8, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_client_count(server, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_send(NULL, note, 3), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_send(server, NULL, 3), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_receive(server, NULL, 8, &len, &stamp), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_try_receive(NULL, buf, 8, &len, &stamp), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_receive_timeout(server, 1, buf, 8, &len, NULL),
           MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_accept(server, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_try_accept(NULL, &port), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_accept_timeout(server, 1, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_reset(NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_panic(NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_close(NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_message_from_text(NULL, buf, 8, &len), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_message_from_text("clock", buf, 8, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_message_to_text(NULL, 3, text, 64, &len), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_message_to_text(note, 3, NULL, 64, &len), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_monotonic_ns(NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_last_error_message(NULL, 8, &len), MIDISOCK_RESULT_NULL_ARGUMENT);

    /* _free(NULL) is a no-op. */
    OK(midisock_port_free(NULL));
    OK(midisock_server_free(NULL));

    OK(midisock_port_free(port));
    OK(midisock_server_free(server));
}

static void bad_addresses(void) {
    midisock_server *server = NULL;
    midisock_port *port = NULL;
    EXPECT(midisock_port_connect("no-port-here", &port), MIDISOCK_RESULT_ADDRESS_SYNTAX);
    expect_detail("no-port-here");
    EXPECT(midisock_port_connect("127.0.0.1:99999", &port), MIDISOCK_RESULT_ADDRESS_SYNTAX);
    EXPECT(midisock_server_bind("[::1:8080", &server), MIDISOCK_RESULT_ADDRESS_SYNTAX);
    EXPECT(midisock_port_connect("bad\xff" "host:80", &port), MIDISOCK_RESULT_INVALID_UTF8);
    EXPECT(midisock_port_connect("host.invalid:8080", &port), MIDISOCK_RESULT_RESOLVE);
    CHECK(port == NULL && server == NULL); /* outputs untouched on failure */

    /* Refused: a port that was free a moment ago has no listener. */
    char address[64];
    server = serve_loopback(address, sizeof address);
    OK(midisock_server_free(server));
    server = NULL;
    EXPECT(midisock_port_connect(address, &port), MIDISOCK_RESULT_CONNECT);
    expect_detail("refused");
    EXPECT(midisock_port_connect_timeout(address, 1000, &port), MIDISOCK_RESULT_CONNECT);

    /* Address in use. */
    midisock_server *first = serve_loopback(address, sizeof address);
    EXPECT(midisock_server_bind(address, &server), MIDISOCK_RESULT_BIND);
    expect_detail("in use");
    OK(midisock_server_free(first));
    CHECK(port == NULL && server == NULL);
}

static void bad_messages(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *port = NULL;
    OK(midisock_port_connect(address, &port));

    const uint8_t cut_off[2] = {0x90, 60};      /* note_on without velocity */
    const uint8_t stray[2] = {0x40, 0x41};      /* data bytes, no status */
    const uint8_t open_sysex[3] = {0xF0, 1, 2}; /* no F7 */
    const uint8_t undefined[1] = {0xF4};
    EXPECT(midisock_port_send(port, cut_off, sizeof cut_off), MIDISOCK_RESULT_INVALID_BYTES);
    EXPECT(midisock_port_send(port, stray, sizeof stray), MIDISOCK_RESULT_INVALID_BYTES);
    EXPECT(midisock_port_send(port, open_sysex, sizeof open_sysex), MIDISOCK_RESULT_INVALID_BYTES);
    EXPECT(midisock_port_send(port, undefined, sizeof undefined), MIDISOCK_RESULT_INVALID_BYTES);
    EXPECT(midisock_port_send(port, cut_off, 0), MIDISOCK_RESULT_INVALID_BYTES);
    EXPECT(midisock_server_send(server, stray, sizeof stray), MIDISOCK_RESULT_INVALID_BYTES);

    uint8_t buf[8];
    size_t len = 99;
    EXPECT(midisock_message_from_text("note_on channel=16", buf, sizeof buf, &len),
           MIDISOCK_RESULT_MESSAGE_TEXT);
    expect_detail("channel");
    EXPECT(midisock_message_from_text("no_such_type", buf, sizeof buf, &len),
           MIDISOCK_RESULT_MESSAGE_TEXT);
    CHECK(len == 99);
    char text[64];
    EXPECT(midisock_message_to_text(cut_off, sizeof cut_off, text, sizeof text, &len),
           MIDISOCK_RESULT_INVALID_BYTES);
    const uint8_t two[2] = {0xF8, 0xF8};
    EXPECT(midisock_message_to_text(two, sizeof two, text, sizeof text, &len),
           MIDISOCK_RESULT_INVALID_BYTES);

    /* Nothing bad was sent: the server has received nothing. */
    uint64_t stamp = 0;
    EXPECT(midisock_server_receive_timeout(server, 50, buf, sizeof buf, &len, &stamp),
           MIDISOCK_RESULT_TIMED_OUT);
    OK(midisock_port_free(port));
    OK(midisock_server_free(server));
}

static void tiny_buffers(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *port = NULL, *peer = NULL;
    OK(midisock_port_connect(address, &port));
    OK(midisock_server_accept(server, &peer));

    /* A 10-byte sysex into a 4-byte buffer: the size needed comes back, the message stays. */
    const uint8_t sysex[10] = {0xF0, 1, 2, 3, 4, 5, 6, 7, 8, 0xF7};
    OK(midisock_port_send(port, sysex, sizeof sysex));
    uint8_t small[4] = {0, 0, 0, 0}, big[16];
    size_t len = 0;
    uint64_t stamp = 0;
    EXPECT(midisock_port_receive(peer, small, sizeof small, &len, &stamp),
           MIDISOCK_RESULT_BUFFER_TOO_SMALL);
    CHECK(len == 10 && stamp == 0 && small[0] == 0);
    expect_detail("needs 10 bytes");
    /* A callback cannot be installed over a kept message. */
    EXPECT(midisock_port_set_callback(peer, unused_callback, NULL), MIDISOCK_RESULT_MESSAGE_KEPT);
    EXPECT(midisock_port_try_receive(peer, small, sizeof small, &len, &stamp),
           MIDISOCK_RESULT_BUFFER_TOO_SMALL);
    OK(midisock_port_try_receive(peer, big, sizeof big, &len, &stamp));
    CHECK(len == 10 && memcmp(big, sysex, 10) == 0 && stamp > 0);

    /* The same on the server's receive. */
    midisock_port *client = NULL;
    OK(midisock_port_connect(address, &client));
    OK(midisock_port_send(client, sysex, sizeof sysex));
    EXPECT(midisock_server_receive(server, small, sizeof small, &len, &stamp),
           MIDISOCK_RESULT_BUFFER_TOO_SMALL);
    CHECK(len == 10);
    OK(midisock_server_receive_timeout(server, 5000, big, sizeof big, &len, &stamp));
    CHECK(len == 10 && memcmp(big, sysex, 10) == 0);

    /* Text buffers: the size needed includes the NUL. */
    char text[8];
    EXPECT(midisock_message_to_text(sysex, sizeof sysex, text, sizeof text, &len),
           MIDISOCK_RESULT_BUFFER_TOO_SMALL);
    CHECK(len == strlen("sysex data=(1,2,3,4,5,6,7,8) time=0") + 1);
    EXPECT(midisock_message_from_text("sysex data=(1,2,3)", small, sizeof small, &len),
           MIDISOCK_RESULT_BUFFER_TOO_SMALL);
    CHECK(len == 5);
    EXPECT(midisock_port_name(port, text, 4, &len), MIDISOCK_RESULT_BUFFER_TOO_SMALL);
    CHECK(len == strlen(address) + 1);

    /* The last error message itself, into a buffer too small for it: retry with a bigger one. */
    EXPECT(midisock_last_error_message(text, 4, &len), MIDISOCK_RESULT_BUFFER_TOO_SMALL);
    char detail[256];
    size_t detail_len = 0;
    CHECK(len <= sizeof detail);
    OK(midisock_last_error_message(detail, sizeof detail, &detail_len));
    CHECK(detail_len + 1 == len && strstr(detail, "midisock_port_name") != NULL);

    OK(midisock_port_free(client));
    OK(midisock_port_free(peer));
    OK(midisock_port_free(port));
    OK(midisock_server_free(server));
}

static void closed_ports(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *port = NULL, *peer = NULL;
    OK(midisock_port_connect(address, &port));
    OK(midisock_server_accept(server, &peer));
    const uint8_t note[3] = {0x90, 60, 64};
    uint8_t buf[8];
    size_t len = 0;
    uint64_t stamp = 0;
    bool closed = true;

    OK(midisock_port_is_closed(port, &closed));
    CHECK(!closed);
    /* Close, and close again: harmless. The handle stays valid until free. */
    OK(midisock_port_close(port));
    OK(midisock_port_close(port));
    OK(midisock_port_is_closed(port, &closed));
    CHECK(closed);
    EXPECT(midisock_port_send(port, note, 3), MIDISOCK_RESULT_CLOSED);
    EXPECT(midisock_port_receive(port, buf, 8, &len, &stamp), MIDISOCK_RESULT_CLOSED);
    EXPECT(midisock_port_try_receive(port, buf, 8, &len, &stamp), MIDISOCK_RESULT_CLOSED);
    EXPECT(midisock_port_reset(port), MIDISOCK_RESULT_CLOSED);
    EXPECT(midisock_port_set_callback(port, unused_callback, NULL), MIDISOCK_RESULT_CLOSED);

    /* The peer sees the end of the stream at once. */
    EXPECT(midisock_port_receive_timeout(peer, 5000, buf, 8, &len, &stamp), MIDISOCK_RESULT_CLOSED);
    OK(midisock_port_is_closed(peer, &closed));
    CHECK(closed);
    /* Sending to a peer that has gone: CLOSED, sooner or later (the first write may still be
     * accepted by the kernel), never a crash or SIGPIPE. */
    midisock_result r = MIDISOCK_RESULT_OK;
    for (int i = 0; i < 1000 && r == MIDISOCK_RESULT_OK; i++) r = midisock_port_send(peer, note, 3);
    EXPECT(r, MIDISOCK_RESULT_CLOSED);

    /* A closed server: every call says CLOSED; closing again is harmless. */
    OK(midisock_server_close(server));
    OK(midisock_server_close(server));
    EXPECT(midisock_server_send(server, note, 3), MIDISOCK_RESULT_CLOSED);
    EXPECT(midisock_server_receive(server, buf, 8, &len, &stamp), MIDISOCK_RESULT_CLOSED);
    EXPECT(midisock_server_accept(server, &peer), MIDISOCK_RESULT_CLOSED);
    EXPECT(midisock_server_try_accept(server, &peer), MIDISOCK_RESULT_CLOSED);

    OK(midisock_port_free(peer));
    OK(midisock_port_free(port));
    OK(midisock_server_free(server));
}

static void result_texts(void) {
    const midisock_result all[] = {
        MIDISOCK_RESULT_OK,           MIDISOCK_RESULT_WOULD_BLOCK,     MIDISOCK_RESULT_TIMED_OUT,
        MIDISOCK_RESULT_BUFFER_TOO_SMALL, MIDISOCK_RESULT_NULL_ARGUMENT, MIDISOCK_RESULT_INVALID_UTF8,
        MIDISOCK_RESULT_ADDRESS_SYNTAX, MIDISOCK_RESULT_RESOLVE,       MIDISOCK_RESULT_CONNECT,
        MIDISOCK_RESULT_BIND,         MIDISOCK_RESULT_CLOSED,          MIDISOCK_RESULT_CALLBACK_INSTALLED,
        MIDISOCK_RESULT_MESSAGE_KEPT, MIDISOCK_RESULT_INVALID_BYTES,   MIDISOCK_RESULT_INVALID_MESSAGE,
        MIDISOCK_RESULT_MESSAGE_TEXT, MIDISOCK_RESULT_IO,              MIDISOCK_RESULT_PANIC,
    };
    const size_t count = sizeof all / sizeof all[0];
    for (size_t i = 0; i < count; i++) {
        const char *text = midisock_result_str(all[i]);
        CHECK(text != NULL && text[0] != '\0');
        for (size_t j = 0; j < i; j++) CHECK(strcmp(text, midisock_result_str(all[j])) != 0);
    }
    CHECK(strcmp(midisock_result_str(MIDISOCK_RESULT_OK), "success") == 0);
    CHECK(strcmp(midisock_result_str(4242), "unknown result code") == 0);
}

int main(void) {
    null_arguments();
    bad_addresses();
    bad_messages();
    tiny_buffers();
    closed_ports();
    result_texts();
    printf("errors: ok\n");
    return 0;
}
