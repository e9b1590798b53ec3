/* broadcast.c — one server, several clients: midisock_server_send reaches every client, and
 * a client that leaves drops out of the server by itself. */
#include "check.h"

#define CLIENTS 3

int main(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) OK(midisock_port_connect(address, &clients[i]));
    wait_for_clients(server, CLIENTS); /* connections are accepted on the server's thread */

    /* One note and one sysex, in one call, to everyone. */
    const uint8_t out[] = {0x91, 64, 100, 0xF0, 0x7D, 0x01, 0xF7};
    OK(midisock_server_send(server, out, sizeof out));

    for (int i = 0; i < CLIENTS; i++) {
        uint8_t buf[16];
        size_t len = 0;
        uint64_t first = 0, second = 0;
        OK(midisock_port_receive_timeout(clients[i], 5000, buf, sizeof buf, &len, &first));
        CHECK(len == 3 && memcmp(buf, out, 3) == 0);
        OK(midisock_port_receive_timeout(clients[i], 5000, buf, sizeof buf, &len, &second));
        CHECK(len == 4 && memcmp(buf, out + 3, 4) == 0);
        CHECK(first <= second);
    }

    /* mido's reset set: 32 control changes to every client. */
    OK(midisock_server_reset(server));
    for (int i = 0; i < CLIENTS; i++) {
        for (int n = 0; n < 32; n++) {
            uint8_t buf[4];
            size_t len = 0;
            uint64_t stamp = 0;
            OK(midisock_port_receive_timeout(clients[i], 5000, buf, sizeof buf, &len, &stamp));
            CHECK(len == 3 && (buf[0] & 0xF0) == 0xB0);
        }
    }

    /* A client leaves; the others still get broadcasts. */
    OK(midisock_port_free(clients[0]));
    wait_for_clients(server, CLIENTS - 1);
    const uint8_t clock = 0xF8;
    OK(midisock_server_send(server, &clock, 1));
    {
        uint8_t buf[4];
        size_t len = 0;
        uint64_t stamp = 0;
        OK(midisock_port_receive_timeout(clients[2], 5000, buf, sizeof buf, &len, &stamp));
        CHECK(len == 1 && buf[0] == 0xF8);
    }

    /* Closing the server ends every client's stream: receive says CLOSED. */
    OK(midisock_server_close(server));
    for (int i = 1; i < CLIENTS; i++) {
        uint8_t buf[64];
        size_t len = 0;
        uint64_t stamp = 0;
        midisock_result r;
        /* Drain what was sent before the close (client 1 has the clock still waiting). */
        do {
            r = midisock_port_receive_timeout(clients[i], 5000, buf, sizeof buf, &len, &stamp);
        } while (r == MIDISOCK_RESULT_OK);
        EXPECT(r, MIDISOCK_RESULT_CLOSED);
        bool closed = false;
        OK(midisock_port_is_closed(clients[i], &closed));
        CHECK(closed);
        OK(midisock_port_free(clients[i]));
    }
    OK(midisock_server_free(server));
    printf("broadcast: ok\n");
    return 0;
}
