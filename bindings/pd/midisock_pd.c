/*
 * midisock_pd.c — the [midisock] Pure Data object: MIDI over TCP, wire-compatible with mido's
 * socket ports, on libmidisock.
 *
 * This file is only Pd glue: atoms in, outlets out. Message building, message description and
 * the network link live in midisock_messages.c and midisock_link.c (midisock_glue.h); the network itself in libmidisock. Everything here
 * runs on Pd's scheduler thread. The link's descriptor (msg_link_fd) is handed to Pd's own
 * descriptor polling (sys_addpollfn, as [netreceive] does): Pd's idle wait wakes when it is
 * readable, which is when bytes arrive, a message held by the jitter buffer falls due (to the
 * nanosecond), a connection attempt ends or a status changes, and the object then polls the link
 * (non-blocking). Nothing polls on a timer, so an open connection costs no work while quiet, and
 * a played-out message comes out when it is due, not at the next tick of a polling clock. The
 * clock only re-polls at once after a poll that stopped at MESSAGES_PER_POLL (and polls every
 * millisecond if the descriptor could not be made). Outlets are called from those two places
 * only.
 *
 *   [midisock]  [midisock connect host:port]  [midisock serve host:port]
 *   outlets, left to right: raw bytes (one list per message), typed messages, status.
 */
#include "m_pd.h"
#include "s_stuff.h" /* sys_addpollfn, sys_rmpollfn */
#include "midisock_glue.h"

#include <midisock.h>

#include <stdio.h>
#include <string.h>

/* Poll period while open, in Pd's logical milliseconds, used only without the link's descriptor;
 * and the most messages one poll hands to the patch (so a flood from the network cannot stall
 * Pd's scheduler for long). */
#define POLL_PERIOD_MS 1.0
#define MESSAGES_PER_POLL 4096
/* The longest message the patch can send at once (a sysex of 64 KiB, framing included). */
#define SEND_MAX (64 * 1024)

static t_class *midisock_class;

typedef struct {
    t_object object;
    msg_link *link;
    t_clock *clock;
    int fd; /* the link's descriptor, registered with Pd's polling; -1: poll on the clock */
    t_outlet *raw_out, *typed_out, *status_out;
    t_atom *atoms; /* outlet scratch, grown for long sysex */
    size_t atoms_len;
    uint8_t *bytes; /* send scratch, SEND_MAX bytes */
} t_midisock;

/* Polls once, at the next scheduler tick: after a command whose outcome the patch should hear
 * about promptly (the link's descriptor would say so too). */
static void start_polling(t_midisock *x) {
    clock_delay(x->clock, 0);
}

static t_atom *atoms(t_midisock *x, size_t count) {
    if (count > x->atoms_len) {
        size_t wanted = count < 64 ? 64 : count;
        t_atom *grown = (t_atom *)resizebytes(x->atoms, x->atoms_len * sizeof(t_atom), wanted * sizeof(t_atom));
        if (grown == NULL) return NULL;
        x->atoms = grown;
        x->atoms_len = wanted;
    }
    return x->atoms;
}

/* ---- events from the link (on the clock's call, Pd's thread) ---- */

static void on_message(void *context, const uint8_t *bytes, size_t len) {
    t_midisock *x = context;
    t_atom *list = atoms(x, len);
    if (list == NULL) {
        pd_error(x, "midisock: out of memory for a %zu-byte message (dropped)", len);
        return;
    }
    /* Right to left, as Pd does: the typed outlet fires before the raw one. */
    msg_typed message;
    if (msg_describe(bytes, len, &message) == 0) {
        size_t count = message.data != NULL ? message.data_len : message.value_count;
        for (size_t i = 0; i < count; i++) {
            SETFLOAT(&list[i], message.data != NULL ? (t_float)message.data[i] : (t_float)message.values[i]);
        }
        outlet_anything(x->typed_out, gensym(message.selector), (int)count, list);
    }
    list = atoms(x, len); /* the typed outlet's patch may have sent a long sysex meanwhile */
    for (size_t i = 0; i < len; i++) SETFLOAT(&list[i], (t_float)bytes[i]);
    outlet_list(x->raw_out, &s_list, (int)len, list);
}

static void on_status(void *context, msg_status status, long number, const char *text) {
    t_midisock *x = context;
    t_atom argument;
    switch (status) {
    case MSG_STATUS_CONNECTED:
        SETSYMBOL(&argument, gensym(text));
        outlet_anything(x->status_out, gensym("connected"), 1, &argument);
        break;
    case MSG_STATUS_DISCONNECTED:
        logpost(x, 2, "midisock: disconnected (%s)", text);
        outlet_anything(x->status_out, gensym("disconnected"), 0, NULL);
        break;
    case MSG_STATUS_RECONNECTING:
        logpost(x, 3, "midisock: %s", text);
        SETFLOAT(&argument, (t_float)number);
        outlet_anything(x->status_out, gensym("reconnecting"), 1, &argument);
        break;
    case MSG_STATUS_LISTENING:
        SETFLOAT(&argument, (t_float)number);
        outlet_anything(x->status_out, gensym("listening"), 1, &argument);
        break;
    case MSG_STATUS_PEERS:
        SETFLOAT(&argument, (t_float)number);
        outlet_anything(x->status_out, gensym("peers"), 1, &argument);
        break;
    case MSG_STATUS_ERROR: {
        pd_error(x, "midisock: %s", text);
        /* The sentence as a list of words (symbols, never parsed: a '$' or ';' in it stays
         * text), so [print] and [route error] show it readably. */
        char copy[MSG_ERROR_LEN];
        t_atom words[MSG_ERROR_LEN / 2];
        int count = 0;
        snprintf(copy, sizeof copy, "%s", text);
        char *rest = NULL;
        for (char *word = strtok_r(copy, " ", &rest); word != NULL && count < MSG_ERROR_LEN / 2;
             word = strtok_r(NULL, " ", &rest)) {
            SETSYMBOL(&words[count], gensym(word));
            count++;
        }
        outlet_anything(x->status_out, gensym("error"), count, words);
        break;
    }
    }
}

static const msg_link_events EVENTS = {on_message, on_status};

static void midisock_poll(t_midisock *x) {
    int state = msg_link_poll(x->link, &EVENTS, x, MESSAGES_PER_POLL);
    if (state == 2) {
        clock_delay(x->clock, 0); /* more waiting: after Pd has had its turn */
    } else if (state == 1 && x->fd < 0) {
        clock_delay(x->clock, POLL_PERIOD_MS);
    }
}

static void midisock_tick(t_midisock *x) {
    midisock_poll(x);
}

/* Pd's idle wait saw the link's descriptor readable. */
static void midisock_readable(void *x, int fd) {
    (void)fd;
    midisock_poll((t_midisock *)x);
}

/* ---- messages from the patch ---- */

/* "host:port" from one symbol, or from a host and a port number ("connect localhost 8080"). */
static int address_argument(t_midisock *x, const char *verb, int argc, t_atom *argv, char *out, size_t len) {
    if (argc == 1 && argv[0].a_type == A_SYMBOL) {
        snprintf(out, len, "%s", atom_getsymbol(&argv[0])->s_name);
        return 0;
    }
    if (argc == 2 && argv[0].a_type == A_SYMBOL && argv[1].a_type == A_FLOAT) {
        const char *host = atom_getsymbol(&argv[0])->s_name;
        t_float port = atom_getfloat(&argv[1]);
        if (port >= 0 && port <= 65535 && port == (int)port) {
            snprintf(out, len, strchr(host, ':') != NULL ? "[%s]:%d" : "%s:%d", host, (int)port);
            return 0;
        }
    }
    pd_error(x, "midisock: %s takes an address, host:port (e.g. localhost:8080) or host port", verb);
    return -1;
}

static void midisock_connect(t_midisock *x, t_symbol *s, int argc, t_atom *argv) {
    (void)s;
    char address[MSG_ERROR_LEN], error[MSG_ERROR_LEN];
    if (address_argument(x, "connect", argc, argv, address, sizeof address) != 0) return;
    if (msg_link_connect(x->link, address, error) != 0) {
        pd_error(x, "midisock: connect: %s", error);
        return;
    }
    start_polling(x);
}

static void midisock_serve(t_midisock *x, t_symbol *s, int argc, t_atom *argv) {
    (void)s;
    char address[MSG_ERROR_LEN], error[MSG_ERROR_LEN];
    if (address_argument(x, "serve", argc, argv, address, sizeof address) != 0) return;
    if (msg_link_serve(x->link, address, error) != 0) {
        pd_error(x, "midisock: serve: %s", error);
        return;
    }
    start_polling(x);
}

static void midisock_disconnect(t_midisock *x) {
    msg_link_disconnect(x->link);
    start_polling(x); /* to report it */
}

/* note, noteoff, cc, bend, program, touch, polytouch, sysex, send: numbers → bytes → link. */
static void midisock_build_and_send(t_midisock *x, t_symbol *s, int argc, t_atom *argv) {
    double stack[16];
    double *values = argc <= 16 ? stack : (double *)getbytes((size_t)argc * sizeof(double));
    char error[MSG_ERROR_LEN];
    size_t len = 0;
    if (values == NULL) {
        pd_error(x, "midisock: %s: out of memory", s->s_name);
        return;
    }
    int ok = 1;
    for (int i = 0; i < argc && ok; i++) {
        if (argv[i].a_type != A_FLOAT) {
            pd_error(x, "midisock: %s: argument %d is not a number", s->s_name, i + 1);
            ok = 0;
        } else {
            values[i] = atom_getfloat(&argv[i]);
        }
    }
    if (ok && msg_build(s->s_name, values, (size_t)argc, x->bytes, SEND_MAX, &len, error) != 0) {
        pd_error(x, "midisock: %s", error);
        ok = 0;
    }
    if (values != stack) freebytes(values, (size_t)argc * sizeof(double));
    if (ok && msg_link_send(x->link, x->bytes, len, error) != 0) {
        if (error[0] != '\0') pd_error(x, "midisock: %s: %s", s->s_name, error); /* empty: said already */
        start_polling(x); /* a lost connection is reported by the next poll */
    }
}

/* A bare list or number: raw bytes, as [midiout] takes them (a list from the raw outlet sends
 * the same message again). */
static void midisock_list(t_midisock *x, t_symbol *s, int argc, t_atom *argv) {
    (void)s;
    midisock_build_and_send(x, gensym("send"), argc, argv);
}

static void midisock_float(t_midisock *x, t_floatarg byte) {
    t_atom atom;
    SETFLOAT(&atom, byte);
    midisock_build_and_send(x, gensym("send"), 1, &atom);
}

static void midisock_panic(t_midisock *x) {
    char error[MSG_ERROR_LEN];
    if (msg_link_panic(x->link, error) != 0 && error[0] != '\0') pd_error(x, "midisock: %s", error);
}

static void midisock_reset(t_midisock *x) {
    char error[MSG_ERROR_LEN];
    if (msg_link_reset(x->link, error) != 0 && error[0] != '\0') pd_error(x, "midisock: %s", error);
}

/* jitter_buffer off | auto | <ms>: kept for the next connect or serve (see midisock_glue.h). */
static void midisock_jitter_buffer(t_midisock *x, t_symbol *s, int argc, t_atom *argv) {
    (void)s;
    char setting[64], error[MSG_ERROR_LEN];
    if (argc == 1 && argv[0].a_type == A_SYMBOL) {
        snprintf(setting, sizeof setting, "%s", atom_getsymbol(&argv[0])->s_name);
    } else if (argc == 1 && argv[0].a_type == A_FLOAT) {
        /* Plain decimal digits, as the text form takes them: 12.5 -> "12.5", 1e-05 -> "0.00001". */
        snprintf(setting, sizeof setting, "%.6f", (double)atom_getfloat(&argv[0]));
        char *end = setting + strlen(setting) - 1;
        while (*end == '0') *end-- = '\0';
        if (*end == '.') *end = '\0';
    } else {
        pd_error(x, "midisock: jitter_buffer takes off, auto or a delay in milliseconds (0 to 10000)");
        return;
    }
    if (msg_link_set_jitter_buffer(x->link, setting, error) != 0) pd_error(x, "midisock: jitter_buffer: %s", error);
}

/* stats: the jitter buffer's figures on the status outlet, `stats <peer> <name> <value>` each,
 * or `stats off`. */
static void on_stat(void *context, const char *peer, const char *name, double value) {
    t_midisock *x = context;
    t_atom figure[3];
    SETSYMBOL(&figure[0], gensym(peer));
    SETSYMBOL(&figure[1], gensym(name));
    SETFLOAT(&figure[2], (t_float)value);
    outlet_anything(x->status_out, gensym("stats"), 3, figure);
}

static void midisock_stats(t_midisock *x) {
    char error[MSG_ERROR_LEN];
    int on = msg_link_stats(x->link, on_stat, x, error);
    if (on < 0) {
        pd_error(x, "midisock: stats: %s", error);
    } else if (on == 0) {
        t_atom off;
        SETSYMBOL(&off, gensym("off"));
        outlet_anything(x->status_out, gensym("stats"), 1, &off);
    }
}

static void midisock_anything(t_midisock *x, t_symbol *s, int argc, t_atom *argv) {
    (void)argc, (void)argv;
    pd_error(x,
             "midisock: unknown message '%s' (try connect, serve, disconnect, note, noteoff, cc, bend, "
             "program, touch, polytouch, sysex, send, panic, reset, jitter_buffer, stats)",
             s->s_name);
}

/* ---- life cycle ---- */

static void *midisock_new(t_symbol *s, int argc, t_atom *argv) {
    (void)s;
    t_midisock *x = (t_midisock *)pd_new(midisock_class);
    x->fd = -1;
    x->link = msg_link_new();
    x->bytes = (uint8_t *)getbytes(SEND_MAX);
    if (x->link == NULL || x->bytes == NULL) {
        pd_error(x, "midisock: out of memory");
        pd_free(&x->object.ob_pd); /* midisock_free releases what was made */
        return NULL;
    }
    x->clock = clock_new(x, (t_method)midisock_tick);
    x->fd = msg_link_fd(x->link);
    if (x->fd >= 0) sys_addpollfn(x->fd, midisock_readable, x);
    x->raw_out = outlet_new(&x->object, &s_list);
    x->typed_out = outlet_new(&x->object, &s_anything);
    x->status_out = outlet_new(&x->object, &s_anything);
    if (argc > 0) {
        t_symbol *verb = atom_getsymbol(&argv[0]);
        if (argv[0].a_type == A_SYMBOL && verb == gensym("connect")) {
            midisock_connect(x, verb, argc - 1, argv + 1);
        } else if (argv[0].a_type == A_SYMBOL && verb == gensym("serve")) {
            midisock_serve(x, verb, argc - 1, argv + 1);
        } else {
            pd_error(x, "midisock: arguments are 'connect host:port' or 'serve host:port' (or none); "
                        "the object was created without a connection");
        }
    }
    return x;
}

static void midisock_free(t_midisock *x) {
    if (x->clock != NULL) clock_free(x->clock);
    /* Before the link closes the descriptor: Pd must not wait on a closed one. */
    if (x->link != NULL && x->fd >= 0) sys_rmpollfn(x->fd);
    msg_link_free(x->link);
    if (x->bytes != NULL) freebytes(x->bytes, SEND_MAX);
    if (x->atoms != NULL) freebytes(x->atoms, x->atoms_len * sizeof(t_atom));
}

__attribute__((visibility("default"))) void midisock_setup(void) {
    midisock_class = class_new(gensym("midisock"), (t_newmethod)midisock_new, (t_method)midisock_free,
                               sizeof(t_midisock), CLASS_DEFAULT, A_GIMME, 0);
    class_addmethod(midisock_class, (t_method)midisock_connect, gensym("connect"), A_GIMME, 0);
    class_addmethod(midisock_class, (t_method)midisock_serve, gensym("serve"), A_GIMME, 0);
    class_addmethod(midisock_class, (t_method)midisock_disconnect, gensym("disconnect"), 0);
    static const char *const builders[] = {"note", "noteoff", "cc", "bend", "program", "touch", "polytouch", "sysex", "send"};
    for (size_t i = 0; i < sizeof builders / sizeof builders[0]; i++) {
        class_addmethod(midisock_class, (t_method)midisock_build_and_send, gensym(builders[i]), A_GIMME, 0);
    }
    class_addmethod(midisock_class, (t_method)midisock_panic, gensym("panic"), 0);
    class_addmethod(midisock_class, (t_method)midisock_reset, gensym("reset"), 0);
    class_addmethod(midisock_class, (t_method)midisock_jitter_buffer, gensym("jitter_buffer"), A_GIMME, 0);
    class_addmethod(midisock_class, (t_method)midisock_stats, gensym("stats"), 0);
    class_addlist(midisock_class, (t_method)midisock_list);
    class_addfloat(midisock_class, (t_method)midisock_float);
    class_addanything(midisock_class, (t_method)midisock_anything);
    logpost(NULL, 3, "midisock: MIDI over TCP (mido-compatible), libmidisock %s", midisock_version());
}
