/*
 * midisock_glue.h — the host-independent half of the [midisock] patching object.
 *
 * Everything a patching environment's wrapper needs beyond its own API lives here, in plain C11:
 * turning numbers typed in a patch into MIDI bytes (with the patcher's conventions: channels
 * 1-16, programs 1-128, pitch bend -8192..8191), turning received bytes back into typed
 * messages (midisock_messages.c), and one network link (a client port or a server) that the
 * wrapper polls from its own scheduler (midisock_link.c). The Pd wrapper (midisock_pd.c) only converts atoms and calls outlets; a Max
 * wrapper would be a second file of the same size.
 *
 * Threads: every function is called from the host's main (scheduler) thread. The network work
 * runs in libmidisock; nothing here calls back into the host from another thread.
 */
#ifndef MIDISOCK_GLUE_H
#define MIDISOCK_GLUE_H

#include <stddef.h>
#include <stdint.h>

/** Room for an error text; every message built by this file fits. */
#define MSG_ERROR_LEN 256

/* ---------------------------------------------------------------------------------------------
 * Messages: patch numbers <-> MIDI bytes
 * ------------------------------------------------------------------------------------------- */

/**
 * Builds the MIDI bytes for one patch message: `selector` with `count` numeric arguments.
 *
 * Selectors (arguments in brackets are optional; channels 1-16, default 1):
 *   note <note> <velocity> [ch]        note_on (velocity 0: a note-off by MIDI convention)
 *   noteoff <note> [velocity] [ch]     note_off (release velocity, default 0)
 *   cc <value> <controller> [ch]       control_change — the order of Pd's [ctlout]/[ctlin]
 *   bend <value> [ch]                  pitchwheel, -8192..8191 (0 = centre)
 *   program <program> [ch]             program_change, 1-128 as Pd's [pgmout]
 *   touch <value> [ch]                 channel aftertouch
 *   polytouch <value> <note> [ch]      polyphonic aftertouch
 *   sysex <data...>                    F0 data F7; data bytes 0-127, framing added here
 *   send <bytes...>                    raw bytes 0-255, one or more whole messages
 *
 * Every number must be a whole number in range. On success writes the bytes to `out`, their
 * count to `*len` and returns 0. Returns -1 with a sentence in `error` (nothing written to
 * `out`) when the selector is unknown, a number is missing, extra, fractional or out of range,
 * or the message does not fit in `cap` bytes. `send` bytes are only checked for range here;
 * libmidisock checks that they form whole messages when they are sent.
 */
int msg_build(const char *selector, const double *values, size_t count, uint8_t *out, size_t cap,
              size_t *len, char error[MSG_ERROR_LEN]);

/** One received message in the patch's terms (see msg_describe). */
typedef struct {
    /** "note", "cc", "bend", "program", "touch", "polytouch", "sysex", "quarter_frame",
     *  "songpos", "song_select", "tune_request", "clock", "start", "continue", "stop",
     *  "active_sensing" or "system_reset". */
    const char *selector;
    /** The numbers after the selector, in Pd's [notein]/[ctlin]/... outlet order. */
    int values[3];
    size_t value_count;
    /** For "sysex": the data bytes between F0 and F7 (pointing into the described bytes). */
    const uint8_t *data;
    size_t data_len;
} msg_typed;

/**
 * Describes the whole MIDI message in `bytes[0..len]` in the patch's terms:
 *   note <note> <velocity> <ch>     (a note_off comes out as velocity 0, as from Pd's [notein])
 *   cc <value> <controller> <ch>, bend <value -8192..8191> <ch>, program <1-128> <ch>,
 *   touch <value> <ch>, polytouch <value> <note> <ch>, sysex (data), quarter_frame <type>
 *   <value>, songpos <beats>, song_select <song>, and the argument-less system messages.
 * Returns 0, or -1 when the bytes are not exactly one message (libmidisock never delivers that).
 */
int msg_describe(const uint8_t *bytes, size_t len, msg_typed *out);

/* ---------------------------------------------------------------------------------------------
 * The link: one client connection or one server, polled by the host
 * ------------------------------------------------------------------------------------------- */

typedef struct msg_link msg_link;

/** What a poll reports besides messages. */
typedef enum {
    /** Client: connected to `text` (the address). */
    MSG_STATUS_CONNECTED,
    /** Client: the connection ended or dropped (`text`: why); server: stopped. A client whose
     *  connection dropped reconnects by itself (RECONNECTING, then CONNECTED again). */
    MSG_STATUS_DISCONNECTED,
    /** Client: libmidisock makes reconnection attempt `number` soon (`text`: when). */
    MSG_STATUS_RECONNECTING,
    /** Server: listening on TCP port `number` (the real one when 0 was asked for). */
    MSG_STATUS_LISTENING,
    /** Server: the number of connected clients changed to `number`. */
    MSG_STATUS_PEERS,
    /** Something failed (`text`: a sentence). Nothing else changed. */
    MSG_STATUS_ERROR,
} msg_status;

/** Callbacks of msg_link_poll, called on the polling (host) thread. */
typedef struct {
    void (*message)(void *context, const uint8_t *bytes, size_t len);
    void (*status)(void *context, msg_status status, long number, const char *text);
} msg_link_events;

/** A new, idle link; NULL when out of memory. */
msg_link *msg_link_new(void);

/** Closes whatever the link has open and frees it. Never blocks on the network. NULL: no-op. */
void msg_link_free(msg_link *link);

/**
 * Starts connecting to `address` ("host:port", "[v6]:port") and returns at once; the outcome is
 * reported by a later msg_link_poll (CONNECTED, or ERROR then DISCONNECTED). Whatever the link
 * had open is closed first. Returns -1 with a sentence in `error` only for an address that
 * cannot be right (empty, no port); nothing is changed then.
 *
 * Once connected, the port reconnects by itself with libmidisock's policy when the connection
 * drops (DISCONNECTED, RECONNECTING, CONNECTED), and the note-offs for notes it had received
 * and not seen released come out as messages at each drop. The first connection is not
 * retried: a server that is not there is an ERROR.
 */
int msg_link_connect(msg_link *link, const char *address, char error[MSG_ERROR_LEN]);

/**
 * Listens on `address` ("host:port"; port 0 picks a free one). On success whatever the link had
 * open is closed and the server's LISTENING status comes with the next poll. Returns -1 with a
 * sentence in `error` (in use, bad address) and changes nothing.
 */
int msg_link_serve(msg_link *link, const char *address, char error[MSG_ERROR_LEN]);

/** Closes the connection or server (a DISCONNECTED status follows); idle: nothing happens. */
void msg_link_disconnect(msg_link *link);

/**
 * Sends whole MIDI messages: to the server (client) or to every client (server). Returns -1 with
 * a sentence in `error` when not connected or listening, when the bytes are not whole messages
 * (nothing sent), or when the connection is gone (it is closed; the next poll says so). While a
 * client's connection is down and reconnecting, sends are dropped: the first one after each
 * drop returns -1 with a sentence, the next ones -1 with an empty `error` (already said).
 * A client's send waits only while the peer's TCP window is full (it stopped reading).
 */
int msg_link_send(msg_link *link, const uint8_t *bytes, size_t len, char error[MSG_ERROR_LEN]);

/** Sends mido's panic set (all sound off) / reset set (all notes off, reset controllers). */
int msg_link_panic(msg_link *link, char error[MSG_ERROR_LEN]);
int msg_link_reset(msg_link *link, char error[MSG_ERROR_LEN]);

/**
 * Sets the jitter buffer for the link's next msg_link_connect or msg_link_serve (an open
 * connection or server keeps the one it was made with): "off" (the default), "auto" (adaptive),
 * or a fixed delay in milliseconds, 0 to 10000 ("15", "12.5"). With it on, received messages
 * come out at their played-out time: the sender's time plus the estimated clock offset plus the
 * delay, so network jitter becomes a fixed latency (midisock peers stamp what they send when
 * asked; messages from mido peers come out on arrival). Returns -1 with a sentence in `error`
 * for anything else, and changes nothing.
 */
int msg_link_set_jitter_buffer(msg_link *link, const char *setting, char error[MSG_ERROR_LEN]);

/** One figure of msg_link_stats: `peer` (the server's or the client's address), a name and a
 *  value (times in milliseconds). */
typedef void (*msg_stat_callback)(void *context, const char *peer, const char *name, double value);

/**
 * Reports the jitter buffer's state through `each`, figure by figure, for the connection (a
 * client) or for every connected client that stamps its messages (a server: midisock peers, not
 * mido): offset_ms and
 * jitter_p50_ms / jitter_p999_ms once measured, then delay_ms, queued, held_note_offs, pushed,
 * delivered, late, stale_notes_dropped, stale_note_offs_dropped, delivered_early_full, restarts.
 * Returns 1 when the buffer is on (a server with no such client reports nothing), 0 when it is
 * off, -1 with a sentence in `error` when not connected or listening.
 */
int msg_link_stats(msg_link *link, msg_stat_callback each, void *context, char error[MSG_ERROR_LEN]);

/**
 * Hands the host what happened since the last poll: status changes, then at most
 * `max_messages` received messages in arrival order. Never blocks. Returns 2 when it stopped
 * at `max_messages` with more waiting (poll again soon: the descriptor below does not say so),
 * 1 while the link is connecting, connected or listening, 0 when idle.
 */
int msg_link_poll(msg_link *link, const msg_link_events *events, void *context, size_t max_messages);

/**
 * A file descriptor, the same for the link's whole life, that is readable whenever
 * msg_link_poll has something to hand over: bytes arrived, a message held by the jitter buffer
 * fell due (to the nanosecond), a connection attempt finished, the connection's state or a
 * server's clients changed, or a status is waiting. Level-triggered: a poll that drains
 * everything (returns 1 or 0) makes it quiet again. A host that waits on it (Pd's
 * sys_addpollfn) needs no periodic poll. -1 if the link could not make one (out of file
 * descriptors): poll on a timer then. Owned by the link: never close it.
 */
int msg_link_fd(const msg_link *link);

#endif /* MIDISOCK_GLUE_H */
