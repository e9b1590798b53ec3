/* accept.c — taking one connection from the server: blocking, non-blocking and with a
 * timeout. The accepted port belongs to the caller; the server no longer reads from it. */
#include "check.h"

int main(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *accepted = NULL;

    /* Nobody there yet. */
    EXPECT(midisock_server_try_accept(server, &accepted), MIDISOCK_RESULT_WOULD_BLOCK);
    EXPECT(midisock_server_accept_timeout(server, 20, &accepted), MIDISOCK_RESULT_TIMED_OUT);
    CHECK(accepted == NULL); /* outputs are written only on success */

    /* A client connects and sends; the accepted port gets its message. */
    midisock_port *client = NULL;
    OK(midisock_port_connect(address, &client));
    const uint8_t program[2] = {0xC5, 12};
    OK(midisock_port_send(client, program, sizeof program));
    OK(midisock_server_accept(server, &accepted));
    uint8_t buf[8];
    size_t len = 0;
    uint64_t stamp = 0;
    OK(midisock_port_receive(accepted, buf, sizeof buf, &len, &stamp));
    CHECK(len == 2 && buf[0] == 0xC5 && buf[1] == 12);

    /* And it answers the client directly. */
    const uint8_t songpos[3] = {0xF2, 0x7F, 0x7F};
    OK(midisock_port_send(accepted, songpos, sizeof songpos));
    OK(midisock_port_receive(client, buf, sizeof buf, &len, &stamp));
    CHECK(len == 3 && memcmp(buf, songpos, 3) == 0);
    char text[64];
    size_t text_len = 0;
    OK(midisock_message_to_text(buf, len, text, sizeof text, &text_len));
    CHECK(strcmp(text, "songpos pos=16383 time=0") == 0);

    /* Nothing else waiting: try_receive and receive_timeout say so without blocking long. */
    EXPECT(midisock_port_try_receive(accepted, buf, sizeof buf, &len, &stamp),
           MIDISOCK_RESULT_WOULD_BLOCK);
    EXPECT(midisock_port_receive_timeout(accepted, 20, buf, sizeof buf, &len, &stamp),
           MIDISOCK_RESULT_TIMED_OUT);

    /* A second client, taken with try_accept once it is there. */
    midisock_port *second_client = NULL, *second = NULL;
    OK(midisock_port_connect(address, &second_client));
    midisock_result r = MIDISOCK_RESULT_WOULD_BLOCK;
    for (int i = 0; i < 5000 && r == MIDISOCK_RESULT_WOULD_BLOCK; i++) {
        r = midisock_server_try_accept(server, &second);
        if (r == MIDISOCK_RESULT_WOULD_BLOCK) sleep_ms();
    }
    OK(r);
    CHECK(second != NULL);

    /* The client hangs up: the accepted side reads what was sent, then CLOSED. */
    const uint8_t stop = 0xFC;
    OK(midisock_port_send(second_client, &stop, 1));
    OK(midisock_port_free(second_client));
    OK(midisock_port_receive(second, buf, sizeof buf, &len, &stamp));
    CHECK(len == 1 && buf[0] == 0xFC);
    EXPECT(midisock_port_receive(second, buf, sizeof buf, &len, &stamp), MIDISOCK_RESULT_CLOSED);

    /* Accepted ports outlive the server. */
    OK(midisock_server_free(server));
    OK(midisock_port_send(client, program, sizeof program));
    OK(midisock_port_receive(accepted, buf, sizeof buf, &len, &stamp));
    CHECK(len == 2);

    OK(midisock_port_free(second));
    OK(midisock_port_free(accepted));
    OK(midisock_port_free(client));
    printf("accept: ok\n");
    return 0;
}
