#!/usr/bin/env python3
"""What the SQLite writer thread of a bench server is doing, second by second.

Waits for the server a `portcullis-bench` run starts (the newest `__portcullis serve`
child still running one second after it appears: the bench starts the server twice),
finds its `portcullis-writer` thread, and reads that thread's state from
/proc/PID/task/TID/stat every 2 ms until the server exits. Prints, per second, the share
of samples in each state:

- R: running or waiting for a core (SQLite, the kernel copying log pages);
- D: uninterruptible sleep, in practice waiting for the log's fsync;
- S: sleeping, in practice waiting for work.

S near 0 means the writer never waits for work: every request that needs it queues
behind it. Run it beside the bench and match the seconds to the phases:

    python3 crates/portcullis-bench/scripts/writer_states.py > states.txt &
    cargo run -p portcullis-bench --release -- code --rounds 2
"""

import glob
import os
import time

WRITER = "portcullis-writ"  # thread names are cut at 15 characters
INTERVAL = 0.002


def newest_server():
    """The pid of the newest `portcullis-bench __portcullis serve` process, or None."""
    best = None
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            args = open(path, "rb").read().split(b"\0")
        except OSError:
            continue
        if (
            len(args) > 2
            and args[0].endswith(b"portcullis-bench")
            and args[1:3] == [b"__portcullis", b"serve"]
        ):
            pid = int(path.split("/")[2])
            best = pid if best is None else max(best, pid)
    return best


def writer_stat(pid):
    """The stat file of the server's writer thread."""
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            if open(f"{task}/comm").read().startswith(WRITER):
                return f"{task}/stat"
        except OSError:
            continue
    return None


def main():
    while newest_server() is None:
        time.sleep(0.05)
    time.sleep(1.0)
    pid = newest_server()
    stat = writer_stat(pid) if pid else None
    if stat is None:
        raise SystemExit("no server with a writer thread found")
    print(f"server {pid}, writer {stat}", flush=True)
    start = time.time()
    second, counts = 0, {"R": 0, "D": 0, "S": 0}
    while True:
        try:
            text = open(stat).read()
        except OSError:
            break
        state = text[text.rindex(")") + 2]
        now = int(time.time() - start)
        if now != second:
            n = sum(counts.values()) or 1
            at = time.strftime("%H:%M:%S", time.localtime(start + second))
            shares = "  ".join(f"{k} {v * 100 // n:3d}%" for k, v in counts.items())
            print(f"{at}  {shares}", flush=True)
            second, counts = now, {"R": 0, "D": 0, "S": 0}
        counts[state if state in counts else "S"] += 1
        time.sleep(INTERVAL)


if __name__ == "__main__":
    main()
