/*
 * midisock_messages.c — patch numbers <-> MIDI bytes (see midisock_glue.h). Plain C11, no
 * patcher API, no network.
 */
#include "midisock_glue.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void say(char error[MSG_ERROR_LEN], const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(error, MSG_ERROR_LEN, format, args);
    va_end(args);
}

/* One numeric argument: its name for error texts and its range in the patch's terms. */
typedef struct {
    const char *name;
    int min, max;
    int optional_default; /* used when the argument is left out; REQUIRED: it cannot be */
} msg_arg;

#define REQUIRED (-100000)

/* A channel message the patch can build: the arguments in patch order. */
typedef struct {
    const char *selector;
    uint8_t status; /* high nibble */
    size_t arg_count;
    msg_arg args[3];
} msg_shape;

/* The channel is always the last argument, 1-16 as Pd's [noteout] family, default 1. */
#define CHANNEL {"channel", 1, 16, 1}

static const msg_shape SHAPES[] = {
    {"note", 0x90, 3, {{"note", 0, 127, REQUIRED}, {"velocity", 0, 127, REQUIRED}, CHANNEL}},
    {"noteoff", 0x80, 3, {{"note", 0, 127, REQUIRED}, {"velocity", 0, 127, 0}, CHANNEL}},
    {"cc", 0xB0, 3, {{"value", 0, 127, REQUIRED}, {"controller", 0, 127, REQUIRED}, CHANNEL}},
    {"bend", 0xE0, 2, {{"value", -8192, 8191, REQUIRED}, CHANNEL}},
    {"program", 0xC0, 2, {{"program", 1, 128, REQUIRED}, CHANNEL}},
    {"touch", 0xD0, 2, {{"value", 0, 127, REQUIRED}, CHANNEL}},
    {"polytouch", 0xA0, 3, {{"value", 0, 127, REQUIRED}, {"note", 0, 127, REQUIRED}, CHANNEL}},
};

static const msg_shape *find_shape(const char *selector) {
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) {
        if (strcmp(SHAPES[i].selector, selector) == 0) return &SHAPES[i];
    }
    return NULL;
}

/* Checks that `value` is a whole number in [min, max]; writes it to `*out`. */
static int whole_in_range(const char *selector, const char *name, double value, int min, int max, int *out,
                          char error[MSG_ERROR_LEN]) {
    if (!isfinite(value) || value != floor(value)) {
        say(error, "%s: %s must be a whole number, got %g", selector, name, value);
        return -1;
    }
    if (value < min || value > max) {
        say(error, "%s: %s %g is out of range %d..%d", selector, name, value, min, max);
        return -1;
    }
    *out = (int)value;
    return 0;
}

static int build_channel_message(const msg_shape *shape, const double *values, size_t count, uint8_t *out,
                                 size_t cap, size_t *len, char error[MSG_ERROR_LEN]) {
    size_t required = 0;
    while (required < shape->arg_count && shape->args[required].optional_default == REQUIRED) required++;
    if (count < required || count > shape->arg_count) {
        char usage[128] = "";
        size_t used = 0;
        for (size_t i = 0; i < shape->arg_count && used < sizeof usage; i++) {
            const msg_arg *arg = &shape->args[i];
            int n = snprintf(usage + used, sizeof usage - used, arg->optional_default == REQUIRED ? " <%s>" : " [%s]",
                             arg->name);
            if (n < 0) break;
            used += (size_t)n;
        }
        say(error, "%s takes%s (%d..%d numbers), got %zu", shape->selector, usage, (int)required,
            (int)shape->arg_count, count);
        return -1;
    }
    int args[3];
    for (size_t i = 0; i < shape->arg_count; i++) {
        const msg_arg *arg = &shape->args[i];
        if (i >= count) {
            args[i] = arg->optional_default;
        } else if (whole_in_range(shape->selector, arg->name, values[i], arg->min, arg->max, &args[i], error) != 0) {
            return -1;
        }
    }
    uint8_t status = (uint8_t)(shape->status | (args[shape->arg_count - 1] - 1));
    uint8_t bytes[3];
    size_t n;
    switch (shape->status) {
    case 0x90: /* note velocity ch */
    case 0x80:
        bytes[1] = (uint8_t)args[0], bytes[2] = (uint8_t)args[1], n = 3;
        break;
    case 0xB0: /* value controller ch: controller goes first on the wire */
    case 0xA0: /* value note ch: note goes first on the wire */
        bytes[1] = (uint8_t)args[1], bytes[2] = (uint8_t)args[0], n = 3;
        break;
    case 0xE0: { /* -8192..8191, 14 bits, LSB first */
        int raw = args[0] + 8192;
        bytes[1] = (uint8_t)(raw & 0x7F), bytes[2] = (uint8_t)(raw >> 7), n = 3;
        break;
    }
    case 0xC0: /* 1..128 in the patch, 0..127 on the wire */
        bytes[1] = (uint8_t)(args[0] - 1), n = 2;
        break;
    default: /* 0xD0 */
        bytes[1] = (uint8_t)args[0], n = 2;
        break;
    }
    bytes[0] = status;
    if (cap < n) {
        say(error, "%s: no room for %zu bytes", shape->selector, n);
        return -1;
    }
    memcpy(out, bytes, n);
    *len = n;
    return 0;
}

int msg_build(const char *selector, const double *values, size_t count, uint8_t *out, size_t cap, size_t *len,
              char error[MSG_ERROR_LEN]) {
    const msg_shape *shape = find_shape(selector);
    if (shape != NULL) return build_channel_message(shape, values, count, out, cap, len, error);

    int is_sysex = strcmp(selector, "sysex") == 0;
    if (!is_sysex && strcmp(selector, "send") != 0) {
        say(error, "unknown message '%s'", selector);
        return -1;
    }
    if (!is_sysex && count == 0) {
        say(error, "send takes the bytes of one or more whole MIDI messages (0..255 each), got none");
        return -1;
    }
    size_t needed = count + (is_sysex ? 2 : 0);
    if (needed > cap) {
        say(error, "%s: %zu bytes is more than the %zu this object sends at once", selector, needed, cap);
        return -1;
    }
    /* Every byte is checked before any is written: a refused message leaves `out` alone. */
    for (size_t i = 0; i < count; i++) {
        int byte;
        char name[32];
        snprintf(name, sizeof name, "byte %zu", i + 1);
        if (whole_in_range(selector, name, values[i], 0, is_sysex ? 127 : 255, &byte, error) != 0) return -1;
    }
    size_t at = 0;
    if (is_sysex) out[at++] = 0xF0;
    for (size_t i = 0; i < count; i++) out[at++] = (uint8_t)values[i];
    if (is_sysex) out[at++] = 0xF7;
    *len = at;
    return 0;
}

static void typed(msg_typed *out, const char *selector, size_t value_count, int a, int b, int c) {
    out->selector = selector;
    out->values[0] = a, out->values[1] = b, out->values[2] = c;
    out->value_count = value_count;
    out->data = NULL;
    out->data_len = 0;
}

int msg_describe(const uint8_t *bytes, size_t len, msg_typed *out) {
    if (len == 0 || bytes[0] < 0x80) return -1;
    uint8_t status = bytes[0];
    if (status < 0xF0) {
        int channel = (status & 0x0F) + 1;
        size_t expected = (status & 0xF0) == 0xC0 || (status & 0xF0) == 0xD0 ? 2 : 3;
        if (len != expected) return -1;
        int d1 = bytes[1], d2 = expected == 3 ? bytes[2] : 0;
        switch (status & 0xF0) {
        case 0x80: typed(out, "note", 3, d1, 0, channel); return 0; /* as Pd's [notein]: velocity 0 */
        case 0x90: typed(out, "note", 3, d1, d2, channel); return 0;
        case 0xA0: typed(out, "polytouch", 3, d2, d1, channel); return 0;
        case 0xB0: typed(out, "cc", 3, d2, d1, channel); return 0;
        case 0xC0: typed(out, "program", 2, d1 + 1, channel, 0); return 0;
        case 0xD0: typed(out, "touch", 2, d1, channel, 0); return 0;
        default: typed(out, "bend", 2, (d1 | (d2 << 7)) - 8192, channel, 0); return 0;
        }
    }
    switch (status) {
    case 0xF0:
        if (len < 2 || bytes[len - 1] != 0xF7) return -1;
        typed(out, "sysex", 0, 0, 0, 0);
        out->data = bytes + 1;
        out->data_len = len - 2;
        return 0;
    case 0xF1:
        if (len != 2) return -1;
        typed(out, "quarter_frame", 2, bytes[1] >> 4, bytes[1] & 0x0F, 0);
        return 0;
    case 0xF2:
        if (len != 3) return -1;
        typed(out, "songpos", 1, bytes[1] | (bytes[2] << 7), 0, 0);
        return 0;
    case 0xF3:
        if (len != 2) return -1;
        typed(out, "song_select", 1, bytes[1], 0, 0);
        return 0;
    default:
        break;
    }
    if (len != 1) return -1;
    switch (status) {
    case 0xF6: typed(out, "tune_request", 0, 0, 0, 0); return 0;
    case 0xF8: typed(out, "clock", 0, 0, 0, 0); return 0;
    case 0xFA: typed(out, "start", 0, 0, 0, 0); return 0;
    case 0xFB: typed(out, "continue", 0, 0, 0, 0); return 0;
    case 0xFC: typed(out, "stop", 0, 0, 0, 0); return 0;
    case 0xFE: typed(out, "active_sensing", 0, 0, 0, 0); return 0;
    case 0xFF: typed(out, "system_reset", 0, 0, 0, 0); return 0;
    default: return -1;
    }
}
