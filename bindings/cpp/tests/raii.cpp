// raii.cpp — the C++ wrapper: round trip, broadcast, accept, callbacks, errors as exceptions,
// move-only ownership, several threads sending on one port and one server, and the protections
// (server_config, connect_options, statistics, autoreset, TLS).
//
// Usage: raii CERT.pem KEY.pem — a self-signed certificate for "localhost" and its key (made by
// the test runner, xtask/src/c_tests.rs).
#include <midisock.hpp>

#include <poll.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>

#define CHECK(cond)                                                                               \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);        \
            std::exit(1);                                                                         \
        }                                                                                         \
    } while (0)

using namespace std::chrono_literals;

static_assert(!std::is_copy_constructible_v<midisock::port>, "ports are move-only");
static_assert(std::is_nothrow_move_constructible_v<midisock::port>, "ports move cheaply");
static_assert(!std::is_copy_assignable_v<midisock::server>, "servers are move-only");
static_assert(!std::is_copy_constructible_v<midisock::server_config>, "configs are move-only");
static_assert(std::is_nothrow_move_constructible_v<midisock::server_config>, "configs move cheaply");
static_assert(!std::is_copy_assignable_v<midisock::connect_options>, "options are move-only");
static_assert(std::is_nothrow_move_assignable_v<midisock::connect_options>, "options move cheaply");

// The code of the midisock::error that `fn` throws (MIDISOCK_RESULT_OK if none).
template <typename Fn>
static midisock_result error_code(Fn fn) {
    try {
        fn();
    } catch (const midisock::error &e) {
        CHECK(std::strlen(e.what()) > 0);
        return e.code();
    }
    return MIDISOCK_RESULT_OK;
}

static std::string address_of(const midisock::server &server) {
    return "127.0.0.1:" + std::to_string(server.local_port());
}

static void wait_for_clients(const midisock::server &server, size_t want) {
    for (int i = 0; i < 5000 && server.client_count() != want; i++) {
        std::this_thread::sleep_for(1ms);
    }
    CHECK(server.client_count() == want);
}

static void round_trip() {
    midisock::server server("127.0.0.1:0");
    auto client = midisock::port::connect(address_of(server));
    client.send(midisock::message::from_text("note_on channel=0 note=60 velocity=64"));
    midisock::message m = server.receive();
    CHECK(m.text() == "note_on channel=0 note=60 velocity=64 time=0");
    CHECK(m.timestamp_ns > 0);
    CHECK(client.name() == address_of(server));
    CHECK(server.name() == address_of(server));

    // A sysex bigger than the wrapper's first buffer: it grows, the message is not lost.
    std::vector<uint8_t> sysex(300, 0x55);
    sysex.front() = 0xF0;
    sysex.back() = 0xF7;
    client.send(sysex);
    auto big = server.receive_for(5s);
    CHECK(big && big->bytes == sysex);
    CHECK(!server.try_receive());
    CHECK(!server.receive_for(10ms));
}

static void broadcast_and_accept() {
    midisock::server server("127.0.0.1:0");
    CHECK(!server.try_accept());
    CHECK(!server.accept_for(10ms));
    auto a = midisock::port::connect(address_of(server), 2s);
    auto b = midisock::port::connect(address_of(server));
    wait_for_clients(server, 2);
    server.send(std::vector<uint8_t>{0xFA});
    CHECK(a.receive().bytes == std::vector<uint8_t>{0xFA});
    CHECK(b.receive_for(5s)->bytes == std::vector<uint8_t>{0xFA});

    // accept hands over the oldest connection nobody has claimed: use a server of its own.
    midisock::server acceptor("127.0.0.1:0");
    auto c = midisock::port::connect(address_of(acceptor));
    std::optional<midisock::port> accepted = acceptor.accept_for(5s);
    CHECK(accepted);
    c.send(std::vector<uint8_t>{0xB0, 64, 127});
    CHECK(accepted->receive().text() == "control_change channel=0 control=64 value=127 time=0");
    c.close();
    CHECK(error_code([&] { accepted->receive(); }) == MIDISOCK_RESULT_CLOSED);
    CHECK(accepted->is_closed());
    // The close has been seen: a send fails instead of losing its bytes.
    CHECK(error_code([&] { accepted->send(std::vector<uint8_t>{0xFA}); }) == MIDISOCK_RESULT_CLOSED);

    // finish(): the sender half-closes and waits for the other side's close; not refused.
    auto d = midisock::port::connect(address_of(acceptor));
    std::optional<midisock::port> e = acceptor.accept_for(5s);
    CHECK(e);
    d.send(std::vector<uint8_t>{0xFC});
    CHECK(e->receive().text() == "stop time=0");
    e->close();
    CHECK(d.link_status().state == MIDISOCK_LINK_STATE_CONNECTED && d.link_text() == "connected");
    d.finish(5s);
    CHECK(d.link_status().state == MIDISOCK_LINK_STATE_CLOSED);
    CHECK(d.is_closed());
    CHECK(error_code([&] { d.finish(5s); }) == MIDISOCK_RESULT_CLOSED);
}

static void callbacks() {
    midisock::server server("127.0.0.1:0");
    auto client = midisock::port::connect(address_of(server));
    midisock::port peer = server.accept();

    std::mutex lock;
    std::condition_variable changed;
    std::vector<std::string> seen;
    const auto main_thread = std::this_thread::get_id();
    std::atomic<bool> wrong_thread{false};
    peer.set_callback([&](const midisock::message &m) {
        if (std::this_thread::get_id() == main_thread) wrong_thread = true;
        std::lock_guard<std::mutex> guard(lock);
        seen.push_back(m.text());
        changed.notify_one();
    });
    CHECK(error_code([&] { peer.try_receive(); }) == MIDISOCK_RESULT_CALLBACK_INSTALLED);

    // Moving the port keeps the callback alive and working.
    midisock::port moved = std::move(peer);
    CHECK(peer.get() == nullptr);
    CHECK(error_code([&] { peer.send(std::vector<uint8_t>{0xF8}); }) ==
          MIDISOCK_RESULT_NULL_ARGUMENT);
    for (int i = 0; i < 10; i++) client.send(std::vector<uint8_t>{0x90, uint8_t(i), 1});
    std::unique_lock<std::mutex> guard(lock);
    CHECK(changed.wait_for(guard, 5s, [&] { return seen.size() == 10; }));
    CHECK(seen[9] == "note_on channel=0 note=9 velocity=1 time=0");
    CHECK(!wrong_thread);
}

static void errors() {
    CHECK(error_code([] { midisock::port::connect("nonsense"); }) ==
          MIDISOCK_RESULT_ADDRESS_SYNTAX);
    CHECK(error_code([] { midisock::message::from_text("note_on velocity=300"); }) ==
          MIDISOCK_RESULT_MESSAGE_TEXT);
    std::string refused;
    {
        midisock::server gone("127.0.0.1:0");
        refused = address_of(gone);
    }
    try {
        midisock::port::connect(refused);
        CHECK(false);
    } catch (const midisock::error &e) {
        CHECK(e.code() == MIDISOCK_RESULT_CONNECT);
        CHECK(std::string(e.what()).find("midisock_port_connect") != std::string::npos);
    }
    midisock::server server("127.0.0.1:0");
    server.close();
    CHECK(error_code([&] { server.receive(); }) == MIDISOCK_RESULT_CLOSED);
    CHECK(error_code([&] { server.accept(); }) == MIDISOCK_RESULT_CLOSED);
    CHECK(midisock::version() == MIDISOCK_VERSION_STRING);
}

static void threads() {
    constexpr int kThreads = 4, kEach = 300;
    midisock::server server("127.0.0.1:0");
    auto client = midisock::port::connect(address_of(server));
    midisock::port peer = server.accept();
    auto listener = midisock::port::connect(address_of(server));
    wait_for_clients(server, 1);

    std::vector<std::thread> senders;
    for (int t = 0; t < kThreads; t++) {
        senders.emplace_back([&, t] {
            for (int i = 0; i < kEach; i++) {
                std::vector<uint8_t> note{uint8_t(0x90 | t), uint8_t(i % 128), 1};
                client.send(note);
                server.send(note);
            }
        });
    }
    for (midisock::port *receiver : {&peer, &listener}) {
        int next[kThreads] = {0, 0, 0, 0};
        for (int n = 0; n < kThreads * kEach; n++) {
            auto m = receiver->receive_for(5s);
            CHECK(m && m->bytes.size() == 3);
            int t = m->bytes[0] & 0x0F;
            CHECK(t < kThreads && m->bytes[1] == next[t] % 128);
            next[t]++;
        }
    }
    for (auto &sender : senders) sender.join();
}

static void protections(const std::string &cert, const std::string &key) {
    // Bad values throw with their own codes, and leave the config as it was.
    midisock::server_config config;
    CHECK(error_code([&] { config.allow("10.0.0.0/33"); }) == MIDISOCK_RESULT_PEER_RANGE_SYNTAX);
    CHECK(error_code([&] { config.token(""); }) == MIDISOCK_RESULT_INVALID_TOKEN);
    CHECK(error_code([&] { config.tls_pem_files("/nonexistent.pem", key); }) == MIDISOCK_RESULT_TLS);
    CHECK(error_code([&] { config.sysex(static_cast<midisock_sysex_policy>(7)); }) ==
          MIDISOCK_RESULT_INVALID_ARGUMENT);
    midisock::connect_options bad;
    CHECK(error_code([&] { bad.token(std::string(129, 'x')); }) == MIDISOCK_RESULT_INVALID_TOKEN);
    CHECK(error_code([&] { bad.tls_ca_file("/nonexistent.pem"); }) == MIDISOCK_RESULT_TLS);

    // A token server that denies sysex; the config moves, and is copied by the bind.
    config.token("s3cret").sysex(MIDISOCK_SYSEX_POLICY_DENY).auth_timeout(500ms).max_clients(8);
    midisock::server_config moved = std::move(config);
    CHECK(config.get() == nullptr);
    std::optional<midisock::server> server;
    server.emplace("127.0.0.1:0", moved);
    { midisock::server_config gone = std::move(moved); } // freed: the server keeps its copy

    auto member = midisock::port::connect(address_of(*server),
                                          midisock::connect_options().token("s3cret").timeout(5s));
    member.send(std::vector<uint8_t>{0xF0, 1, 2, 0xF7}); // denied
    member.send(std::vector<uint8_t>{0x90, 60, 1});
    CHECK(server->receive_for(5s)->bytes == (std::vector<uint8_t>{0x90, 60, 1}));
    auto stranger =
        midisock::port::connect(address_of(*server), midisock::connect_options().token("guess"));
    // Closed, with a refusal notice saying why when the server sends one.
    midisock_result ended = error_code([&] { stranger.receive_for(5s); });
    CHECK(ended == MIDISOCK_RESULT_REFUSED || ended == MIDISOCK_RESULT_CLOSED);
    for (int i = 0; i < 5000 && server->stats().auth_failures == 0; i++) {
        std::this_thread::sleep_for(1ms);
    }
    midisock_server_statistics stats = server->stats();
    // The stranger was never admitted: not counted as accepted.
    CHECK(stats.auth_failures == 1 && stats.sysex_denied == 1 && stats.connections_accepted == 1);

    // Autoreset and parser statistics on an accepted connection.
    midisock::server plain("127.0.0.1:0");
    auto client = midisock::port::connect(address_of(plain));
    midisock::port peer = plain.accept();
    client.set_autoreset(true);
    client.send(std::vector<uint8_t>{0x91, 62, 80});
    CHECK(peer.receive_for(5s)->bytes == (std::vector<uint8_t>{0x91, 62, 80}));
    client.close();
    CHECK(peer.receive_for(5s)->bytes == (std::vector<uint8_t>{0x81, 62, 0}));
    CHECK(peer.receive_for(5s)->text() == "control_change channel=0 control=123 value=0 time=0");
    CHECK(peer.parser_stats().stray_data_bytes == 0);

    // TLS, with the runner's self-signed certificate for "localhost".
    midisock::server secure("127.0.0.1:0", midisock::server_config().tls_pem_files(cert, key));
    auto tls_client = midisock::port::connect(
        address_of(secure), midisock::connect_options().tls_ca_file(cert).tls_server_name("localhost"));
    tls_client.send(std::vector<uint8_t>{0xFA});
    CHECK(secure.receive_for(5s)->bytes == std::vector<uint8_t>{0xFA});
    CHECK(error_code([&] {
              midisock::port::connect(address_of(secure),
                                      midisock::connect_options().tls_ca_file(cert));
          }) == MIDISOCK_RESULT_TLS); // 127.0.0.1 is not the certificate's name
}

static void reconnecting() {
    auto server = std::make_unique<midisock::server>("127.0.0.1:0");
    std::string address = address_of(*server);
    auto client = midisock::port::connect(address, midisock::connect_options().timeout(5s).reconnect(20ms, 200ms));
    wait_for_clients(*server, 1);
    server->send(std::vector<uint8_t>{0x90, 64, 90});
    CHECK(client.receive_for(5s)->bytes == (std::vector<uint8_t>{0x90, 64, 90}));
    server.reset(); // the server goes away with the note held
    CHECK(client.receive_for(5s)->bytes == (std::vector<uint8_t>{0x80, 64, 0}));
    for (int i = 0; i < 10000 && client.link_status().state == MIDISOCK_LINK_STATE_CONNECTED; i++) {
        std::this_thread::sleep_for(1ms);
    }
    CHECK(error_code([&] { client.send(std::vector<uint8_t>{0xF8}); }) == MIDISOCK_RESULT_DISCONNECTED);
    server = std::make_unique<midisock::server>(address);
    for (int i = 0; i < 10000 && client.link_status().state != MIDISOCK_LINK_STATE_CONNECTED; i++) {
        std::this_thread::sleep_for(1ms);
    }
    client.send(std::vector<uint8_t>{0xFA});
    CHECK(server->receive_for(5s)->bytes == std::vector<uint8_t>{0xFA});
    CHECK(error_code([&] { midisock::connect_options().reconnect(0ms, 10ms); }) ==
          MIDISOCK_RESULT_INVALID_ARGUMENT);
}

static void jitter_buffer() {
    // Bad settings throw before anything connects.
    CHECK(error_code([] { midisock::connect_options().jitter_buffer(MIDISOCK_JITTER_MODE_AUTO, 5ms); }) ==
          MIDISOCK_RESULT_INVALID_ARGUMENT);
    CHECK(error_code([] { midisock::server_config().jitter_buffer(MIDISOCK_JITTER_MODE_FIXED, 11s); }) ==
          MIDISOCK_RESULT_INVALID_ARGUMENT);
    CHECK(error_code([] { midisock::server_config().jitter_buffer(MIDISOCK_JITTER_MODE_FIXED, -1us); }) ==
          MIDISOCK_RESULT_INVALID_ARGUMENT);

    // Without a buffer: no stats, no sender times.
    midisock::server plain("127.0.0.1:0");
    auto plain_client = midisock::port::connect(address_of(plain));
    CHECK(!plain_client.playout_stats() && !plain.playout_stats());
    plain_client.send(midisock::message::from_text("note_on channel=0 note=1 velocity=2"));
    CHECK(!plain.receive().sender_ns);

    // Both ends with a fixed delay: every message in order; a stamped one carries the sender's
    // time, played out no earlier than that + the delay.
    midisock::server server("127.0.0.1:0", midisock::server_config().jitter_buffer(MIDISOCK_JITTER_MODE_FIXED, 3ms));
    auto client = midisock::port::connect(
        address_of(server), midisock::connect_options().jitter_buffer(MIDISOCK_JITTER_MODE_AUTO));
    wait_for_clients(server, 1);
    for (uint8_t note = 0; note < 20; note++) client.send({0x90, note, 100});
    for (uint8_t note = 0; note < 20; note++) {
        auto m = server.receive_for(10s);
        CHECK(m && m->bytes == std::vector<uint8_t>({0x90, note, 100}));
        if (m->sender_ns) CHECK(m->timestamp_ns >= *m->sender_ns + 3000000);
    }
    auto clients = server.playout_stats();
    CHECK(clients && clients->size() <= 1);
    for (const auto &entry : *clients) CHECK(entry.stats.delay_ns == 3000000);
}

// Whether `fd` is readable within `timeout_ms`.
static bool readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, timeout_ms);
    CHECK(n >= 0);
    return n > 0;
}

// A loop that polls: the port's descriptor wakes it at arrivals and due times, next_due_ns()
// says when; the callback of an accepted jitter port carries the sender's time.
static void pollers() {
    midisock::server server("127.0.0.1:0");
    auto client = midisock::port::connect(
        address_of(server), midisock::connect_options().jitter_buffer(MIDISOCK_JITTER_MODE_FIXED, 200ms));
    wait_for_clients(server, 1);
    const int fd = client.poll_fd();
    CHECK(fd >= 0 && client.poll_fd() == fd);
    CHECK(!client.next_due_ns() && !server.next_due_ns());
    bool stamped = false;
    for (int i = 0; i < 400 && !stamped; i++) {
        server.send({0xB0, 1, 2});
        if (!readable(fd, 50)) continue;
        while (auto m = client.try_receive()) stamped |= m->sender_ns.has_value();
        stamped |= client.next_due_ns().has_value();
    }
    CHECK(stamped);
    // Until everything has played out, each wake either brings bytes or a due message.
    while (client.next_due_ns() || readable(fd, 0)) {
        CHECK(readable(fd, 10000));
        while (auto m = client.try_receive()) {
            CHECK(m->timestamp_ns >= m->sender_ns.value_or(0));
        }
    }
    CHECK(!readable(fd, 0));

    // The callback form: an accepted port of a jitter server keeps its buffer; the client stamps.
    midisock::server jitter("127.0.0.1:0", midisock::server_config().jitter_buffer(MIDISOCK_JITTER_MODE_FIXED, 2ms));
    auto sender = midisock::port::connect(address_of(jitter));
    midisock::port accepted = jitter.accept();
    std::mutex lock;
    std::condition_variable changed;
    int with_sender = 0;
    bool bad = false;
    accepted.set_callback([&](const midisock::message &m) {
        std::lock_guard<std::mutex> guard(lock);
        if (m.sender_ns) {
            with_sender++;
            bad |= m.timestamp_ns < *m.sender_ns + 2000000;
        }
        changed.notify_one();
    });
    std::unique_lock<std::mutex> guard(lock);
    for (int i = 0; i < 500 && with_sender < 3; i++) {
        guard.unlock();
        sender.send({0x90, 60, 100});
        guard.lock();
        changed.wait_for(guard, 10ms, [&] { return with_sender >= 3; });
    }
    CHECK(with_sender >= 3 && !bad);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        std::cerr << "usage: raii CERT.pem KEY.pem\n";
        return 2;
    }
    round_trip();
    broadcast_and_accept();
    callbacks();
    errors();
    threads();
    protections(argv[1], argv[2]);
    reconnecting();
    jitter_buffer();
    pollers();
    std::cout << "raii: ok (libmidisock " << midisock::version() << ")\n";
    return 0;
}
