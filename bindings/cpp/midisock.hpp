// midisock.hpp — header-only C++17 wrapper of libmidisock (midisock.h).
//
//   midisock::server server("127.0.0.1:0");
//   auto client = midisock::port::connect("127.0.0.1:" + std::to_string(server.local_port()));
//   client.send(midisock::message::from_text("note_on channel=0 note=60 velocity=64"));
//   midisock::message m = server.receive();
//   std::cout << m.text() << "\n";   // note_on channel=0 note=60 velocity=64 time=0
//
// - server, port, server_config and connect_options own their C handle: move-only, freed (and
//   closed) by the destructor.
// - Protections: a server_config (limits, allowlist, sysex policy, token, TLS) for
//   server(address, config), connect_options (timeout, token, TLS, jitter buffer) for
//   port::connect(address, options). Their setters return *this, so they chain; both are copied by the bind/connect.
// - Every failure throws midisock::error, which carries the midisock_result code and the
//   detailed message of midisock_last_error_message(). Only "nothing came" is not a failure:
//   try_receive/receive_for/try_accept/accept_for return an empty std::optional instead.
// - Thread safety is the C library's: every member function except the destructor and the move
//   operations may be called on one object from several threads at once.
// - Blocking is the C library's: receive()/accept() block until something arrives or the object
//   is closed by another thread; try_* never block; *_for wait at most their timeout.
#ifndef MIDISOCK_HPP
#define MIDISOCK_HPP

#include <midisock.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace midisock {

/// A failed libmidisock call: code() is the midisock_result, what() the detailed message.
class error : public std::runtime_error {
public:
    error(midisock_result code, const std::string &detail)
        : std::runtime_error(detail), code_(code) {}

    midisock_result code() const noexcept { return code_; }

private:
    midisock_result code_;
};

namespace detail {

/// The calling thread's last error detail (falls back to the code's text).
inline std::string last_error(midisock_result code) {
    std::string text(256, '\0');
    size_t len = 0;
    midisock_result r = midisock_last_error_message(&text[0], text.size(), &len);
    if (r == MIDISOCK_RESULT_BUFFER_TOO_SMALL) {
        text.resize(len);
        r = midisock_last_error_message(&text[0], text.size(), &len);
    }
    if (r != MIDISOCK_RESULT_OK || len == 0) return midisock_result_str(code);
    text.resize(len);
    return text;
}

inline void check(midisock_result code) {
    if (code != MIDISOCK_RESULT_OK) throw error(code, last_error(code));
}

/// Calls `fill(char *buf, size_t len, size_t *len_out)` until the text fits.
template <typename Fill>
std::string text_from(Fill fill) {
    std::string text(64, '\0');
    size_t len = 0;
    midisock_result r = fill(&text[0], text.size(), &len);
    while (r == MIDISOCK_RESULT_BUFFER_TOO_SMALL) {
        text.resize(len);
        r = fill(&text[0], text.size(), &len);
    }
    check(r);
    text.resize(len);
    return text;
}

inline uint64_t millis(std::chrono::milliseconds timeout) {
    return timeout.count() < 0 ? 0 : static_cast<uint64_t>(timeout.count());
}

} // namespace detail

/// One MIDI message as raw bytes, with its receive time (CLOCK_MONOTONIC ns; 0 when unsent;
/// through a jitter buffer, the played-out time) and, for a message its sender stamped (a
/// jitter buffer on this side asked for stamps), the sender's clock when it was sent.
struct message {
    std::vector<uint8_t> bytes;
    uint64_t timestamp_ns = 0;
    std::optional<uint64_t> sender_ns;

    /// Parses mido's text format ("note_on channel=0 note=60 velocity=64 time=0").
    static message from_text(const std::string &text) {
        message m;
        m.bytes.resize(3);
        size_t len = 0;
        midisock_result r =
            midisock_message_from_text(text.c_str(), m.bytes.data(), m.bytes.size(), &len);
        if (r == MIDISOCK_RESULT_BUFFER_TOO_SMALL) {
            m.bytes.resize(len);
            r = midisock_message_from_text(text.c_str(), m.bytes.data(), m.bytes.size(), &len);
        }
        detail::check(r);
        m.bytes.resize(len);
        return m;
    }

    /// mido's str(msg) of this message.
    std::string text() const {
        return detail::text_from([this](char *buf, size_t len, size_t *len_out) {
            return midisock_message_to_text(bytes.data(), bytes.size(), buf, len, len_out);
        });
    }
};

namespace detail {

/// Runs a C `_receive_message` function (`call(buf, len, len_out, info_out)`), growing the
/// buffer when a message does not fit (the library keeps it for the retry). Empty when nothing
/// came.
template <typename Receive>
std::optional<message> receive_with(Receive call) {
    message m;
    m.bytes.resize(64);
    size_t len = 0;
    midisock_received_info info{};
    midisock_result r = call(m.bytes.data(), m.bytes.size(), &len, &info);
    while (r == MIDISOCK_RESULT_BUFFER_TOO_SMALL) {
        m.bytes.resize(len);
        r = call(m.bytes.data(), m.bytes.size(), &len, &info);
    }
    if (r == MIDISOCK_RESULT_WOULD_BLOCK || r == MIDISOCK_RESULT_TIMED_OUT) return std::nullopt;
    check(r);
    m.bytes.resize(len);
    m.timestamp_ns = info.timestamp_ns;
    if (info.has_sender_ns) m.sender_ns = info.sender_ns;
    return m;
}

/// A jitter buffer's mode and delay for the C setters.
inline uint64_t delay_micros(std::chrono::microseconds delay) {
    return delay.count() < 0 ? UINT64_MAX : static_cast<uint64_t>(delay.count()); /* negative: refused */
}

} // namespace detail

namespace detail {

/// Owns a C handle of type T, freed by `Free` (a `_free` function); move-only.
template <typename T, midisock_result (*Free)(T *)>
class handle {
public:
    explicit handle(T *raw) noexcept : raw_(raw) {}
    handle(handle &&other) noexcept : raw_(std::exchange(other.raw_, nullptr)) {}
    handle &operator=(handle &&other) noexcept {
        if (this != &other) {
            Free(raw_);
            raw_ = std::exchange(other.raw_, nullptr);
        }
        return *this;
    }
    handle(const handle &) = delete;
    handle &operator=(const handle &) = delete;
    ~handle() { Free(raw_); }

    T *get() const noexcept { return raw_; }

private:
    T *raw_ = nullptr;
};

inline midisock_server_config *new_server_config() {
    midisock_server_config *raw = nullptr;
    check(midisock_server_config_new(&raw));
    return raw;
}

inline midisock_connect_options *new_connect_options() {
    midisock_connect_options *raw = nullptr;
    check(midisock_connect_options_new(&raw));
    return raw;
}

} // namespace detail

/// A server's limits and protections (midisock_server_config), for server(address, config).
/// Starts with every default; each setter throws midisock::error on a bad value (the config is
/// then unchanged) and returns *this:
///
///   midisock::server_config config;
///   config.token("open sesame").allow("192.168.1.0/24").sysex(MIDISOCK_SYSEX_POLICY_DENY);
///   midisock::server server("0.0.0.0:8080", config);
class server_config {
public:
    server_config() : handle_(detail::new_server_config()) {}

    server_config &max_sysex_len(size_t bytes) {
        detail::check(midisock_server_config_set_max_sysex_len(get(), bytes));
        return *this;
    }
    server_config &max_client_queue(size_t bytes) {
        detail::check(midisock_server_config_set_max_client_queue(get(), bytes));
        return *this;
    }
    server_config &max_clients(size_t clients) {
        detail::check(midisock_server_config_set_max_clients(get(), clients));
        return *this;
    }
    server_config &max_inbox_bytes(size_t bytes) {
        detail::check(midisock_server_config_set_max_inbox_bytes(get(), bytes));
        return *this;
    }
    server_config &sysex(midisock_sysex_policy policy) {
        detail::check(midisock_server_config_set_sysex(get(), static_cast<uint32_t>(policy)));
        return *this;
    }
    /// Adds an address or CIDR range to the peers allowed to connect.
    server_config &allow(const std::string &peer) {
        detail::check(midisock_server_config_allow(get(), peer.c_str()));
        return *this;
    }
    server_config &relay(bool on) {
        detail::check(midisock_server_config_set_relay(get(), on));
        return *this;
    }
    server_config &token(const std::string &token) {
        detail::check(midisock_server_config_set_token(get(), token.c_str()));
        return *this;
    }
    server_config &auth_timeout(std::chrono::milliseconds timeout) {
        detail::check(midisock_server_config_set_auth_timeout_ms(get(), detail::millis(timeout)));
        return *this;
    }
    /// Reads the PEM certificate chain and key now.
    server_config &tls_pem_files(const std::string &cert_chain, const std::string &private_key) {
        detail::check(midisock_server_config_set_tls_pem_files(get(), cert_chain.c_str(),
                                                               private_key.c_str()));
        return *this;
    }
    server_config &shutdown_flush(std::chrono::milliseconds limit) {
        detail::check(midisock_server_config_set_shutdown_flush_ms(get(), detail::millis(limit)));
        return *this;
    }
    /// Plays each client's messages out through a jitter buffer: MIDISOCK_JITTER_MODE_FIXED with
    /// `delay` (0 to 10 s), MIDISOCK_JITTER_MODE_AUTO or _OFF without one.
    server_config &jitter_buffer(midisock_jitter_mode mode,
                                 std::chrono::microseconds delay = std::chrono::microseconds(0)) {
        detail::check(midisock_server_config_set_jitter_buffer(get(), static_cast<uint32_t>(mode),
                                                               detail::delay_micros(delay)));
        return *this;
    }

    /// The C handle, still owned by this object (nullptr after a move).
    midisock_server_config *get() const noexcept { return handle_.get(); }

private:
    detail::handle<midisock_server_config, midisock_server_config_free> handle_;
};

/// How port::connect(address, options) connects (midisock_connect_options). Starts with every
/// default; setters throw midisock::error on a bad value and return *this.
class connect_options {
public:
    connect_options() : handle_(detail::new_connect_options()) {}

    connect_options &timeout(std::chrono::milliseconds timeout) {
        detail::check(midisock_connect_options_set_timeout_ms(get(), detail::millis(timeout)));
        return *this;
    }
    connect_options &token(const std::string &token) {
        detail::check(midisock_connect_options_set_token(get(), token.c_str()));
        return *this;
    }
    /// TLS, trusting the PEM certificates in `ca_path` (read now).
    connect_options &tls_ca_file(const std::string &ca_path) {
        detail::check(midisock_connect_options_set_tls_ca_file(get(), ca_path.c_str()));
        return *this;
    }
    connect_options &tls_server_name(const std::string &name) {
        detail::check(midisock_connect_options_set_tls_server_name(get(), name.c_str()));
        return *this;
    }
    /// Reconnect when the connection drops: `initial` then doubling up to `max` between
    /// attempts; give up after `max_attempts` consecutive failures (0: never). See
    /// midisock_connect_options_set_reconnect.
    connect_options &reconnect(std::chrono::milliseconds initial, std::chrono::milliseconds max,
                               uint32_t max_attempts = 0) {
        detail::check(midisock_connect_options_set_reconnect(get(), detail::millis(initial),
                                                             detail::millis(max), max_attempts));
        return *this;
    }

    /// Plays received messages out through a jitter buffer: MIDISOCK_JITTER_MODE_FIXED with
    /// `delay` (0 to 10 s), MIDISOCK_JITTER_MODE_AUTO or _OFF without one.
    connect_options &jitter_buffer(midisock_jitter_mode mode,
                                   std::chrono::microseconds delay = std::chrono::microseconds(0)) {
        detail::check(midisock_connect_options_set_jitter_buffer(get(), static_cast<uint32_t>(mode),
                                                                 detail::delay_micros(delay)));
        return *this;
    }

    /// The C handle, still owned by this object (nullptr after a move).
    midisock_connect_options *get() const noexcept { return handle_.get(); }

private:
    detail::handle<midisock_connect_options, midisock_connect_options_free> handle_;
};

/// A connection (midisock_port): from port::connect or server::accept.
class port {
public:
    /// Receives each message on the port's "midisock-cb" thread, with its times (timestamp_ns,
    /// and sender_ns for a stamped message). Must not throw: an exception escaping it calls
    /// std::terminate().
    using callback = std::function<void(const message &)>;

    /// Connects to host:port (midisock_port_connect). Throws midisock::error.
    static port connect(const std::string &address) {
        midisock_port *handle = nullptr;
        detail::check(midisock_port_connect(address.c_str(), &handle));
        return port(handle);
    }

    /// Connects, giving up on each address after `timeout`.
    static port connect(const std::string &address, std::chrono::milliseconds timeout) {
        midisock_port *handle = nullptr;
        detail::check(
            midisock_port_connect_timeout(address.c_str(), detail::millis(timeout), &handle));
        return port(handle);
    }

    /// Connects with a timeout, token and/or TLS (midisock_port_connect_with).
    static port connect(const std::string &address, const connect_options &options) {
        midisock_port *handle = nullptr;
        detail::check(midisock_port_connect_with(address.c_str(), options.get(), &handle));
        return port(handle);
    }

    /// Takes ownership of a handle from the C API.
    explicit port(midisock_port *handle) noexcept : handle_(handle) {}

    port(port &&other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)), callback_(std::move(other.callback_)) {}

    port &operator=(port &&other) noexcept {
        if (this != &other) {
            midisock_port_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
            callback_ = std::move(other.callback_);
        }
        return *this;
    }

    port(const port &) = delete;
    port &operator=(const port &) = delete;

    /// Closes the connection and waits for a running callback to return.
    ~port() { midisock_port_free(handle_); }

    /// Sends one or more whole messages given as raw bytes.
    void send(const uint8_t *bytes, size_t len) const {
        detail::check(midisock_port_send(handle_, bytes, len));
    }
    void send(const std::vector<uint8_t> &bytes) const { send(bytes.data(), bytes.size()); }
    void send(const message &m) const { send(m.bytes); }

    /// Blocks until a message comes; throws error(MIDISOCK_RESULT_CLOSED) at the end.
    message receive() const {
        return *detail::receive_with([this](uint8_t *b, size_t n, size_t *len, midisock_received_info *info) {
            return midisock_port_receive_message(handle_, MIDISOCK_WAIT_FOREVER, b, n, len, info);
        });
    }

    /// The next message if one has arrived; never blocks.
    std::optional<message> try_receive() const {
        return detail::receive_with([this](uint8_t *b, size_t n, size_t *len, midisock_received_info *info) {
            return midisock_port_receive_message(handle_, 0, b, n, len, info);
        });
    }

    /// Waits at most `timeout` for a message.
    std::optional<message> receive_for(std::chrono::milliseconds timeout) const {
        // 0 is a poll (nothing: MIDISOCK_RESULT_WOULD_BLOCK), the same empty result.
        uint64_t ms = detail::millis(timeout);
        return detail::receive_with([this, ms](uint8_t *b, size_t n, size_t *len, midisock_received_info *info) {
            return midisock_port_receive_message(handle_, ms, b, n, len, info);
        });
    }

    /// Delivers every message to `fn` on the port's callback thread from now on.
    void set_callback(callback fn) {
        auto owned = std::make_unique<callback>(std::move(fn));
        detail::check(midisock_port_set_message_callback(handle_, &port::trampoline, owned.get()));
        callback_ = std::move(owned);
    }

    /// Closes the connection; blocked receivers wake with error(MIDISOCK_RESULT_CLOSED).
    void close() const { detail::check(midisock_port_close(handle_)); }

    /// Half-closes, waits at most `timeout` for the server's close, then closes the port: throws
    /// midisock::error with MIDISOCK_RESULT_REFUSED (and the server's words) if the server
    /// refused this connection. What a program that only sends calls before it exits.
    void finish(std::chrono::milliseconds timeout) const {
        detail::check(midisock_port_finish(handle_, detail::millis(timeout)));
    }

    bool is_closed() const {
        bool closed = false;
        detail::check(midisock_port_is_closed(handle_, &closed));
        return closed;
    }

    /// "host:port" of the peer.
    std::string name() const {
        return detail::text_from([this](char *buf, size_t len, size_t *len_out) {
            return midisock_port_name(handle_, buf, len, len_out);
        });
    }

    /// Where the connection stands (state, attempt, delay_ms); see midisock_link_state.
    midisock_link_status link_status() const {
        midisock_link_status status{};
        detail::check(midisock_port_link_status(handle_, &status));
        return status;
    }

    /// The same in words, e.g. "reconnecting: attempt 2 in 200 ms".
    std::string link_text() const {
        return detail::text_from([this](char *buf, size_t len, size_t *len_out) {
            return midisock_port_link_text(handle_, buf, len, len_out);
        });
    }

    /// mido's reset() and panic() message sets.
    void reset() const { detail::check(midisock_port_reset(handle_)); }
    void panic() const { detail::check(midisock_port_panic(handle_)); }

    /// With autoreset on, closing (or destroying) the port first sends note-offs for the notes
    /// it left sounding and mido's reset set.
    void set_autoreset(bool on) const { detail::check(midisock_port_set_autoreset(handle_, on)); }

    /// What the receiving parser has ignored or dropped so far.
    midisock_parser_statistics parser_stats() const {
        midisock_parser_statistics stats{};
        detail::check(midisock_port_parser_stats(handle_, &stats));
        return stats;
    }

    /// The jitter buffer's state; empty when the port has none.
    std::optional<midisock_playout_stats> playout_stats() const {
        midisock_playout_stats stats{};
        midisock_result r = midisock_port_playout_stats(handle_, &stats);
        if (r == MIDISOCK_RESULT_NOT_ENABLED) return std::nullopt;
        detail::check(r);
        return stats;
    }

    /// When the next message held in the jitter buffer is due (CLOCK_MONOTONIC ns, the clock of
    /// message::timestamp_ns); empty when nothing is held or there is no buffer. For a loop that
    /// polls with try_receive(): sleep until then (or wait on poll_fd(), which wakes then too).
    std::optional<uint64_t> next_due_ns() const {
        uint64_t due = MIDISOCK_NOTHING_DUE;
        detail::check(midisock_port_next_due_ns(handle_, &due));
        if (due == MIDISOCK_NOTHING_DUE) return std::nullopt;
        return due;
    }

    /// A descriptor readable whenever try_receive() may have something (bytes arrived, a held
    /// message fell due, a reconnecting port's state changed); quiet once try_receive() returns
    /// empty. Owned by the port: never close it.
    int poll_fd() const {
        int fd = -1;
        detail::check(midisock_port_poll_fd(handle_, &fd));
        return fd;
    }

    /// The C handle, still owned by this object (nullptr after a move).
    midisock_port *get() const noexcept { return handle_; }

private:
    static void trampoline(void *user_data, const uint8_t *bytes, size_t len,
                           const midisock_received_info *info) noexcept {
        // noexcept: an exception from the user's callback must not unwind into libmidisock.
        const callback &fn = *static_cast<const callback *>(user_data);
        message m;
        m.bytes.assign(bytes, bytes + len);
        m.timestamp_ns = info->timestamp_ns;
        if (info->has_sender_ns) m.sender_ns = info->sender_ns;
        fn(m);
    }

    midisock_port *handle_ = nullptr;
    // Declared after handle_, so destroyed after ~port() has freed the handle (which joins the
    // callback thread): the callback never outlives its function object.
    std::unique_ptr<callback> callback_;
};

/// A server (midisock_server): receives from every client, broadcasts, hands out connections.
class server {
public:
    /// Listens on host:port; port 0 picks a free one (see local_port()). Throws midisock::error.
    explicit server(const std::string &address) {
        detail::check(midisock_server_bind(address.c_str(), &handle_));
    }

    /// Listens with the limits and protections of `config` (copied; it may be destroyed after).
    server(const std::string &address, const server_config &config) {
        detail::check(midisock_server_bind_with(address.c_str(), config.get(), &handle_));
    }

    server(server &&other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}

    server &operator=(server &&other) noexcept {
        if (this != &other) {
            midisock_server_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }

    server(const server &) = delete;
    server &operator=(const server &) = delete;

    /// Closes the server and every connection it serves (accepted ports stay open).
    ~server() { midisock_server_free(handle_); }

    uint16_t local_port() const {
        uint16_t port_number = 0;
        detail::check(midisock_server_local_port(handle_, &port_number));
        return port_number;
    }

    std::string name() const {
        return detail::text_from([this](char *buf, size_t len, size_t *len_out) {
            return midisock_server_name(handle_, buf, len, len_out);
        });
    }

    size_t client_count() const {
        size_t count = 0;
        detail::check(midisock_server_client_count(handle_, &count));
        return count;
    }

    /// What the server has accepted, refused and dropped so far.
    midisock_server_statistics stats() const {
        midisock_server_statistics stats{};
        detail::check(midisock_server_stats(handle_, &stats));
        return stats;
    }

    /// Each played-out client's jitter buffer (its address in `peer`); empty when the server has
    /// no jitter buffer.
    std::optional<std::vector<midisock_client_playout_stats>> playout_stats() const {
        std::vector<midisock_client_playout_stats> clients;
        size_t count = 0;
        midisock_result r = midisock_server_playout_stats(handle_, nullptr, 0, &count);
        while (r == MIDISOCK_RESULT_BUFFER_TOO_SMALL) {
            clients.resize(count + 4); // clients may arrive meanwhile
            r = midisock_server_playout_stats(handle_, clients.data(), clients.size(), &count);
        }
        if (r == MIDISOCK_RESULT_NOT_ENABLED) return std::nullopt;
        detail::check(r);
        clients.resize(count);
        return clients;
    }

    /// Broadcasts to every connected client; never blocks on a client.
    void send(const uint8_t *bytes, size_t len) const {
        detail::check(midisock_server_send(handle_, bytes, len));
    }
    void send(const std::vector<uint8_t> &bytes) const { send(bytes.data(), bytes.size()); }
    void send(const message &m) const { send(m.bytes); }

    /// The next message from any client; blocks. Throws error(MIDISOCK_RESULT_CLOSED) once closed.
    message receive() const {
        return *detail::receive_with([this](uint8_t *b, size_t n, size_t *len, midisock_received_info *info) {
            return midisock_server_receive_message(handle_, MIDISOCK_WAIT_FOREVER, b, n, len, info);
        });
    }

    std::optional<message> try_receive() const {
        return detail::receive_with([this](uint8_t *b, size_t n, size_t *len, midisock_received_info *info) {
            return midisock_server_receive_message(handle_, 0, b, n, len, info);
        });
    }

    std::optional<message> receive_for(std::chrono::milliseconds timeout) const {
        // 0 is a poll (nothing: MIDISOCK_RESULT_WOULD_BLOCK), the same empty result.
        uint64_t ms = detail::millis(timeout);
        return detail::receive_with([this, ms](uint8_t *b, size_t n, size_t *len, midisock_received_info *info) {
            return midisock_server_receive_message(handle_, ms, b, n, len, info);
        });
    }

    /// Waits for a client and hands its connection over.
    port accept() const {
        midisock_port *handle = nullptr;
        detail::check(midisock_server_accept(handle_, &handle));
        return port(handle);
    }

    std::optional<port> try_accept() const {
        midisock_port *handle = nullptr;
        midisock_result r = midisock_server_try_accept(handle_, &handle);
        if (r == MIDISOCK_RESULT_WOULD_BLOCK) return std::nullopt;
        detail::check(r);
        return port(handle);
    }

    std::optional<port> accept_for(std::chrono::milliseconds timeout) const {
        midisock_port *handle = nullptr;
        midisock_result r = midisock_server_accept_timeout(handle_, detail::millis(timeout), &handle);
        if (r == MIDISOCK_RESULT_TIMED_OUT) return std::nullopt;
        detail::check(r);
        return port(handle);
    }

    void reset() const { detail::check(midisock_server_reset(handle_)); }
    void panic() const { detail::check(midisock_server_panic(handle_)); }

    /// Stops the server; blocked receive()/accept() calls throw error(MIDISOCK_RESULT_CLOSED).
    void close() const { detail::check(midisock_server_close(handle_)); }

    /// When the next message held in any client's jitter buffer is due (CLOCK_MONOTONIC ns);
    /// empty when nothing is held or there is no buffer.
    std::optional<uint64_t> next_due_ns() const {
        uint64_t due = MIDISOCK_NOTHING_DUE;
        detail::check(midisock_server_next_due_ns(handle_, &due));
        if (due == MIDISOCK_NOTHING_DUE) return std::nullopt;
        return due;
    }

    /// A descriptor readable whenever try_receive() may have something (messages arrived or
    /// played out, a client connected, the server stopped); quiet once try_receive() returns
    /// empty. Owned by the server: never close it.
    int poll_fd() const {
        int fd = -1;
        detail::check(midisock_server_poll_fd(handle_, &fd));
        return fd;
    }

    midisock_server *get() const noexcept { return handle_; }

private:
    midisock_server *handle_ = nullptr;
};

/// The library's version ("0.1.0"); compare with MIDISOCK_VERSION_STRING.
inline std::string version() { return midisock_version(); }

} // namespace midisock

#endif // MIDISOCK_HPP
