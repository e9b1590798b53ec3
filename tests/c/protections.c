/* protections.c — the server's protections and the client's options from C: token, allowlist,
 * sysex policy and length, client limit, relay, notes released when a client leaves, autoreset,
 * parser statistics, TLS, and every way their setup can fail.
 *
 * Usage: protections CERT.pem KEY.pem — a self-signed certificate for "localhost" and its key
 * (the test runner, xtask/src/c_tests.rs, makes them). */
#include "check.h"

static const char *cert_path;
static const char *key_path;

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

/* Binds `config` on 127.0.0.1 with a free port and writes "127.0.0.1:PORT" to address. */
static midisock_server *serve_with(const midisock_server_config *config, char *address, size_t len) {
    midisock_server *server = NULL;
    uint16_t port = 0;
    OK(midisock_server_bind_with("127.0.0.1:0", config, &server));
    OK(midisock_server_local_port(server, &port));
    snprintf(address, len, "127.0.0.1:%u", (unsigned)port);
    return server;
}

/* The server closes this connection (within 30 s; it takes at most the auth timeout): nothing arrives, then the end — plain
 * (MIDISOCK_RESULT_CLOSED) or with a refusal notice that says why (MIDISOCK_RESULT_REFUSED),
 * which a server sends when it refuses a client. */
static void expect_closed_by_server(const midisock_port *port) {
    uint8_t buf[8];
    size_t len = 0;
    uint64_t stamp = 0;
    midisock_result r = midisock_port_receive_timeout(port, 30000, buf, sizeof buf, &len, &stamp);
    if (r != MIDISOCK_RESULT_REFUSED) EXPECT(r, MIDISOCK_RESULT_CLOSED);
}

/* The server's statistics once `field` has reached `at_least` (waits at most 5 s). */
#define WAIT_FOR_STAT(server, field, at_least)                                                    \
    do {                                                                                          \
        midisock_server_statistics stats_;                                                        \
        int tries_ = 0;                                                                           \
        for (;;) {                                                                                \
            OK(midisock_server_stats((server), &stats_));                                         \
            if (stats_.field >= (at_least)) break;                                                \
            if (++tries_ == 5000) {                                                               \
                fprintf(stderr, "%s:%d: " #field " is %llu after 5 s, expected >= %llu\n",        \
                        __FILE__, __LINE__, (unsigned long long)stats_.field,                     \
                        (unsigned long long)(at_least));                                          \
                exit(1);                                                                          \
            }                                                                                     \
            sleep_ms();                                                                           \
        }                                                                                         \
    } while (0)

/* Receives one message on the server (5 s at most) and checks its bytes. */
static void expect_server_receives(const midisock_server *server, const uint8_t *want, size_t n) {
    uint8_t buf[64];
    size_t len = 0;
    uint64_t stamp = 0;
    OK(midisock_server_receive_timeout(server, 5000, buf, sizeof buf, &len, &stamp));
    CHECK(len == n && memcmp(buf, want, n) == 0);
}

/* Receives one message on a port (5 s at most) and checks its bytes. */
static void expect_port_receives(const midisock_port *port, const uint8_t *want, size_t n) {
    uint8_t buf[64];
    size_t len = 0;
    uint64_t stamp = 0;
    OK(midisock_port_receive_timeout(port, 5000, buf, sizeof buf, &len, &stamp));
    CHECK(len == n && memcmp(buf, want, n) == 0);
}

static const uint8_t NOTE_ON[3] = {0x90, 60, 100};
static const uint8_t NOTE_OFF[3] = {0x80, 60, 0};

static void setup_errors(void) {
    midisock_server_config *config = NULL;
    midisock_connect_options *options = NULL;
    midisock_server *server = NULL;
    midisock_port *port = NULL;
    midisock_server_statistics server_stats;
    midisock_parser_statistics parser_stats;

    /* NULL handles and outputs. */
    EXPECT(midisock_server_config_new(NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_connect_options_new(NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_config_set_max_sysex_len(NULL, 1), MIDISOCK_RESULT_NULL_ARGUMENT);
    expect_detail("midisock_server_config_set_max_sysex_len: argument `config` is NULL");
    EXPECT(midisock_server_config_set_max_client_queue(NULL, 1), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_config_set_max_clients(NULL, 1), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_config_set_max_inbox_bytes(NULL, 1), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_config_set_sysex(NULL, MIDISOCK_SYSEX_POLICY_DENY),
           MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_config_allow(NULL, "::1"), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_config_set_relay(NULL, true), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_config_set_token(NULL, "token"), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_config_set_auth_timeout_ms(NULL, 1), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_config_set_shutdown_flush_ms(NULL, 1), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_config_set_tls_pem_files(NULL, cert_path, key_path),
           MIDISOCK_RESULT_NULL_ARGUMENT);
    expect_detail("`config` is NULL");
    EXPECT(midisock_server_bind_with("127.0.0.1:0", NULL, &server), MIDISOCK_RESULT_NULL_ARGUMENT);
    expect_detail("midisock_server_bind_with: argument `config` is NULL");
    EXPECT(midisock_connect_options_set_timeout_ms(NULL, 1), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_connect_options_set_token(NULL, "token"), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_connect_options_set_tls_ca_file(NULL, cert_path), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_connect_options_set_tls_server_name(NULL, "localhost"),
           MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_connect_with("127.0.0.1:1", NULL, &port), MIDISOCK_RESULT_NULL_ARGUMENT);
    expect_detail("`options` is NULL");
    EXPECT(midisock_server_stats(NULL, &server_stats), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_set_autoreset(NULL, true), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_parser_stats(NULL, &parser_stats), MIDISOCK_RESULT_NULL_ARGUMENT);

    OK(midisock_server_config_new(&config));
    OK(midisock_connect_options_new(&options));
    EXPECT(midisock_server_config_allow(config, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_config_set_token(config, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_config_set_tls_pem_files(config, NULL, key_path),
           MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_config_set_tls_pem_files(config, cert_path, NULL),
           MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_bind_with(NULL, config, &server), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_bind_with("127.0.0.1:0", config, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_connect_options_set_token(options, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_connect_options_set_tls_ca_file(options, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_connect_options_set_tls_server_name(options, NULL),
           MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_connect_with(NULL, options, &port), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_connect_with("127.0.0.1:1", options, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);

    /* Bad allowlist entries have their own code, distinct from a bad bind/connect address. */
    EXPECT(midisock_server_config_allow(config, "10.0.0.0/33"), MIDISOCK_RESULT_PEER_RANGE_SYNTAX);
    expect_detail("10.0.0.0/33");
    EXPECT(midisock_server_config_allow(config, "localhost"), MIDISOCK_RESULT_PEER_RANGE_SYNTAX);
    EXPECT(midisock_server_config_allow(config, ""), MIDISOCK_RESULT_PEER_RANGE_SYNTAX);
    EXPECT(midisock_server_config_allow(config, "10.0.0.0/8\xff"), MIDISOCK_RESULT_INVALID_UTF8);
    CHECK(MIDISOCK_RESULT_PEER_RANGE_SYNTAX != MIDISOCK_RESULT_ADDRESS_SYNTAX);

    /* Tokens: 1 to 128 printable ASCII characters, on both sides. */
    char long_token[130];
    memset(long_token, 'a', 129);
    long_token[129] = '\0';
    EXPECT(midisock_server_config_set_token(config, ""), MIDISOCK_RESULT_INVALID_TOKEN);
    expect_detail("invalid token");
    EXPECT(midisock_server_config_set_token(config, "tab\there"), MIDISOCK_RESULT_INVALID_TOKEN);
    EXPECT(midisock_server_config_set_token(config, long_token), MIDISOCK_RESULT_INVALID_TOKEN);
    EXPECT(midisock_connect_options_set_token(options, "caf\xc3\xa9"), MIDISOCK_RESULT_INVALID_TOKEN);
    EXPECT(midisock_connect_options_set_token(options, long_token), MIDISOCK_RESULT_INVALID_TOKEN);
    long_token[128] = '\0';
    OK(midisock_server_config_set_token(config, long_token)); /* exactly 128 is fine */

    /* An unknown sysex policy value is refused, not undefined behaviour. */
    EXPECT(midisock_server_config_set_sysex(config, 2), MIDISOCK_RESULT_INVALID_ARGUMENT);
    expect_detail("not a midisock_sysex_policy");

    /* TLS files that are not there. */
    EXPECT(midisock_server_config_set_tls_pem_files(config, "/nonexistent/cert.pem", key_path),
           MIDISOCK_RESULT_TLS);
    expect_detail("/nonexistent/cert.pem");
    EXPECT(midisock_server_config_set_tls_pem_files(config, cert_path, "/nonexistent/key.pem"),
           MIDISOCK_RESULT_TLS);
    EXPECT(midisock_server_config_set_tls_pem_files(config, key_path, key_path),
           MIDISOCK_RESULT_TLS); /* a key is not a certificate */
    EXPECT(midisock_connect_options_set_tls_ca_file(options, "/nonexistent/ca.pem"),
           MIDISOCK_RESULT_TLS);
    expect_detail("/nonexistent/ca.pem");

    /* A TLS server name without a CA file is refused when connecting. */
    OK(midisock_connect_options_set_tls_server_name(options, "localhost"));
    EXPECT(midisock_port_connect_with("127.0.0.1:1", options, &port), MIDISOCK_RESULT_TLS);
    expect_detail("no CA file");

    /* The bind address is checked like midisock_server_bind's. */
    EXPECT(midisock_server_bind_with("no-port-here", config, &server), MIDISOCK_RESULT_ADDRESS_SYNTAX);
    CHECK(server == NULL && port == NULL); /* outputs untouched on failure */

    /* Every new code has its own text. */
    CHECK(strcmp(midisock_result_str(MIDISOCK_RESULT_TLS), "TLS error") == 0);
    CHECK(strcmp(midisock_result_str(MIDISOCK_RESULT_INVALID_TOKEN), "invalid token") == 0);
    CHECK(strcmp(midisock_result_str(MIDISOCK_RESULT_PEER_RANGE_SYNTAX), "invalid address range") == 0);
    CHECK(strcmp(midisock_result_str(MIDISOCK_RESULT_INVALID_ARGUMENT), "unknown result code") != 0);

    /* _free(NULL) is a no-op. */
    OK(midisock_server_config_free(NULL));
    OK(midisock_connect_options_free(NULL));
    OK(midisock_server_config_free(config));
    OK(midisock_connect_options_free(options));
}

static void token_required(void) {
    midisock_server_config *config = NULL;
    OK(midisock_server_config_new(&config));
    OK(midisock_server_config_set_token(config, "open sesame"));
    OK(midisock_server_config_set_auth_timeout_ms(config, 300));
    char address[64];
    midisock_server *server = serve_with(config, address, sizeof address);
    /* The server copied the configuration: freeing it now changes nothing. */
    OK(midisock_server_config_free(config));

    midisock_connect_options *right = NULL, *wrong = NULL;
    OK(midisock_connect_options_new(&right));
    OK(midisock_connect_options_set_token(right, "open sesame"));
    OK(midisock_connect_options_set_timeout_ms(right, 5000));
    OK(midisock_connect_options_new(&wrong));
    OK(midisock_connect_options_set_token(wrong, "open sesame!"));

    /* The right token gets in: its messages reach the server. */
    midisock_port *member = NULL;
    OK(midisock_port_connect_with(address, right, &member));
    OK(midisock_port_send(member, NOTE_ON, sizeof NOTE_ON));
    expect_server_receives(server, NOTE_ON, sizeof NOTE_ON);

    /* A wrong token, or none within the auth timeout: closed, never delivered. */
    midisock_port *stranger = NULL, *silent = NULL;
    OK(midisock_port_connect_with(address, wrong, &stranger));
    (void)midisock_port_send(stranger, NOTE_OFF, sizeof NOTE_OFF); /* may already be closed */
    expect_closed_by_server(stranger);
    OK(midisock_port_connect(address, &silent));
    expect_closed_by_server(silent);
    WAIT_FOR_STAT(server, auth_failures, 2);

    uint8_t buf[8];
    size_t len = 0;
    uint64_t stamp = 0;
    EXPECT(midisock_server_try_receive(server, buf, sizeof buf, &len, &stamp),
           MIDISOCK_RESULT_WOULD_BLOCK);
    /* The member is still served. */
    OK(midisock_port_send(member, NOTE_OFF, sizeof NOTE_OFF));
    expect_server_receives(server, NOTE_OFF, sizeof NOTE_OFF);

    OK(midisock_port_free(stranger));
    OK(midisock_port_free(silent));
    OK(midisock_port_free(member));
    OK(midisock_connect_options_free(right));
    OK(midisock_connect_options_free(wrong));
    OK(midisock_server_free(server));
}

static void allowlist(void) {
    /* Ranges that leave out 127.0.0.0/8: loopback peers are refused. */
    midisock_server_config *config = NULL;
    OK(midisock_server_config_new(&config));
    OK(midisock_server_config_allow(config, "10.0.0.0/8"));
    OK(midisock_server_config_allow(config, "fd00::/8"));
    OK(midisock_server_config_allow(config, "192.168.1.7"));
    char address[64];
    midisock_server *server = serve_with(config, address, sizeof address);

    midisock_port *outsider = NULL;
    OK(midisock_port_connect(address, &outsider)); /* TCP connects; the server closes at once */
    expect_closed_by_server(outsider);
    WAIT_FOR_STAT(server, connections_refused, 1);
    size_t count = 1;
    OK(midisock_server_client_count(server, &count));
    CHECK(count == 0);
    OK(midisock_port_free(outsider));
    OK(midisock_server_free(server));

    /* Adding loopback lets it in. */
    OK(midisock_server_config_allow(config, "127.0.0.0/8"));
    server = serve_with(config, address, sizeof address);
    midisock_port *insider = NULL;
    OK(midisock_port_connect(address, &insider));
    OK(midisock_port_send(insider, NOTE_ON, sizeof NOTE_ON));
    expect_server_receives(server, NOTE_ON, sizeof NOTE_ON);
    midisock_server_statistics stats;
    OK(midisock_server_stats(server, &stats));
    CHECK(stats.connections_refused == 0 && stats.connections_accepted == 1);
    OK(midisock_port_free(insider));
    OK(midisock_server_free(server));
    OK(midisock_server_config_free(config));
}

static void sysex_limits(void) {
    const uint8_t sysex[6] = {0xF0, 0x7E, 0x01, 0x02, 0x03, 0xF7};
    char address[64];

    /* Denied: every sysex is dropped and counted; other messages pass. */
    midisock_server_config *config = NULL;
    OK(midisock_server_config_new(&config));
    OK(midisock_server_config_set_sysex(config, MIDISOCK_SYSEX_POLICY_DENY));
    midisock_server *server = serve_with(config, address, sizeof address);
    midisock_port *client = NULL;
    OK(midisock_port_connect(address, &client));
    OK(midisock_port_send(client, sysex, sizeof sysex));
    OK(midisock_port_send(client, NOTE_ON, sizeof NOTE_ON));
    expect_server_receives(server, NOTE_ON, sizeof NOTE_ON);
    WAIT_FOR_STAT(server, sysex_denied, 1);
    OK(midisock_port_free(client));
    OK(midisock_server_free(server));

    /* Allowed again, but at most 3 payload bytes: the 4-byte one is dropped, a short one passes. */
    OK(midisock_server_config_set_sysex(config, MIDISOCK_SYSEX_POLICY_ALLOW));
    OK(midisock_server_config_set_max_sysex_len(config, 3));
    const uint8_t short_sysex[5] = {0xF0, 0x7E, 0x01, 0x02, 0xF7};
    server = serve_with(config, address, sizeof address);
    OK(midisock_port_connect(address, &client));
    OK(midisock_port_send(client, sysex, sizeof sysex));
    OK(midisock_port_send(client, short_sysex, sizeof short_sysex));
    expect_server_receives(server, short_sysex, sizeof short_sysex);
    WAIT_FOR_STAT(server, sysex_oversized, 1);
    midisock_server_statistics stats;
    OK(midisock_server_stats(server, &stats));
    CHECK(stats.sysex_denied == 0);
    OK(midisock_port_free(client));
    OK(midisock_server_free(server));
    OK(midisock_server_config_free(config));
}

static void client_limit_and_relay(void) {
    midisock_server_config *config = NULL;
    OK(midisock_server_config_new(&config));
    OK(midisock_server_config_set_max_clients(config, 2));
    OK(midisock_server_config_set_relay(config, true));
    /* Generous limits that this test stays under; set to show they are accepted. */
    OK(midisock_server_config_set_max_client_queue(config, 64 * 1024));
    OK(midisock_server_config_set_max_inbox_bytes(config, 64 * 1024));
    OK(midisock_server_config_set_shutdown_flush_ms(config, 100));
    char address[64];
    midisock_server *server = serve_with(config, address, sizeof address);
    OK(midisock_server_config_free(config));

    midisock_port *a = NULL, *b = NULL, *c = NULL;
    OK(midisock_port_connect(address, &a));
    OK(midisock_port_connect(address, &b));
    wait_for_clients(server, 2);
    /* A third client is over the limit: closed as soon as it is accepted. */
    OK(midisock_port_connect(address, &c));
    expect_closed_by_server(c);
    WAIT_FOR_STAT(server, connections_refused, 1);
    wait_for_clients(server, 2);

    /* Relay: what a sends reaches b, and the server's receive too. */
    OK(midisock_port_send(a, NOTE_ON, sizeof NOTE_ON));
    expect_port_receives(b, NOTE_ON, sizeof NOTE_ON);
    expect_server_receives(server, NOTE_ON, sizeof NOTE_ON);

    OK(midisock_port_free(c));
    OK(midisock_port_free(b));
    OK(midisock_port_free(a));
    OK(midisock_server_free(server));
}

static void notes_released_on_disconnect(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);
    midisock_port *client = NULL;
    OK(midisock_port_connect(address, &client));
    OK(midisock_port_send(client, NOTE_ON, sizeof NOTE_ON));
    expect_server_receives(server, NOTE_ON, sizeof NOTE_ON);
    /* The client leaves with the note held (autoreset is off by default): the server itself
     * delivers the note-off. */
    OK(midisock_port_free(client));
    expect_server_receives(server, NOTE_OFF, sizeof NOTE_OFF);
    WAIT_FOR_STAT(server, notes_released, 1);
    OK(midisock_server_free(server));
}

static void autoreset_and_parser_stats(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address);

    /* A client with a token, to a server without auth: the hello (F4, the token, F7) is what a
     * mido server would see too, and ignores. */
    midisock_connect_options *options = NULL;
    OK(midisock_connect_options_new(&options));
    OK(midisock_connect_options_set_token(options, "abc"));
    midisock_port *client = NULL;
    OK(midisock_port_connect_with(address, options, &client));
    OK(midisock_connect_options_free(options));
    midisock_port *peer = NULL;
    OK(midisock_server_accept_timeout(server, 5000, &peer));

    OK(midisock_port_set_autoreset(client, true));
    const uint8_t note_on[3] = {0x92, 64, 90};
    OK(midisock_port_send(client, note_on, sizeof note_on));
    expect_port_receives(peer, note_on, sizeof note_on);

    /* The hello's bytes were ignored and counted by the accepted port's parser. */
    midisock_parser_statistics stats;
    OK(midisock_port_parser_stats(peer, &stats));
    CHECK(stats.undefined_status_bytes == 1);
    CHECK(stats.stray_data_bytes == 3);
    CHECK(stats.sysex_overflows == 0 && stats.sysex_aborted == 0);
    CHECK(stats.partial_messages_dropped == 0);

    /* Closing with autoreset: a note-off for the held note, then mido's reset set (CC 123 and
     * CC 121 on every channel). */
    OK(midisock_port_close(client));
    const uint8_t note_off[3] = {0x82, 64, 0};
    expect_port_receives(peer, note_off, sizeof note_off);
    for (uint8_t channel = 0; channel < 16; channel++) {
        const uint8_t all_notes_off[3] = {(uint8_t)(0xB0 | channel), 123, 0};
        const uint8_t reset_controllers[3] = {(uint8_t)(0xB0 | channel), 121, 0};
        expect_port_receives(peer, all_notes_off, 3);
        expect_port_receives(peer, reset_controllers, 3);
    }
    expect_closed_by_server(peer); /* here: closed by the client */

    /* Autoreset off: a close sends nothing. */
    midisock_port *quiet = NULL, *quiet_peer = NULL;
    OK(midisock_port_connect(address, &quiet));
    OK(midisock_server_accept_timeout(server, 5000, &quiet_peer));
    OK(midisock_port_set_autoreset(quiet, true));
    OK(midisock_port_set_autoreset(quiet, false));
    OK(midisock_port_send(quiet, note_on, sizeof note_on));
    expect_port_receives(quiet_peer, note_on, sizeof note_on);
    OK(midisock_port_close(quiet));
    expect_closed_by_server(quiet_peer);
    OK(midisock_port_parser_stats(quiet_peer, &stats));
    CHECK(stats.undefined_status_bytes == 0 && stats.stray_data_bytes == 0);

    OK(midisock_port_free(quiet_peer));
    OK(midisock_port_free(quiet));
    OK(midisock_port_free(peer));
    OK(midisock_port_free(client));
    OK(midisock_server_free(server));
}

static void tls_round_trip(void) {
    midisock_server_config *config = NULL;
    OK(midisock_server_config_new(&config));
    OK(midisock_server_config_set_tls_pem_files(config, cert_path, key_path));
    /* Generous: the legitimate client's handshake must finish within it even under valgrind on
     * a loaded machine; the plain client below is closed for its garbage, not by this clock. */
    OK(midisock_server_config_set_auth_timeout_ms(config, 20000));
    char address[64];
    midisock_server *server = serve_with(config, address, sizeof address);
    OK(midisock_server_config_free(config));

    /* The certificate names "localhost"; the address is 127.0.0.1. Name given after the CA
     * file here, before it below: the order does not matter. */
    midisock_connect_options *options = NULL;
    OK(midisock_connect_options_new(&options));
    OK(midisock_connect_options_set_tls_ca_file(options, cert_path));
    OK(midisock_connect_options_set_tls_server_name(options, "localhost"));
    OK(midisock_connect_options_set_timeout_ms(options, 5000));
    midisock_port *client = NULL;
    OK(midisock_port_connect_with(address, options, &client));
    OK(midisock_port_send(client, NOTE_ON, sizeof NOTE_ON));
    expect_server_receives(server, NOTE_ON, sizeof NOTE_ON);
    wait_for_clients(server, 1);
    OK(midisock_server_send(server, NOTE_OFF, sizeof NOTE_OFF));
    expect_port_receives(client, NOTE_OFF, sizeof NOTE_OFF);

    /* The wrong name: the handshake fails on the client. */
    midisock_connect_options *wrong_name = NULL;
    OK(midisock_connect_options_new(&wrong_name));
    OK(midisock_connect_options_set_tls_server_name(wrong_name, "example.com"));
    OK(midisock_connect_options_set_tls_ca_file(wrong_name, cert_path));
    midisock_port *refused = NULL;
    EXPECT(midisock_port_connect_with(address, wrong_name, &refused), MIDISOCK_RESULT_TLS);
    CHECK(refused == NULL);

    WAIT_FOR_STAT(server, auth_failures, 1);

    /* A plain TCP client (mido's kind) does not get through either: refused as the wrong
     * transport ("this server requires TLS"), counted with the refusals, not as a failed
     * authentication. */
    midisock_port *plain = NULL;
    OK(midisock_port_connect(address, &plain));
    (void)midisock_port_send(plain, NOTE_ON, sizeof NOTE_ON); /* garbage to a TLS server */
    expect_closed_by_server(plain);
    WAIT_FOR_STAT(server, connections_refused, 1);

    OK(midisock_port_free(plain));
    OK(midisock_port_free(client));
    OK(midisock_connect_options_free(wrong_name));
    OK(midisock_connect_options_free(options));
    OK(midisock_server_free(server));
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s CERT.pem KEY.pem\n", argc > 0 ? argv[0] : "protections");
        return 2;
    }
    cert_path = argv[1];
    key_path = argv[2];
    setup_errors();
    token_required();
    allowlist();
    sysex_limits();
    client_limit_and_relay();
    notes_released_on_disconnect();
    autoreset_and_parser_stats();
    tls_round_trip();
    printf("protections: ok\n");
    return 0;
}
