"""The other side of midisock's MIDI port bridges in the tests: an independent JACK MIDI client
(python-rtmidi through mido's rtmidi/UNIX_JACK backend) driven by lines on stdin.

Commands (one per line):
  open               create virtual ports  peer-source:out  (midisock reads it)
                                           peer-sink:in     (midisock plays into it)
  close              remove both ports (as if the device were unplugged)
  send TEXT          send one message, in mido's text format, from peer-source:out
  latency N          send N note_ons 5 ms apart; time each until it arrives on peer-sink:in
Replies on stdout: "ok" after each command, "got TEXT" for every message arriving on peer-in,
"latency p50=US p99=US max=US lost=K".
"""

import signal
import sys
import threading
import time

import mido

mido.set_backend("mido.backends.rtmidi/UNIX_JACK")

# SIGTERM (the test ending) closes the ports and the JACK clients before exiting.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

lock = threading.Lock()
arrivals = {}  # note -> arrival time, while measuring latency
measuring = False
ports = None


def say(line):
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def on_message(message):
    now = time.perf_counter()
    if measuring and message.type == "note_on":
        arrivals[message.note] = now
        return
    say("got " + str(message.copy(time=0)))


def open_ports():
    # Two JACK clients (mido opens one per port): distinct names, or JACK renames the second.
    out = mido.open_output("out", virtual=True, client_name="peer-source")
    inp = mido.open_input("in", virtual=True, client_name="peer-sink", callback=on_message)
    return out, inp


def latency(count):
    global measuring
    out = ports[0]
    sent = {}
    measuring = True
    arrivals.clear()
    for i in range(count):
        note = i % 128
        if note == 0 and i:
            # Reuse of note numbers: wait for the previous round to arrive first.
            time.sleep(0.2)
            arrivals.clear()
            sent.clear()
        sent[note] = time.perf_counter()
        out.send(mido.Message("note_on", note=note, velocity=1 + i % 100))
        deadline = time.perf_counter() + 2.0
        while note not in arrivals and time.perf_counter() < deadline:
            time.sleep(0.0002)
        if note in arrivals:
            delays.append((arrivals[note] - sent[note]) * 1e6)
        time.sleep(0.005)
    measuring = False


for line in sys.stdin:
    command, _, arg = line.strip().partition(" ")
    if command == "open":
        ports = open_ports()
    elif command == "close":
        for port in ports:
            port.close()
        ports = None
    elif command == "send":
        ports[0].send(mido.Message.from_str(arg))
    elif command == "latency":
        delays = []
        count = int(arg)
        latency(count)
        delays.sort()
        if delays:
            pick = lambda q: delays[min(len(delays) - 1, round((len(delays) - 1) * q))]
            say("latency p50=%.0f p99=%.0f max=%.0f lost=%d" % (pick(0.5), pick(0.99), delays[-1], count - len(delays)))
        else:
            say("latency lost=%d" % count)
    else:
        say("unknown command " + command)
        continue
    say("ok")
