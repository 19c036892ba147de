#!/usr/bin/env python3
"""Drives an interactive program through a real pseudo-terminal, like a person typing.

usage: pty-drive.py SCRIPT.json -- COMMAND [ARGS...]
SCRIPT is a JSON list of {"expect": regex, "send": text}: wait until the screen output (ANSI escapes
removed) since the previous step matches, then type the text. After the last step the program runs
to its end. The whole transcript is written to stdout; the exit status is the program's, or 99 when
an expectation was not met within the timeout (the transcript then shows where it stopped).
"""
import fcntl, json, os, pty, re, select, struct, sys, termios, time

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")
TIMEOUT = float(os.environ.get("PTY_DRIVE_TIMEOUT", "300"))

def main():
    script = json.load(open(sys.argv[1]))
    cmd = sys.argv[sys.argv.index("--") + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    transcript, pending = [], ""
    deadline = time.time() + TIMEOUT
    step = 0

    def read_some(wait):
        nonlocal pending
        r, _, _ = select.select([fd], [], [], wait)
        if not r:
            return True
        try:
            data = os.read(fd, 65536).decode("utf-8", "replace")
        except OSError:
            return False
        if not data:
            return False
        transcript.append(data)
        pending += ANSI.sub("", data)
        return True

    alive = True
    while step < len(script) and alive:
        if time.time() > deadline:
            sys.stdout.write("".join(transcript))
            sys.stdout.write(f"\n[pty-drive] timed out waiting for {script[step]['expect']!r}\n")
            os.kill(pid, 9)
            sys.exit(99)
        m = re.search(script[step]["expect"], pending)
        if m:
            pending = pending[m.end():]
            time.sleep(0.15)  # let the prompt finish drawing before typing
            os.write(fd, script[step]["send"].encode())
            step += 1
            continue
        alive = read_some(0.5)
    while alive and time.time() < deadline:
        alive = read_some(1.0)
    sys.stdout.write("".join(transcript))
    if step < len(script):
        sys.stdout.write(f"\n[pty-drive] program ended before {script[step]['expect']!r}\n")
        sys.exit(99)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 98)

main()
