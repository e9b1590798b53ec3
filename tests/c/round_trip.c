/* round_trip.c — a server and a client on loopback: the client sends a note, the server
 * receives it; the server broadcasts a note back. The README example is the first half. */
#include "check.h"

int main(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address); /* bind 127.0.0.1:0 */
    midisock_port *client = NULL;
    OK(midisock_port_connect(address, &client));

    /* Client -> server: mido text to MIDI bytes, send, receive, back to text. */
    uint8_t note[3];
    size_t len = 0;
    OK(midisock_message_from_text("note_on channel=0 note=60 velocity=64", note, sizeof note, &len));
    CHECK(len == 3 && note[0] == 0x90 && note[1] == 60 && note[2] == 64);
    OK(midisock_port_send(client, note, len));

    uint8_t buf[256];
    uint64_t stamp = 0;
    OK(midisock_server_receive(server, buf, sizeof buf, &len, &stamp));
    char text[128];
    size_t text_len = 0;
    OK(midisock_message_to_text(buf, len, text, sizeof text, &text_len));
    CHECK(strcmp(text, "note_on channel=0 note=60 velocity=64 time=0") == 0);
    CHECK(text_len == strlen(text));

    /* The timestamp is CLOCK_MONOTONIC ns at receipt: not in the future. */
    uint64_t now = 0;
    OK(midisock_monotonic_ns(&now));
    CHECK(stamp > 0 && stamp <= now);

    /* Server -> every client: a broadcast, received by the client. */
    wait_for_clients(server, 1);
    const uint8_t off[3] = {0x80, 60, 0};
    OK(midisock_server_send(server, off, sizeof off));
    OK(midisock_port_receive_timeout(client, 5000, buf, sizeof buf, &len, &stamp));
    CHECK(len == 3 && memcmp(buf, off, 3) == 0);

    /* Several messages in one send, received one by one (sysex included). */
    const uint8_t batch[] = {0xB0, 7, 100, 0xF0, 1, 2, 3, 0xF7, 0xF8};
    OK(midisock_port_send(client, batch, sizeof batch));
    OK(midisock_server_receive(server, buf, sizeof buf, &len, &stamp));
    CHECK(len == 3 && buf[0] == 0xB0);
    OK(midisock_server_receive(server, buf, sizeof buf, &len, &stamp));
    OK(midisock_message_to_text(buf, len, text, sizeof text, &text_len));
    CHECK(strcmp(text, "sysex data=(1,2,3) time=0") == 0);
    OK(midisock_server_receive(server, buf, sizeof buf, &len, &stamp));
    CHECK(len == 1 && buf[0] == 0xF8);

    /* Names and the version. */
    OK(midisock_port_name(client, text, sizeof text, &text_len));
    CHECK(strcmp(text, address) == 0);
    OK(midisock_server_name(server, text, sizeof text, &text_len));
    CHECK(strcmp(text, address) == 0);
    CHECK(strcmp(midisock_version(), MIDISOCK_VERSION_STRING) == 0);

    /* The client closes: the server's clients drop out by themselves. */
    OK(midisock_port_free(client));
    wait_for_clients(server, 0);
    OK(midisock_server_free(server));
    printf("round_trip: ok (libmidisock %s)\n", midisock_version());
    return 0;
}
