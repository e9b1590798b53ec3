/* example.c — the README's example, verbatim: a server and a client on loopback, one note. */
#include <midisock.h>
#include <stdio.h>

int main(void) {
    midisock_server *server = NULL;
    midisock_port *client = NULL;
    uint16_t port = 0;
    char address[32], text[128];
    if (midisock_server_bind("127.0.0.1:0", &server) != MIDISOCK_RESULT_OK) return 1; /* 0: any free port */
    midisock_server_local_port(server, &port);
    snprintf(address, sizeof address, "127.0.0.1:%u", (unsigned)port);
    if (midisock_port_connect(address, &client) != MIDISOCK_RESULT_OK) return 1;

    const uint8_t note_on[3] = {0x90, 60, 64};
    midisock_port_send(client, note_on, sizeof note_on);

    uint8_t buf[256]; /* too small? MIDISOCK_RESULT_BUFFER_TOO_SMALL, len = size needed */
    size_t len = 0;
    uint64_t timestamp_ns = 0; /* CLOCK_MONOTONIC when it arrived */
    midisock_result r = midisock_server_receive(server, buf, sizeof buf, &len, &timestamp_ns);
    if (r != MIDISOCK_RESULT_OK) return fprintf(stderr, "%s\n", midisock_result_str(r)), 1;
    midisock_message_to_text(buf, len, text, sizeof text, &len);
    printf("%s\n", text); /* note_on channel=0 note=60 velocity=64 time=0 */

    midisock_port_free(client); /* closes; _free(NULL) is a no-op */
    midisock_server_free(server);
    return 0;
}
