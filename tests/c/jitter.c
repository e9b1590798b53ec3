/* jitter.c — the jitter buffer through the C ABI: the text form, the setters' checks, a port
 * pair with the buffer OFF, FIXED and AUTO on both ends (every message, in order, with its
 * times), the stats of a port and of a server, a reconnecting port and an accepted one. */
#include "check.h"

#define MESSAGES 40
#define FIXED_DELAY_US 5000

static void parse_accepts_the_text_form(void) {
    uint32_t mode = 99;
    uint64_t delay_us = 99;
    OK(midisock_jitter_buffer_parse("auto", &mode, &delay_us));
    CHECK(mode == MIDISOCK_JITTER_MODE_AUTO && delay_us == 0);
    OK(midisock_jitter_buffer_parse(" AUTO ", &mode, &delay_us));
    CHECK(mode == MIDISOCK_JITTER_MODE_AUTO && delay_us == 0);
    OK(midisock_jitter_buffer_parse("12.5", &mode, &delay_us));
    CHECK(mode == MIDISOCK_JITTER_MODE_FIXED && delay_us == 12500);
    OK(midisock_jitter_buffer_parse("0", &mode, &delay_us));
    CHECK(mode == MIDISOCK_JITTER_MODE_FIXED && delay_us == 0);
    OK(midisock_jitter_buffer_parse("10000", &mode, &delay_us));
    CHECK(mode == MIDISOCK_JITTER_MODE_FIXED && delay_us == MIDISOCK_JITTER_MAX_DELAY_US);
    OK(midisock_jitter_buffer_parse("0.0004", &mode, &delay_us)); /* 0.4 µs rounds to 0 */
    CHECK(mode == MIDISOCK_JITTER_MODE_FIXED && delay_us == 0);

    const char *bad[] = {"", " ", "off", "-1", "10000.5", "1e3", "inf", "NaN", "15ms", "1.2.3", "aut", "+5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mode = 99;
        delay_us = 99;
        EXPECT(midisock_jitter_buffer_parse(bad[i], &mode, &delay_us), MIDISOCK_RESULT_INVALID_ARGUMENT);
        CHECK(mode == 99 && delay_us == 99); /* nothing written */
        char detail[512];
        size_t len = 0;
        OK(midisock_last_error_message(detail, sizeof detail, &len));
        CHECK(strstr(detail, "auto") != NULL); /* names the accepted forms */
    }
    const char not_utf8[] = {(char)0xC3, 0};
    EXPECT(midisock_jitter_buffer_parse(not_utf8, &mode, &delay_us), MIDISOCK_RESULT_INVALID_UTF8);
    EXPECT(midisock_jitter_buffer_parse(NULL, &mode, &delay_us), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_jitter_buffer_parse("auto", NULL, &delay_us), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_jitter_buffer_parse("auto", &mode, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
}

static void setters_refuse_bad_values(void) {
    midisock_connect_options *options = NULL;
    midisock_server_config *config = NULL;
    OK(midisock_connect_options_new(&options));
    OK(midisock_server_config_new(&config));
    const struct {
        uint32_t mode;
        uint64_t delay_us;
    } bad[] = {
        {3, 0},
        {UINT32_MAX, 0},
        {MIDISOCK_JITTER_MODE_OFF, 1},
        {MIDISOCK_JITTER_MODE_AUTO, 1000},
        {MIDISOCK_JITTER_MODE_FIXED, MIDISOCK_JITTER_MAX_DELAY_US + 1},
        {MIDISOCK_JITTER_MODE_FIXED, UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT(midisock_connect_options_set_jitter_buffer(options, bad[i].mode, bad[i].delay_us),
               MIDISOCK_RESULT_INVALID_ARGUMENT);
        EXPECT(midisock_server_config_set_jitter_buffer(config, bad[i].mode, bad[i].delay_us),
               MIDISOCK_RESULT_INVALID_ARGUMENT);
    }
    EXPECT(midisock_connect_options_set_jitter_buffer(NULL, MIDISOCK_JITTER_MODE_AUTO, 0), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_config_set_jitter_buffer(NULL, MIDISOCK_JITTER_MODE_AUTO, 0), MIDISOCK_RESULT_NULL_ARGUMENT);
    /* Every good value, and back to off. */
    OK(midisock_connect_options_set_jitter_buffer(options, MIDISOCK_JITTER_MODE_FIXED, 0));
    OK(midisock_connect_options_set_jitter_buffer(options, MIDISOCK_JITTER_MODE_FIXED, MIDISOCK_JITTER_MAX_DELAY_US));
    OK(midisock_connect_options_set_jitter_buffer(options, MIDISOCK_JITTER_MODE_AUTO, 0));
    OK(midisock_connect_options_set_jitter_buffer(options, MIDISOCK_JITTER_MODE_OFF, 0));
    OK(midisock_server_config_set_jitter_buffer(config, MIDISOCK_JITTER_MODE_FIXED, 0));
    OK(midisock_server_config_set_jitter_buffer(config, MIDISOCK_JITTER_MODE_AUTO, 0));
    OK(midisock_server_config_set_jitter_buffer(config, MIDISOCK_JITTER_MODE_OFF, 0));
    OK(midisock_connect_options_free(options));
    OK(midisock_server_config_free(config));
}

/* A server and a client, both with `mode`: the client sends MESSAGES notes, the server receives
 * every one in order; then the other way. Checks the times each message carries. */
static void round_trip(uint32_t mode, uint64_t delay_us) {
    char address[64];
    midisock_server *server = serve_loopback_with_jitter_buffer(mode, delay_us, address, sizeof address);
    midisock_port *client = connect_with_jitter_buffer(address, mode, delay_us);
    wait_for_clients(server, 1);

    uint8_t buf[16];
    size_t len = 0;
    midisock_received_info info;
    /* A warm-up each way: once the client has read the server's first bytes (its request for
     * stamps, with a buffer on) and the server has read the client's, each side stamps what it
     * sends from then on. Messages sent before that are delivered unstamped, on arrival. */
    const uint8_t warm_up[3] = {0xB0, 1, 2};
    OK(midisock_server_send(server, warm_up, sizeof warm_up));
    OK(midisock_port_receive_message(client, 10000, buf, sizeof buf, &len, &info));
    CHECK(len == 3 && memcmp(buf, warm_up, 3) == 0);
    OK(midisock_port_send(client, warm_up, sizeof warm_up));
    OK(midisock_server_receive_message(server, 10000, buf, sizeof buf, &len, &info));
    CHECK(len == 3 && memcmp(buf, warm_up, 3) == 0);

    uint64_t previous_timestamp = 0, previous_sender = 0, stamped = 0;
    for (int direction = 0; direction < 2; direction++) {
        for (int i = 0; i < MESSAGES; i++) {
            const uint8_t note[3] = {0x90, (uint8_t)i, 100};
            if (direction == 0) {
                OK(midisock_port_send(client, note, sizeof note));
            } else {
                OK(midisock_server_send(server, note, sizeof note));
            }
        }
        previous_timestamp = previous_sender = 0;
        for (int i = 0; i < MESSAGES; i++) {
            memset(&info, 0xAB, sizeof info);
            if (direction == 0) {
                OK(midisock_server_receive_message(server, 10000, buf, sizeof buf, &len, &info));
            } else {
                OK(midisock_port_receive_message(client, 10000, buf, sizeof buf, &len, &info));
            }
            CHECK(len == 3 && buf[0] == 0x90 && buf[1] == (uint8_t)i && buf[2] == 100); /* in order */
            uint64_t now = 0;
            OK(midisock_monotonic_ns(&now));
            CHECK(info.timestamp_ns > 0 && info.timestamp_ns <= now);
            CHECK(info.timestamp_ns >= previous_timestamp);
            previous_timestamp = info.timestamp_ns;
            /* Stamped exactly when this side asked. */
            CHECK(info.has_sender_ns == (mode != MIDISOCK_JITTER_MODE_OFF));
            if (!info.has_sender_ns) {
                CHECK(info.sender_ns == 0);
                continue;
            }
            /* On this machine's clock, in order, and played out no earlier than the sender time
             * + the fixed delay. */
            stamped++;
            CHECK(info.sender_ns > 0 && info.sender_ns <= info.timestamp_ns);
            CHECK(info.sender_ns >= previous_sender);
            previous_sender = info.sender_ns;
            if (mode == MIDISOCK_JITTER_MODE_FIXED) CHECK(info.timestamp_ns - info.sender_ns >= delay_us * 1000);
        }
    }
    CHECK(stamped == (mode == MIDISOCK_JITTER_MODE_OFF ? 0 : 2 * MESSAGES));

    /* The stats: "not enabled" without a buffer; with one, the struct read back. */
    midisock_playout_stats stats;
    size_t count = 99;
    midisock_client_playout_stats clients[4];
    if (mode == MIDISOCK_JITTER_MODE_OFF) {
        EXPECT(midisock_port_playout_stats(client, &stats), MIDISOCK_RESULT_NOT_ENABLED);
        EXPECT(midisock_server_playout_stats(server, clients, 4, &count), MIDISOCK_RESULT_NOT_ENABLED);
        CHECK(count == 99);
    } else {
        /* The client's buffer played out the MESSAGES stamped notes, and the warm-up too when the
         * server had read the client's request before sending it (then it was stamped). */
        memset(&stats, 0xAB, sizeof stats);
        OK(midisock_port_playout_stats(client, &stats));
        CHECK(stats.pushed >= MESSAGES && stats.pushed <= MESSAGES + 1);
        CHECK(stats.delivered == stats.pushed && stats.queued == 0);
        CHECK(stats.has_offset == 1);
        /* The jitter figures come once the buffer has observations to rank (not always after
         * one burst); until then both are 0. */
        CHECK(stats.has_jitter == 1 ? stats.jitter_p50_ns <= stats.jitter_p999_ns
                                    : stats.jitter_p50_ns == 0 && stats.jitter_p999_ns == 0);
        CHECK(stats.stale_notes_dropped == 0 && stats.delivered_early_full == 0);
        if (mode == MIDISOCK_JITTER_MODE_FIXED) CHECK(stats.delay_ns == delay_us * 1000);
        if (mode == MIDISOCK_JITTER_MODE_AUTO) CHECK(stats.delay_ns >= 1000000); /* at least 1 ms */
        /* Asking for the number: OK with none, BUFFER_TOO_SMALL with the one client. */
        EXPECT(midisock_server_playout_stats(server, NULL, 0, &count), MIDISOCK_RESULT_BUFFER_TOO_SMALL);
        CHECK(count == 1);
        count = 99;
        OK(midisock_server_playout_stats(server, clients, 4, &count));
        CHECK(count == 1);
        CHECK(strncmp(clients[0].peer, "127.0.0.1:", 10) == 0);
        CHECK(memchr(clients[0].peer, 0, MIDISOCK_PEER_TEXT_LEN) != NULL);
        CHECK(clients[0].stats.pushed >= MESSAGES && clients[0].stats.pushed <= MESSAGES + 1);
        CHECK(clients[0].stats.delivered == clients[0].stats.pushed);
        CHECK(clients[0].stats.has_offset == 1 && clients[0].stats.queued == 0);
        if (mode == MIDISOCK_JITTER_MODE_FIXED) CHECK(clients[0].stats.delay_ns == delay_us * 1000);
        EXPECT(midisock_server_playout_stats(server, NULL, 1, &count), MIDISOCK_RESULT_NULL_ARGUMENT);
        EXPECT(midisock_server_playout_stats(server, clients, 4, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    }
    EXPECT(midisock_port_playout_stats(NULL, &stats), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_playout_stats(client, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_playout_stats(NULL, clients, 4, &count), MIDISOCK_RESULT_NULL_ARGUMENT);

    /* The receive_message arguments: NULLs, nothing waiting, a timeout, a small buffer. */
    EXPECT(midisock_port_receive_message(client, 0, buf, sizeof buf, &len, &info), MIDISOCK_RESULT_WOULD_BLOCK);
    EXPECT(midisock_port_receive_message(client, 1, buf, sizeof buf, &len, &info), MIDISOCK_RESULT_TIMED_OUT);
    EXPECT(midisock_server_receive_message(server, 0, buf, sizeof buf, &len, &info), MIDISOCK_RESULT_WOULD_BLOCK);
    EXPECT(midisock_port_receive_message(client, 0, buf, sizeof buf, &len, NULL), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_receive_message(client, 0, NULL, sizeof buf, &len, &info), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_server_receive_message(server, 0, buf, sizeof buf, NULL, &info), MIDISOCK_RESULT_NULL_ARGUMENT);
    EXPECT(midisock_port_receive_message(NULL, 0, buf, sizeof buf, &len, &info), MIDISOCK_RESULT_NULL_ARGUMENT);
    const uint8_t sysex[6] = {0xF0, 1, 2, 3, 4, 0xF7};
    OK(midisock_port_send(client, sysex, sizeof sysex));
    EXPECT(midisock_server_receive_message(server, 10000, buf, 2, &len, &info), MIDISOCK_RESULT_BUFFER_TOO_SMALL);
    CHECK(len == sizeof sysex);
    OK(midisock_server_receive_message(server, MIDISOCK_WAIT_FOREVER, buf, sizeof buf, &len, &info));
    CHECK(len == sizeof sysex && memcmp(buf, sysex, sizeof sysex) == 0);

    /* A closed port ends a wait forever. */
    OK(midisock_port_close(client));
    EXPECT(midisock_port_receive_message(client, MIDISOCK_WAIT_FOREVER, buf, sizeof buf, &len, &info),
           MIDISOCK_RESULT_CLOSED);
    OK(midisock_port_free(client));
    OK(midisock_server_free(server));
}

/* A port made with a reconnect policy plays out through its current connection's buffer and
 * reports it. */
static void reconnecting_port(void) {
    char address[64];
    midisock_server *server = serve_loopback(address, sizeof address); /* no buffer: it only sends */
    midisock_connect_options *options = NULL;
    midisock_port *client = NULL;
    OK(midisock_connect_options_new(&options));
    OK(midisock_connect_options_set_reconnect(options, 100, 1000, 0));
    OK(midisock_connect_options_set_jitter_buffer(options, MIDISOCK_JITTER_MODE_FIXED, 2000));
    OK(midisock_port_connect_with(address, options, &client));
    OK(midisock_connect_options_free(options));
    wait_for_clients(server, 1);
    /* Once the server has a message from the client, it has read the request before it. */
    const uint8_t warm_up[3] = {0xB0, 1, 2};
    uint8_t buf[16];
    size_t len = 0;
    midisock_received_info info;
    OK(midisock_port_send(client, warm_up, sizeof warm_up));
    OK(midisock_server_receive_message(server, 10000, buf, sizeof buf, &len, &info));
    for (int i = 0; i < 5; i++) {
        const uint8_t note[3] = {0x90, (uint8_t)i, 1};
        OK(midisock_server_send(server, note, sizeof note));
    }
    for (int i = 0; i < 5; i++) {
        OK(midisock_port_receive_message(client, 10000, buf, sizeof buf, &len, &info));
        CHECK(len == 3 && buf[1] == (uint8_t)i && info.has_sender_ns == 1);
        CHECK(info.timestamp_ns - info.sender_ns >= 2000000);
    }
    midisock_playout_stats stats;
    OK(midisock_port_playout_stats(client, &stats));
    CHECK(stats.pushed == 5 && stats.delivered == 5 && stats.delay_ns == 2000000 && stats.has_offset == 1);
    OK(midisock_port_free(client));
    OK(midisock_server_free(server));
}

/* A connection taken with midisock_server_accept from a server with a jitter buffer keeps it:
 * the accepted port plays the client's stamped messages out and reports its stats. */
static void accepted_port(void) {
    char address[64];
    midisock_server *server = serve_loopback_with_delay(3000, address, sizeof address);
    midisock_port *client = NULL, *accepted = NULL;
    OK(midisock_port_connect(address, &client)); /* no buffer of its own: it only stamps */
    OK(midisock_server_accept_timeout(server, 10000, &accepted));
    /* Once the client has read the accepted port's note, it has read the request before it. */
    const uint8_t warm_up[3] = {0xB0, 1, 2};
    uint8_t buf[16];
    size_t len = 0;
    midisock_received_info info;
    OK(midisock_port_send(accepted, warm_up, sizeof warm_up));
    OK(midisock_port_receive_message(client, 10000, buf, sizeof buf, &len, &info));
    CHECK(info.has_sender_ns == 0); /* the client asked for nothing */
    for (int i = 0; i < 5; i++) {
        const uint8_t note[3] = {0x90, (uint8_t)i, 1};
        OK(midisock_port_send(client, note, sizeof note));
    }
    for (int i = 0; i < 5; i++) {
        OK(midisock_port_receive_message(accepted, 10000, buf, sizeof buf, &len, &info));
        CHECK(len == 3 && buf[1] == (uint8_t)i && info.has_sender_ns == 1);
        CHECK(info.timestamp_ns - info.sender_ns >= 3000000);
    }
    midisock_playout_stats stats;
    OK(midisock_port_playout_stats(accepted, &stats));
    CHECK(stats.delivered == stats.pushed && stats.pushed >= 5 && stats.delay_ns == 3000000);
    EXPECT(midisock_port_playout_stats(client, &stats), MIDISOCK_RESULT_NOT_ENABLED);
    OK(midisock_port_free(accepted));
    OK(midisock_port_free(client));
    OK(midisock_server_free(server));
}

int main(void) {
    parse_accepts_the_text_form();
    setters_refuse_bad_values();
    CHECK(strcmp(midisock_result_str(MIDISOCK_RESULT_NOT_ENABLED), "not enabled") == 0);
    round_trip(MIDISOCK_JITTER_MODE_OFF, 0);
    round_trip(MIDISOCK_JITTER_MODE_FIXED, FIXED_DELAY_US);
    round_trip(MIDISOCK_JITTER_MODE_AUTO, 0);
    reconnecting_port();
    accepted_port();
    printf("jitter: ok\n");
    return 0;
}
