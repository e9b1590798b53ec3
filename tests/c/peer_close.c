/* peer_close.c — what a port reports once its peer is gone: every send after the peer's close
 * has been seen returns MIDISOCK_RESULT_CLOSED (the bytes would be lost); a server's refusal
 * notice makes receives, sends and midisock_port_finish return MIDISOCK_RESULT_REFUSED with the
 * server's words; midisock_port_finish against a server that accepts returns OK. The refusing
 * servers are fakes made of plain POSIX sockets, so each case is exactly the bytes it names.
 * Also the "any address" forms of midisock_server_bind. */
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static const uint8_t NOTE_ON[3] = {0x90, 60, 64};

/* A listening TCP socket on 127.0.0.1 with a free port; writes "127.0.0.1:PORT" to address. */
static int fake_listen(char *address, size_t len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
    CHECK(listen(fd, 4) == 0);
    socklen_t sin_len = sizeof sin;
    CHECK(getsockname(fd, (struct sockaddr *)&sin, &sin_len) == 0);
    snprintf(address, len, "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    return fd;
}

static void write_all(int fd, const char *bytes, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, bytes, len);
        CHECK(n > 0);
        bytes += n;
        len -= (size_t)n;
    }
}

/* The notice a refusing server writes: F4 "refused: <cause>" F7. */
static void write_notice(int fd, const char *cause) {
    write_all(fd, "\xF4refused: ", 10);
    write_all(fd, cause, strlen(cause));
    write_all(fd, "\xF7", 1);
}

static void expect_last_error_contains(const char *needle) {
    char detail[512];
    size_t len = 0;
    OK(midisock_last_error_message(detail, sizeof detail, &len));
    if (strstr(detail, needle) == NULL) {
        fprintf(stderr, "last error %s lacks \"%s\"\n", detail, needle);
        exit(1);
    }
}

static void send_after_peer_close_is_closed(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *client = NULL, *accepted = NULL;
    OK(midisock_port_connect(address, &client));
    OK(midisock_server_accept_timeout(server, 5000, &accepted));
    OK(midisock_port_free(accepted)); /* the peer closes */

    uint8_t buf[16];
    size_t len = 0;
    uint64_t stamp = 0;
    EXPECT(midisock_port_receive_timeout(client, 5000, buf, sizeof buf, &len, &stamp), MIDISOCK_RESULT_CLOSED);
    bool closed = false;
    OK(midisock_port_is_closed(client, &closed));
    CHECK(closed);
    /* The close has been seen: no send may report success and lose its bytes. */
    for (int i = 0; i < 3; i++) {
        EXPECT(midisock_port_send(client, NOTE_ON, sizeof NOTE_ON), MIDISOCK_RESULT_CLOSED);
    }
    OK(midisock_port_free(client));
    OK(midisock_server_free(server));
    printf("peer_close: send after the peer's close returns MIDISOCK_RESULT_CLOSED\n");
}

static void a_notice_is_reported_everywhere(void) {
    char address[64];
    int listener = fake_listen(address, sizeof address);
    midisock_port *client = NULL;
    OK(midisock_port_connect(address, &client));
    int conn = accept(listener, NULL, NULL);
    CHECK(conn >= 0);
    write_notice(conn, "missing or wrong token");
    close(conn);

    uint8_t buf[16];
    size_t len = 0;
    uint64_t stamp = 0;
    EXPECT(midisock_port_receive_timeout(client, 5000, buf, sizeof buf, &len, &stamp), MIDISOCK_RESULT_REFUSED);
    expect_last_error_contains("missing or wrong token");
    bool closed = false;
    OK(midisock_port_is_closed(client, &closed));
    CHECK(closed);
    EXPECT(midisock_port_try_receive(client, buf, sizeof buf, &len, &stamp), MIDISOCK_RESULT_REFUSED);
    EXPECT(midisock_port_send(client, NOTE_ON, sizeof NOTE_ON), MIDISOCK_RESULT_REFUSED);
    expect_last_error_contains("missing or wrong token");
    EXPECT(midisock_port_finish(client, 5000), MIDISOCK_RESULT_REFUSED);
    CHECK(strcmp(midisock_result_str(MIDISOCK_RESULT_REFUSED), "refused by the server") == 0);
    OK(midisock_port_free(client));
    close(listener);
    printf("peer_close: a refusal notice is MIDISOCK_RESULT_REFUSED on receive, send and finish\n");
}

static void finish_tells_a_sender_it_was_refused(void) {
    char address[64];
    int listener = fake_listen(address, sizeof address);
    midisock_port *client = NULL;
    OK(midisock_port_connect(address, &client));
    int conn = accept(listener, NULL, NULL);
    CHECK(conn >= 0);
    /* The client sends; the send succeeds (the bytes fit in the socket buffer)... */
    OK(midisock_port_send(client, NOTE_ON, sizeof NOTE_ON));
    /* ...the server reads them, refuses and half-closes... */
    char got[3];
    size_t have = 0;
    while (have < sizeof got) {
        ssize_t n = read(conn, got + have, sizeof got - have);
        CHECK(n > 0);
        have += (size_t)n;
    }
    write_notice(conn, "address not allowed");
    CHECK(shutdown(conn, SHUT_WR) == 0);
    /* ...and only finish can tell. */
    EXPECT(midisock_port_finish(client, 5000), MIDISOCK_RESULT_REFUSED);
    expect_last_error_contains("address not allowed");
    OK(midisock_port_free(client));
    close(conn);
    close(listener);
    printf("peer_close: finish returns MIDISOCK_RESULT_REFUSED to a sender that was refused\n");
}

static void finish_against_a_real_server_is_ok(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *client = NULL;
    OK(midisock_port_connect(address, &client));
    OK(midisock_port_send(client, NOTE_ON, sizeof NOTE_ON));
    uint8_t buf[16];
    size_t len = 0;
    uint64_t stamp = 0;
    OK(midisock_server_receive_timeout(server, 5000, buf, sizeof buf, &len, &stamp));
    CHECK(len == 3 && memcmp(buf, NOTE_ON, 3) == 0);
    OK(midisock_port_finish(client, 5000));
    EXPECT(midisock_port_send(client, NOTE_ON, sizeof NOTE_ON), MIDISOCK_RESULT_CLOSED);
    EXPECT(midisock_port_finish(client, 5000), MIDISOCK_RESULT_CLOSED);
    OK(midisock_port_free(client));
    OK(midisock_server_free(server));
    printf("peer_close: finish against a server that accepts returns OK\n");
}

/* ":PORT" and "[::]:PORT" listen on every address, IPv4 and IPv6; "" alone is not an address. */
static void any_address_forms(void) {
    const char *forms[] = {":0", "[::]:0"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        midisock_server *server = NULL;
        OK(midisock_server_bind(forms[i], &server));
        uint16_t port = 0;
        OK(midisock_server_local_port(server, &port));
        const char *hosts[] = {"127.0.0.1", "[::1]"};
        for (size_t h = 0; h < 2; h++) {
            char address[64];
            snprintf(address, sizeof address, "%s:%u", hosts[h], (unsigned)port);
            midisock_port *client = NULL;
            OK(midisock_port_connect(address, &client));
            OK(midisock_port_send(client, NOTE_ON, sizeof NOTE_ON));
            uint8_t buf[16];
            size_t len = 0;
            uint64_t stamp = 0;
            OK(midisock_server_receive_timeout(server, 5000, buf, sizeof buf, &len, &stamp));
            CHECK(len == 3);
            OK(midisock_port_free(client));
        }
        OK(midisock_server_free(server));
    }
    midisock_server *server = NULL;
    EXPECT(midisock_server_bind("", &server), MIDISOCK_RESULT_ADDRESS_SYNTAX);
    EXPECT(midisock_server_bind("8080", &server), MIDISOCK_RESULT_ADDRESS_SYNTAX);
    CHECK(server == NULL);
    printf("peer_close: \":PORT\" and \"[::]:PORT\" take IPv4 and IPv6 clients\n");
}

/* Over TLS, a send to a server that has gone is an error, never a SIGPIPE that kills this
 * program (which, like most C programs, leaves SIGPIPE at its default). */
static void tls_send_to_a_vanished_server_is_an_error(const char *cert_path, const char *key_path) {
    midisock_server_config *config = NULL;
    OK(midisock_server_config_new(&config));
    OK(midisock_server_config_set_tls_pem_files(config, cert_path, key_path));
    midisock_server *server = NULL;
    OK(midisock_server_bind_with("127.0.0.1:0", config, &server));
    OK(midisock_server_config_free(config));
    uint16_t port = 0;
    OK(midisock_server_local_port(server, &port));
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%u", (unsigned)port);

    midisock_connect_options *options = NULL;
    OK(midisock_connect_options_new(&options));
    OK(midisock_connect_options_set_tls_ca_file(options, cert_path));
    OK(midisock_connect_options_set_tls_server_name(options, "localhost"));
    OK(midisock_connect_options_set_timeout_ms(options, 5000));
    midisock_port *client = NULL;
    OK(midisock_port_connect_with(address, options, &client));
    OK(midisock_connect_options_free(options));
    wait_for_clients(server, 1);
    OK(midisock_server_free(server));

    midisock_result r = MIDISOCK_RESULT_OK;
    for (int i = 0; i < 100000 && r == MIDISOCK_RESULT_OK; i++) {
        r = midisock_port_send(client, NOTE_ON, sizeof NOTE_ON);
    }
    CHECK(r == MIDISOCK_RESULT_CLOSED);
    OK(midisock_port_free(client));
    printf("peer_close: a TLS send to a vanished server returns MIDISOCK_RESULT_CLOSED, no SIGPIPE\n");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s CERT.pem KEY.pem\n", argc > 0 ? argv[0] : "peer_close");
        return 2;
    }
    tls_send_to_a_vanished_server_is_an_error(argv[1], argv[2]);
    send_after_peer_close_is_closed();
    a_notice_is_reported_everywhere();
    finish_tells_a_sender_it_was_refused();
    finish_against_a_real_server_is_ok();
    any_address_forms();
    printf("peer_close: ok\n");
    return 0;
}
