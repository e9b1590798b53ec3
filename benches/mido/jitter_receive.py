"""The mido side of the bench report's jitter rows (benches/jitter_link.rs).

usage: jitter_receive.py PORT COUNT. Connects to 127.0.0.1:PORT with mido 1.3.3's connect(),
receives COUNT messages with the blocking receive() a mido program uses, then prints, one per
line, time.monotonic_ns() (CLOCK_MONOTONIC, the sender's clock too) at which each came back.
"""
import sys
import time

from mido.sockets import connect


def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    inport = connect("127.0.0.1", port)
    times = []
    for _ in range(count):
        inport.receive()
        times.append(time.monotonic_ns())
    sys.stdout.write("".join(f"{t}\n" for t in times))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
