/* reconnect.c — a port made with a reconnect policy survives its server's restart: the note it
 * had received and not seen released comes back as a note-off, sends while down return
 * MIDISOCK_RESULT_DISCONNECTED, midisock_port_link_status reports each state, and after the
 * server returns on the same address messages flow both ways again. A port whose server never
 * returns gives up after its attempts (MIDISOCK_RESULT_GAVE_UP). Bad policies are refused. */
#include "check.h"

static const uint8_t NOTE_ON[3] = {0x90, 60, 100};
static const uint8_t NOTE_OFF[3] = {0x80, 60, 0};

/* Waits (at most 10 s) until the port reports `want`. */
static void wait_for_link_state(const midisock_port *port, uint32_t want) {
    midisock_link_status status;
    for (int i = 0; i < 10000; i++) {
        OK(midisock_port_link_status(port, &status));
        if (status.state == want) return;
        sleep_ms();
    }
    char text[128];
    size_t len = 0;
    OK(midisock_port_link_text(port, text, sizeof text, &len));
    fprintf(stderr, "link state is %u (%s), expected %u\n", (unsigned)status.state, text, (unsigned)want);
    exit(1);
}

static midisock_port *connect_reconnecting(const char *address, uint32_t max_attempts) {
    midisock_connect_options *options = NULL;
    OK(midisock_connect_options_new(&options));
    OK(midisock_connect_options_set_timeout_ms(options, 5000));
    OK(midisock_connect_options_set_reconnect(options, 20, 200, max_attempts));
    midisock_port *port = NULL;
    OK(midisock_port_connect_with(address, options, &port));
    OK(midisock_connect_options_free(options));
    return port;
}

static void survives_a_restart(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *client = connect_reconnecting(address, 0);
    midisock_link_status status;
    OK(midisock_port_link_status(client, &status));
    CHECK(status.state == MIDISOCK_LINK_STATE_CONNECTED);
    EXPECT(midisock_port_set_callback(client, NULL, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);

    wait_for_clients(server, 1);
    OK(midisock_server_send(server, NOTE_ON, sizeof NOTE_ON));
    uint8_t buf[16];
    size_t len = 0;
    uint64_t stamp = 0;
    OK(midisock_port_receive_timeout(client, 5000, buf, sizeof buf, &len, &stamp));
    CHECK(len == 3 && memcmp(buf, NOTE_ON, 3) == 0);

    /* The server goes away with the note held: the receiver gets its note-off. */
    OK(midisock_server_free(server));
    OK(midisock_port_receive_timeout(client, 5000, buf, sizeof buf, &len, &stamp));
    CHECK(len == 3 && memcmp(buf, NOTE_OFF, 3) == 0);
    wait_for_link_state(client, MIDISOCK_LINK_STATE_RECONNECTING);
    OK(midisock_port_link_status(client, &status));
    CHECK(status.attempt >= 1 && status.delay_ms <= 200);
    EXPECT(midisock_port_send(client, NOTE_ON, sizeof NOTE_ON), MIDISOCK_RESULT_DISCONNECTED);
    char text[128];
    OK(midisock_port_link_text(client, text, sizeof text, &len));
    CHECK(strncmp(text, "reconnecting: attempt ", 22) == 0 || strncmp(text, "disconnected: ", 14) == 0);

    /* Back on the same address: the port reconnects by itself. */
    server = NULL;
    OK(midisock_server_bind(address, &server));
    wait_for_link_state(client, MIDISOCK_LINK_STATE_CONNECTED);
    OK(midisock_port_send(client, NOTE_ON, sizeof NOTE_ON));
    OK(midisock_server_receive_timeout(server, 5000, buf, sizeof buf, &len, &stamp));
    CHECK(len == 3 && memcmp(buf, NOTE_ON, 3) == 0);
    OK(midisock_server_send(server, NOTE_OFF, sizeof NOTE_OFF));
    OK(midisock_port_receive_timeout(client, 5000, buf, sizeof buf, &len, &stamp));
    CHECK(len == 3 && memcmp(buf, NOTE_OFF, 3) == 0);

    OK(midisock_port_close(client));
    OK(midisock_port_link_status(client, &status));
    CHECK(status.state == MIDISOCK_LINK_STATE_CLOSED);
    EXPECT(midisock_port_send(client, NOTE_ON, sizeof NOTE_ON), MIDISOCK_RESULT_CLOSED);
    OK(midisock_port_free(client));
    OK(midisock_server_free(server));
    printf("reconnect: a server restart is survived, held notes released\n");
}

static void gives_up(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *client = connect_reconnecting(address, 2);
    OK(midisock_server_free(server)); /* and never comes back */
    uint8_t buf[16];
    size_t len = 0;
    uint64_t stamp = 0;
    EXPECT(midisock_port_receive_timeout(client, 10000, buf, sizeof buf, &len, &stamp), MIDISOCK_RESULT_GAVE_UP);
    midisock_link_status status;
    OK(midisock_port_link_status(client, &status));
    CHECK(status.state == MIDISOCK_LINK_STATE_GAVE_UP && status.attempt == 2);
    bool closed = false;
    OK(midisock_port_is_closed(client, &closed));
    CHECK(closed);
    EXPECT(midisock_port_send(client, NOTE_ON, sizeof NOTE_ON), MIDISOCK_RESULT_GAVE_UP);
    OK(midisock_port_free(client));
    printf("reconnect: gives up after its attempts\n");
}

static void bad_policies(void) {
    midisock_connect_options *options = NULL;
    OK(midisock_connect_options_new(&options));
    EXPECT(midisock_connect_options_set_reconnect(options, 0, 100, 0), MIDISOCK_RESULT_INVALID_ARGUMENT);
    EXPECT(midisock_connect_options_set_reconnect(options, 500, 100, 0), MIDISOCK_RESULT_INVALID_ARGUMENT);
    EXPECT(midisock_connect_options_set_reconnect(NULL, 10, 100, 0), MIDISOCK_RESULT_NULL_ARGUMENT);
    OK(midisock_connect_options_free(options));

    /* A plain port: connected, then closed. */
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *plain = NULL;
    OK(midisock_port_connect(address, &plain));
    midisock_link_status status;
    OK(midisock_port_link_status(plain, &status));
    CHECK(status.state == MIDISOCK_LINK_STATE_CONNECTED);
    EXPECT(midisock_port_link_status(plain, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    OK(midisock_port_close(plain));
    OK(midisock_port_link_status(plain, &status));
    CHECK(status.state == MIDISOCK_LINK_STATE_CLOSED);
    OK(midisock_port_free(plain));
    OK(midisock_server_free(server));
    printf("reconnect: bad policies are refused\n");
}

int main(void) {
    survives_a_restart();
    gives_up();
    bad_policies();
    printf("reconnect: ok\n");
    return 0;
}
