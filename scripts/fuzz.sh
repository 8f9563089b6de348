#!/usr/bin/env bash
# Fuzzes the wire codec: builds every cargo-fuzz target in fuzz/ and runs
# each for SECONDS (default 20), seeded from the shared test vectors.
#
#   bash scripts/fuzz.sh [SECONDS]
#
# Needs the nightly toolchain and cargo-fuzz. Without them it says why and
# exits 1, or 0 when LUDUS_FUZZ_OPTIONAL=1 (`make test` on a machine that
# cannot fuzz). Exits non-zero if any target crashes; the crashing input is
# kept in fuzz/artifacts/<target>/ (replay it with
# `cargo +nightly fuzz run <target> <file>`). Logs: fuzz/target/fuzz-logs/.
set -euo pipefail

seconds="${1:-20}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 [SECONDS]  (a whole number of seconds per target, default 20)" >&2
    exit 2
fi

cd "$(dirname "$0")/.."
root="$(pwd)"

unavailable() {
    if [ "${LUDUS_FUZZ_OPTIONAL:-}" = "1" ]; then
        echo "fuzz: skipped: $1 (LUDUS_FUZZ_OPTIONAL=1)" >&2
        exit 0
    fi
    echo "fuzz: cannot run: $1" >&2
    echo "fuzz: install with: rustup toolchain install nightly && cargo install cargo-fuzz --locked" >&2
    echo "fuzz: or set LUDUS_FUZZ_OPTIONAL=1 to skip" >&2
    exit 1
}

command -v cargo >/dev/null 2>&1 || unavailable "cargo is not on PATH"
cargo +nightly --version >/dev/null 2>&1 || unavailable "the nightly toolchain is not installed"
cargo +nightly fuzz --version >/dev/null 2>&1 || unavailable "cargo-fuzz is not installed"
python3 --version >/dev/null 2>&1 || unavailable "python3 is needed to seed the corpus"

targets=(frame_stream datagram message_body)

# Seeds: every valid frame of tests/vectors/messages.json, shaped for each
# target. Written under stable names, so rerunning only refreshes them.
python3 - "$root" <<'PY'
import json, os, sys

root = sys.argv[1]
with open(os.path.join(root, "tests/vectors/messages.json")) as f:
    vectors = json.load(f)

MAX_DATAGRAM_LEN = 1200
CHUNK_BYTES = [0, 1, 6, 63, 255]  # chunk size is first byte + 1


def write(target, name, data):
    directory = os.path.join(root, "fuzz/corpus", target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "seed-" + name), "wb") as f:
        f.write(data)


def strip_prefix(frame):
    # The length prefix is a LEB128 varint.
    for index, byte in enumerate(frame):
        if byte & 0x80 == 0:
            return frame[index + 1:]
    raise ValueError("frame without a complete length prefix")


frames = []
for index, vector in enumerate(vectors):
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in vector["id"])
    frame = bytes.fromhex(vector["frame"])
    frames.append(frame)
    write("message_body", name, strip_prefix(frame))
    if len(frame) <= MAX_DATAGRAM_LEN:
        write("datagram", name, frame)
    write("frame_stream", name, bytes([CHUNK_BYTES[index % len(CHUNK_BYTES)]]) + frame)

# Several frames in one datagram, and streams of many frames in odd chunks.
small = [frame for frame in frames if len(frame) <= 64]
datagram, count = b"", 0
for frame in small:
    if len(datagram) + len(frame) > MAX_DATAGRAM_LEN:
        write("datagram", "packed-%d" % count, datagram)
        datagram, count = b"", count + 1
    datagram += frame
if datagram:
    write("datagram", "packed-%d" % count, datagram)
stream = b"".join(small)
for chunk_byte in CHUNK_BYTES:
    write("frame_stream", "stream-%d" % chunk_byte, bytes([chunk_byte]) + stream)
PY

for target in "${targets[@]}"; do
    echo "fuzz: $target: $(ls "fuzz/corpus/$target" | wc -l) corpus inputs"
done

# Debug assertions on: an arithmetic overflow in the codec is a finding.
echo "fuzz: building targets (nightly, address sanitizer, debug assertions)"
if ! cargo +nightly fuzz build --debug-assertions; then
    echo "fuzz: the fuzz targets did not build (see above)" >&2
    exit 1
fi

# Run the binaries just built rather than `cargo fuzz run`, which would
# rebuild first whenever a source file changed in between: every target
# fuzzes the same build.
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
# cargo fuzz builds into CARGO_TARGET_DIR when it is set, else fuzz/target.
bin="${CARGO_TARGET_DIR:-fuzz/target}/$triple/release"
logs="fuzz/target/fuzz-logs"
mkdir -p "$logs"
failed=()
for target in "${targets[@]}"; do
    echo "fuzz: running $target for ${seconds}s"
    log="$logs/$target.log"
    mkdir -p "fuzz/artifacts/$target"
    status=0
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}" "$bin/$target" \
        -artifact_prefix="fuzz/artifacts/$target/" -max_total_time="$seconds" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "fuzz/corpus/$target" \
        >"$log" 2>&1 || status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    if [ "$status" -ne 0 ]; then
        echo "fuzz: $target FAILED (exit $status); last lines of $log:" >&2
        tail -n 40 "$log" >&2
        failed+=("$target")
    else
        echo "fuzz: $target ok: ${runs:-?} runs, ${rate:-?} execs/s, no crash"
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s each without a crash"
