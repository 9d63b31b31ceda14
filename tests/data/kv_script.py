# The memcached differential script of tests/kv.rs: the same sessions (one connection each:
# send everything while reading, half-close, read to EOF) against memcached and against
# examples/kv; prints "SAME n sessions" or the first difference and exits 1.
#
#   python3 kv_script.py HOST MEMCACHED_PORT KV_PORT NORMALISE_CAS(0/1)
#
# With NORMALISE_CAS=1 the cas field of VALUE lines is replaced by <cas> in both answers: kv
# with several shards numbers cas uniques per shard (unique, but not memcached's single
# sequence). With one shard kv numbers them as memcached does and nothing is normalised.
import socket, sys, threading, time

HOST, MC, KV, NORM = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"

def val(n, seed):
    return bytes((i * 7 + seed) % 251 for i in range(n))

def setcmd(cmd, key, data, flags=0, exp=0, extra=b""):
    return b"%s %s %d %d %d%s\r\n%s\r\n" % (cmd, key, flags, exp, len(data), extra, data)

K251 = b"k" * 251
K250 = b"k" * 250
keys = [b"key%d" % i for i in range(60)]
FUTURE = int(time.time()) + 3600

sessions = [
    # every command, noreply
    [b"set a 0 0 1\r\nx\r\n", b"get a\r\n", b"gets a\r\n", b"set a 5 0 2\r\nyy\r\n", b"gets a b a\r\n",
     b"add a 0 0 1\r\nz\r\n", b"add b 0 0 1\r\nz\r\n", b"delete a\r\n", b"delete a\r\n",
     b"delete b noreply\r\n", b"get b\r\n", b"set c 0 0 1 noreply\r\nq\r\n", b"add c 0 0 1 noreply\r\nr\r\n",
     b"add d 0 0 1 noreply\r\nr\r\n", b"get a b c d\r\n", b"delete a 0\r\n", b"delete d 0 noreply\r\n",
     b"gets c d\r\n", b"set empty 0 0 0\r\n\r\n", b"get empty\r\n", setcmd(b"set", K250, b"long key"),
     b"get " + K250 + b"\r\n", b"delete " + K250 + b"\r\n"],
    # errors as memcached answers them, and what it does after each
    [b"foo\r\n", b"\r\n", b"\n", b"x\r\n", b"GET a\r\n", b"set d 0 0 1\r\nxyz\r\n", b"get d\r\n",
     b"set d 0 0 abc\r\n", b"set d\r\n", b"set d 0 0\r\n", b"get\r\n", b"gets\r\n", b"get   \r\n",
     b"delete\r\n", b"delete \r\n", b"delete a b\r\n", b"delete a 0\r\n", b"delete a 1 noreply\r\n",
     b"delete a 0 x\r\n", b"delete a noreply extra\r\n", b"set e 0 0 -1\r\n",
     b"set e abc 0 1\r\nx\r\n", b"set e 0 abc 1\r\nx\r\n", b"set e 0 0 1x\r\nx\r\n", b"set e 0x1 0 1\r\nx\r\n",
     b"set e 0 99999999999999999999 1\r\nx\r\n", b"set e 0 0 2147483646\r\n", b"set e 0 0 2147483647\r\n",
     b"set e 4294967296 0 1\r\nx\r\n", b"get e\r\n", b"set e 4294967295 0 1\r\nx\r\n", b"get e\r\n",
     b"set e -0 +5 1\r\nx\r\n", b"get e\r\n", b"set e -1 0 1\r\nx\r\n", b"set e\t0 0 1\r\nx\r\n",
     b"set e 0\t0 1\r\nx\r\n", b"set e 0 0 1\t\r\nx\r\n", b"set e 0 0 4294967297\r\nx\r\n", b"gets e\r\n",
     b"set e 0 0 1 noreply\r\nxx\r\n", b"get e\r\n", b"set e 0 0 1 norepl\r\ny\r\n",
     b"set e 0 0 1 noreply extra\r\nx\r\n", setcmd(b"set", K251, b"x"), setcmd(b"set", K251, b"x", extra=b" noreply"),
     setcmd(b"add", K251, b"x"),
     b"delete " + K251 + b"\r\n", b"delete " + K251 + b" noreply\r\n",
     b"\nget e\n  get   e  \r\nget e\r\r\n", b"set  e  0  0  1 \r\nz\r\n", b"get e\r\n",
     b"get a\x00b\r\n", b"set a\x00 0 0 1\r\nx\r\n", b"get a\r\n", b"add\r\nadd a 0 0\r\nadds a 0 0 1\r\nx\r\n",
     b"sets a 0 0 1\r\nx\r\n", b"deletes a\r\n", b"geta\r\n", b"get " + b" ".join(b"e" for _ in range(30)) + b"\r\n",
     b"set f 0 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24\r\n",
     b"delete a 0 noreply 4 5\r\n", b"gets e\r\n"],
    # A get naming a key over 250 bytes answers CLIENT_ERROR alone. memcached also drops every
    # answer of the connection not yet sent at that point (conn_release_items), which depends on
    # its timing: kv does not, so such a get comes first on its connection.
    [b"get e " + K251 + b" e\r\nget e\r\n"],
    [b"gets e e " + K251 + b"\r\nset e 0 0 1\r\n1\r\n"],
    # exptime: 0 never, negative at once, <= 30 days relative, above absolute (past: at once)
    [b"set ex 0 -1 1\r\nx\r\n", b"get ex\r\n", b"add ex 0 0 1\r\ny\r\n", b"get ex\r\n",
     b"set ex2 0 1000 1\r\nx\r\n", b"get ex2\r\n", b"set ex2 0 2592001 1\r\nx\r\n", b"get ex2\r\n",
     b"set ex3 0 2592000 1\r\nx\r\n", b"get ex3\r\n", b"set ex4 0 4000000000 1\r\nx\r\n", b"get ex4\r\n",
     b"set ex5 0 %d 1\r\nx\r\n" % FUTURE, b"get ex5\r\n", b"add ex5 0 -5 1\r\nz\r\n", b"set ex5 0 -5 1\r\nz\r\n",
     b"get ex5\r\n", b"add ex5 0 0 1\r\nw\r\n", b"gets ex ex2 ex3 ex4 ex5\r\n", b"delete ex4\r\n",
     b"delete ex3\r\n"],
    # big values (many segments), the item size limit, the swallow after a refusal
    [setcmd(b"set", b"big1", val(100000, 1)), b"get big1\r\n",
     setcmd(b"set", b"m", val(1048516, 2)), b"get m\r\n",
     setcmd(b"set", b"m", val(1048517, 3)), b"get m\r\n",
     setcmd(b"set", b"m", val(1048512, 4), flags=7), b"get m\r\n",
     setcmd(b"set", b"m2", val(1048513, 5), flags=7), b"get m2\r\n",
     setcmd(b"add", b"m", val(2000000, 6)), b"get m\r\n",
     setcmd(b"set", b"m", val(2000000, 6), extra=b" noreply"), b"get m\r\n",
     setcmd(b"set", b"m", val(1048516, 8)), b"set m 0 0 1048517\r\n" + val(1048517, 9) + b"xxget m\r\n",
     setcmd(b"set", b"big2", val(300000, 7)), b"gets big1 big2 big1 nothere big2\r\n",
     b"set m 0 0 100\r\n" + val(100, 1) + b"\r\r\n", b"get m big1\r\n"],
    # quit
    [b"set q 0 0 1\r\nx\r\nget q\r\nquit\r\nget q\r\n"],
    # a line without a newline past 2048 bytes
    [b"x" * 3000],
    [b"    get" + b"x" * 3000],
    # an HTTP request line closes
    [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"],
    [b"HTTP/1.1\r\nget a\r\n"],
    # pipelined, keys on every shard, noreply interleaved
    [b"".join(setcmd(b"set", k, b"v-" + k, flags=i) for i, k in enumerate(keys[:30])),
     b"get " + b" ".join(keys[:40]) + b"\r\n", b"gets " + b" ".join(reversed(keys[:40])) + b"\r\n",
     b"".join(setcmd(b"set", k, b"w-" + k, extra=b" noreply") for k in keys[20:50]),
     b"".join(b"delete %s%s\r\n" % (k, b" noreply" if i % 2 else b"") for i, k in enumerate(keys[:10])),
     b"".join(setcmd(b"add", k, b"a-" + k) for k in keys[:60:3]),
     b"get " + b" ".join(keys) + b"\r\n",
     b"".join(b"get %s\r\n" % k for k in keys),
     b"get " + b" ".join(keys * 40) + b"\r\n"],
    # one get line of ~0.5 MB (memcslap's mget sends such lines): it arrives in many segments
    [b"get " + b" ".join(keys * 1500) + b"\r\nget key1\r\n"],
    # the same commands, one byte per send
    [bytes([c]) for c in b"set one 0 0 3\r\nabc\r\nget one a b\r\ndelete one\r\nget one\r\n"],
]

def run(port, sess, timeout=60.0):
    """Sends the session's chunks (a thread) while reading the answers until EOF."""
    s = socket.create_connection((HOST, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def send():
        try:
            for chunk in sess:
                s.sendall(chunk)
                if len(sess) > 100:
                    time.sleep(0.001)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server closed (quit, HTTP, an overlong line)
    t = threading.Thread(target=send)
    t.start()
    out = []
    deadline = time.monotonic() + timeout
    while True:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            d = s.recv(1 << 20)
        except (socket.timeout, ConnectionResetError) as e:
            out.append(b"<%s>" % type(e).__name__.encode())
            break
        if not d:
            break
        out.append(d)
    t.join()
    s.close()
    return b"".join(out)

def normalise(b):
    """The cas field of VALUE lines replaced by <cas> (the value bytes untouched)."""
    out, i = [], 0
    while i < len(b):
        j = b.find(b"\r\n", i)
        if j < 0:
            out.append(b[i:]); break
        line = b[i:j]
        f = line.split(b" ")
        if f[0] == b"VALUE" and len(f) in (4, 5):
            if len(f) == 5:
                f[4] = b"<cas>"
            out.append(b" ".join(f) + b"\r\n")
            n = int(f[3]) + 2
            out.append(b[j + 2:j + 2 + n])
            i = j + 2 + n
        else:
            out.append(line + b"\r\n")
            i = j + 2
    return b"".join(out)

def show(b):
    return repr(b) if len(b) < 600 else "%d bytes: %r ... %r" % (len(b), b[:300], b[-300:])

for i, sess in enumerate(sessions):
    want = run(MC, sess)
    got = run(KV, sess)
    if NORM:
        want, got = normalise(want), normalise(got)
    if want != got:
        k = next((j for j in range(min(len(want), len(got))) if want[j] != got[j]), min(len(want), len(got)))
        print("DIFF session %d at byte %d (memcached %d bytes, kv %d bytes)" % (i, k, len(want), len(got)))
        print("memcached:", show(want[max(0, k - 200):k + 300]))
        print("kv:       ", show(got[max(0, k - 200):k + 300]))
        sys.exit(1)
print("SAME %d sessions" % len(sessions))
