#!/usr/bin/env bash
# What the Lambda function needs, for the README's memory and timeout advice: the release `bootstrap`
# (iiif-process-aws) serves one S3 upload event from a loopback Lambda Runtime API, for the 17.9 MP hero of the
# benchmark corpus and for a 100 MP master made from it, on one core (what Lambda gives at 1769 MB) and on all of
# this machine's; prints wall time of the invocation and peak RSS of the process as a Markdown table. Sources and
# derivatives on local disk, so add your S3 transfer time. Instructions: instructions.example.json.
# Usage (from anywhere): bench/lambda.sh   (needs cargo, python3, vips (libvips-tools), taskset and /usr/bin/time)
#   BENCH_CORPUS=bench-corpus   corpus directory (fetched by bench/fetch-corpus.sh unless already complete)
#   LAMBDA_BIN=PATH             measure this iiif-process-aws binary instead of building the release one
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
for tool in python3 vips vipsheader taskset /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
corpus=${BENCH_CORPUS:-$root/bench-corpus}
"$here/fetch-corpus.sh" "$corpus" >/dev/null
if [ -n "${LAMBDA_BIN:-}" ]; then
  bin=$LAMBDA_BIN
else
  (cd "$root" && cargo build --release --quiet -p iiif-process-aws)
  bin=${CARGO_TARGET_DIR:-$root/target}/release/iiif-process-aws
  [[ $bin = /* ]] || bin=$root/$bin
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/iiif-lambda.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/out"
cp "$bin" "$work/bootstrap"
cp "$corpus/hero.jpg" "$work/src/hero.jpg"
# 100 MP: the hero enlarged to 13333 pixels wide (13333x7499), JPEG quality 90.
vips resize "$corpus/hero.jpg" "$work/src/master100.jpg[Q=90]" 2.364007 >/dev/null
cat >"$work/config.json" <<EOF
{"profile": {"services": {"enable": ["palette", "blurhash", "imagehash"]}},
 "features": {"append": {"quality": {"dither": {"syntax": "dither", "supported": true},
                                     "crisp": {"syntax": "crisp", "supported": true}}}},
 "images": {"source": {"name": "Disk", "path": "$work/src"}},
 "derivatives": {"cache": {"name": "Disk", "path": "$work/out"}}}
EOF

# One invocation through a loopback Runtime API; the function exits when the API goes away after its answer.
invoke() { # key cpus
  python3 - "$work" "$1" "$2" <<'PY'
import http.server, json, os, re, subprocess, sys, threading, time
work, key, cpus = sys.argv[1], sys.argv[2], sys.argv[3]
event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                      "s3": {"bucket": {"name": "masters"}, "object": {"key": key}}}]}
state = {"served": False, "start": None, "end": None, "answer": None}
done = threading.Event()
class Api(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if state["served"]:
            done.wait(); self.send_response(500); self.end_headers(); return
        state["served"] = True
        body = json.dumps(event).encode()
        self.send_response(200)
        for k, v in [("Content-Type", "application/json"), ("Lambda-Runtime-Aws-Request-Id", "bench-1"),
                     ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 900000)),
                     ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench"),
                     ("Content-Length", str(len(body)))]:
            self.send_header(k, v)
        self.end_headers(); self.wfile.write(body)
        state["start"] = time.monotonic()
    def do_POST(self):
        state["end"] = time.monotonic()
        state["answer"] = self.path.rsplit("/", 1)[-1]
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(202); self.end_headers(); done.set()
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
threading.Thread(target=server.serve_forever, daemon=True).start()
env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
           AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
           AWS_LAMBDA_FUNCTION_MEMORY_SIZE="10240", AWS_LAMBDA_LOG_GROUP_NAME="bench",
           AWS_LAMBDA_LOG_STREAM_NAME="bench", IIIF_CONFIG=f"{work}/config.json",
           IIIF_INSTRUCTIONS=os.path.join(os.environ["ROOT"], "instructions.example.json"))
cmd = ["/usr/bin/time", "-v", "taskset", "-c", f"0-{int(cpus) - 1}", f"{work}/bootstrap"]
proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
done.wait(1800)
time.sleep(0.2)
server.shutdown(); server.server_close()
_, err = proc.communicate(timeout=60)
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
if state["answer"] != "response" or not rss:
    sys.exit(f"{key}: no response ({state['answer']}):\n{err}")
print(f"{state['end'] - state['start']:.2f} {int(rss.group(1)) // 1024}")
PY
}

export ROOT=$root
cores=$(nproc)
echo "| master | vCPUs | invocation wall s | peak RSS MiB |"
echo "|---|--:|--:|--:|"
for master in hero.jpg master100.jpg; do
  mp=$(vipsheader -f width "$work/src/$master")x$(vipsheader -f height "$work/src/$master")
  for cpus in 1 "$cores"; do
    rm -rf "$work/out" && mkdir -p "$work/out"
    read -r secs rss < <(invoke "$master" "$cpus")
    echo "| $master ($mp) | $cpus | $secs | $rss |"
  done
done
